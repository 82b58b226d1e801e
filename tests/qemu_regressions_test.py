#!/usr/bin/env python3
"""Streams that break real QEMU, kept as regressions (corpus/regressions/qemu/).

Each file names a real corpus stream and byte patches to it, what QEMU 7.2
does with the result (recorded when it was found), and what qmig must say.
The test rebuilds each stream, checks qmig's verdict, and asks a real QEMU
destination again, printing its behaviour (QEMU's crashes are racy, so its
exit code is reported, not asserted; its failing verdict is asserted).
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("TEST_SRCDIR", "")
ROOT = os.path.join(ROOT, os.environ.get("TEST_WORKSPACE", "qmig")) if ROOT else os.path.dirname(HERE)
QMIG = os.environ.get("QMIG") or os.path.join(ROOT, "tools", "qmig", "qmig")
MAKE_CORPUS = os.path.join(ROOT, "tools", "corpus", "make_corpus.py")


def rebuild(regression):
    data = bytearray(open(os.path.join(ROOT, regression["base"]), "rb").read())
    if hashlib.sha256(data).hexdigest() != regression["base_sha256"]:
        raise AssertionError("base stream changed: " + regression["base"])
    for patch in regression["patches"]:
        at = patch["offset"]
        if struct.unpack(">I", data[at:at + 4])[0] != patch["was"]:
            raise AssertionError("patch site moved at %d" % at)
        data[at:at + 4] = struct.pack(">I", patch["be32"])
    return data


def main():
    if shutil.which("qemu-system-x86_64") is None:
        print("FAIL: qemu-system-x86_64 is not installed; run tools/setup", file=sys.stderr)
        return 1
    files = sorted(glob.glob(os.path.join(ROOT, "corpus", "regressions", "qemu", "*.json")))
    if not files:
        print("FAIL: no regressions found", file=sys.stderr)
        return 1
    failures = 0
    work = tempfile.mkdtemp(prefix="qmig-qemu-regressions-", dir="/tmp")
    try:
        for path in files:
            regression = json.load(open(path))
            name = os.path.basename(path)[:-len(".json")]
            stream = os.path.join(work, name + ".mig")
            open(stream, "wb").write(rebuild(regression))
            out = subprocess.run([QMIG, "check", "--json", stream], capture_output=True, text=True,
                                 timeout=120)
            report = json.loads(out.stdout)
            codes = sorted({f["code"] for f in report["findings"] if f["severity"] == "error"})
            problems = []
            if report["valid"] != regression["qmig"]["valid"]:
                problems.append("qmig valid=%s" % report["valid"])
            missing = set(regression["qmig"]["error_codes"]) - set(codes)
            if missing:
                problems.append("qmig lacks %s (has %s)" % (sorted(missing), codes))
            qemu = json.loads(subprocess.run(
                [sys.executable, MAKE_CORPUS, "--verdict", stream, "--meta",
                 os.path.join(ROOT, regression["qemu_7_2"]["meta"]), "--timeout", "30"],
                capture_output=True, text=True, timeout=120).stdout)
            if qemu["status"] != regression["qemu_7_2"]["verdict"]:
                problems.append("QEMU now says %s" % qemu["status"])
            crashed = qemu.get("exit_code", 0) is not None and qemu.get("exit_code", 0) < 0
            print("%-28s qmig %s; QEMU %s, exit %s%s %s" % (
                name, codes, qemu["status"], qemu.get("exit_code"),
                " (crashed)" if crashed else "", "ok" if not problems else "FAIL " + "; ".join(problems)))
            failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d QEMU regressions as recorded" % (len(files) - failures, len(files)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
