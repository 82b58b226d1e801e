#!/usr/bin/env python3
"""Regenerates tests/golden/analyze-migration/ from QEMU's own decoder.

For every stream in corpus/qemu-7.2/, runs scripts/analyze-migration.py from
Debian's QEMU 7.2 source package with `-d state` and `-d desc`, and keeps its
outputs as golden files for `qmig dump --format=analyze-migration` and
`qmig desc`. Streams the script cannot read are listed, with its error, in
failures.json. Only outputs are committed, never the script.

    tools/corpus/make_analyze_goldens.py [--script PATH]

Without --script, the source package is fetched with `apt-get source
--download-only qemu` (deb-src must be enabled) into a temporary directory.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "corpus", "qemu-7.2")
OUT = os.path.join(ROOT, "tests", "golden", "analyze-migration")
SCRIPT = "scripts/analyze-migration.py"


def fetch_script(tmp):
    subprocess.run(["apt-get", "source", "--download-only", "qemu"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    orig = glob.glob(os.path.join(tmp, "qemu_*.orig.tar.*"))
    if not orig:
        sys.exit("no QEMU source tarball was downloaded")
    with tarfile.open(orig[0]) as tar:
        for member in tar.getmembers():
            if member.name.endswith("/" + SCRIPT):
                path = os.path.join(tmp, "analyze-migration.py")
                with open(path, "wb") as f:
                    f.write(tar.extractfile(member).read())
                return path
    sys.exit("%s is not in %s" % (SCRIPT, orig[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", help="analyze-migration.py to run (default: fetch it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = args.script or fetch_script(tmp)
        os.makedirs(OUT, exist_ok=True)
        failures = {}
        for stream in sorted(glob.glob(os.path.join(CORPUS, "*.mig"))):
            name = os.path.basename(stream)[:-len(".mig")]
            outputs = {}
            for mode in ("state", "desc"):
                run = subprocess.run([sys.executable, script, "-f", stream, "-d", mode],
                                     capture_output=True, timeout=120)
                if run.returncode != 0:
                    lines = run.stderr.decode(errors="replace").strip().splitlines()
                    failures.setdefault(name, {})[mode] = lines[-1] if lines else "failed"
                    continue
                outputs[mode] = run.stdout
            for mode, data in outputs.items():
                with open(os.path.join(OUT, "%s.%s.json" % (name, mode)), "wb") as f:
                    f.write(data)
            print("%-28s %s" % (name, "golden" if name not in failures else failures[name]))
        with open(os.path.join(OUT, "failures.json"), "w") as f:
            json.dump(failures, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
