#!/usr/bin/env python3
"""Drives a real QEMU destination (7.2, or 10.0 or 11.1 with --qemu, or a build given
with --qemu-binary) with structural mutants of real streams of that version.

    tools/fuzz_qemu.py [--qemu=7.2|10.0|11.1] [--seconds N] [--out DIR] [--base NAME ...]
                       [--timeout_s N]
    tools/fuzz_qemu.py --qemu=8.2|9.2|... --qemu-binary=PATH ...

Each round takes a stream of the version's corpus (by default pc-i440fx-7.2,
pc-q35-VERSION, xbzrle and postcopy), makes a batch of mutants with the structure-aware
mutator (fuzz:mutate_stream: records inserted, deleted, moved, wrapped into
packages, lengths resized, ...), and loads each into QEMU with
`qmig qemu-verdict --meta` (the stream's recorded destination
configuration). A base without a VMDESCRIPTION trailer (postcopy) is checked with
--schema taken from the corpus's precopy stream of the same machine, so that its device
sections are decoded rather than only delimited. Kept under --out (default
${XDG_CACHE_HOME:-~/.cache}/qmig-fuzz/qemu/TIME), with QEMU's verdict next to
qmig's:
  * QEMU misbehaving: crashed, crashed at exit, hung at exit, or timed out;
  * unexplained disagreements (qemu-verdict exit 1).
Exits 1 when anything was kept; a stream worth keeping for good goes to
corpus/regressions/qemu/ with QEMU's behaviour recorded (docs/FUZZING.md).
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISBEHAVIOUR = ("crashed", "crashed at exit", "hung at exit", "timeout")


def build():
    subprocess.run(["bazel", "build", "//fuzz:mutate_stream", "//tools/qmig"], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    bin_dir = subprocess.run(["bazel", "info", "bazel-bin"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    return (os.path.join(bin_dir, "fuzz", "mutate_stream"),
            os.path.join(bin_dir, "tools", "qmig", "qmig"))


def schema_for(qmig, corpus, base, meta, work):
    """A --schema for a base stream whose own trailer is missing: the
    description of the corpus's precopy stream of the same machine, or None
    (the base has a trailer, or no such stream has one)."""
    def schema(stream, out):
        with open(out, "wb") as f:
            return subprocess.run([qmig, "schema", stream], stdout=f,
                                  stderr=subprocess.DEVNULL).returncode == 0
    out = os.path.join(work, base + ".schema.json")
    if schema(os.path.join(corpus, base + ".mig"), out):
        return None
    with open(meta) as f:
        machine = json.load(f).get("machine", "")
    precopy = os.path.join(corpus, machine + ".mig")
    return out if machine and os.path.exists(precopy) and schema(precopy, out) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--out")
    ap.add_argument("--qemu", default="7.2",
                    help="the QEMU to load mutants into, and whose corpus they come from: "
                         "7.2, 10.0 or 11.1, or with --qemu-binary any version with a corpus "
                         "(8.2, 9.2)")
    ap.add_argument("--qemu-binary", metavar="PATH",
                    help="a qemu-system-x86_64 of version --qemu to use instead of the "
                         "installed one (e.g. a build of upstream's 8.2)")
    ap.add_argument("--base", nargs="+",
                    help="streams of that corpus to mutate (default: pc-i440fx-7.2, "
                         "pc-q35-VERSION, xbzrle, postcopy)")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--timeout_s", type=int, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    args = ap.parse_args()
    corpus = os.path.join(ROOT, "corpus", "qemu-" + args.qemu)
    if not os.path.isdir(corpus):
        sys.exit("no corpus of QEMU %s (%s)" % (args.qemu, corpus))
    if args.qemu_binary:
        if not (os.path.isfile(args.qemu_binary) and os.access(args.qemu_binary, os.X_OK)):
            sys.exit("--qemu-binary %s is not an executable file" % args.qemu_binary)
        version = subprocess.run([args.qemu_binary, "--version"], capture_output=True,
                                 text=True, timeout=60).stdout
        if "version %s." % args.qemu not in version:
            sys.exit("--qemu-binary is not QEMU %s: %s" % (
                args.qemu, (version.splitlines() or ["no version"])[0]))
    elif args.qemu not in ("7.2", "10.0", "11.1"):
        sys.exit("QEMU %s is not installed by tools/setup; give --qemu-binary" % args.qemu)
    elif args.qemu == "7.2":
        if shutil.which("qemu-system-x86_64") is None:
            sys.exit("qemu-system-x86_64 is not installed; run tools/setup")
    elif subprocess.run([os.path.join(ROOT, "tools", "qemu-versions"), "path", args.qemu],
                        capture_output=True).returncode != 0:
        sys.exit("QEMU %s is not installed; run tools/setup" % args.qemu)
    qemu = os.path.abspath(args.qemu_binary) if args.qemu_binary else args.qemu
    args.base = args.base or ["pc-i440fx-7.2", "pc-q35-" + args.qemu, "xbzrle", "postcopy"]
    mutate, qmig = build()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    out = args.out or os.path.join(cache, "qmig-fuzz", "qemu", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    counts = collections.Counter()
    kept = []
    deadline = time.time() + args.seconds
    seed = args.seed
    with tempfile.TemporaryDirectory() as work:
        schemas = {base: schema_for(qmig, corpus, base, os.path.join(corpus, base + ".meta.json"),
                                    work) for base in args.base}
        for base, schema in sorted(schemas.items()):
            if schema:
                print("%s: device sections checked with the description of its machine's "
                      "precopy stream" % base)
        while time.time() < deadline:
            for base in args.base:
                if time.time() >= deadline:
                    break
                stream = os.path.join(corpus, base + ".mig")
                meta = os.path.join(corpus, base + ".meta.json")
                batch = os.path.join(work, "batch")
                shutil.rmtree(batch, ignore_errors=True)
                os.makedirs(batch)
                subprocess.run([mutate, stream, batch, str(args.batch), str(seed)], check=True)
                seed += 1
                for name in sorted(n for n in os.listdir(batch) if n.endswith(".mig")):
                    if time.time() >= deadline:
                        break
                    mutant = os.path.join(batch, name)
                    run = subprocess.run(
                        [qmig, "qemu-verdict", "--json", "--meta=" + meta, "--qemu=" + qemu,
                         "--timeout_s=%d" % args.timeout_s, mutant] +
                        (["--schema=" + schemas[base]] if schemas[base] else []),
                        capture_output=True, text=True, timeout=args.timeout_s + 90)
                    counts["mutants"] += 1
                    if run.returncode == 2:
                        counts["not run"] += 1
                        continue
                    verdict = json.loads(run.stdout)
                    status = verdict["qemu"]["status"]
                    counts["QEMU " + status] += 1
                    counts["qmig " + ("valid" if verdict["qmig"]["valid"] else "invalid")] += 1
                    if status in MISBEHAVIOUR or run.returncode == 1:
                        keep = os.path.join(out, "%s-%s" % (base, name[:-4]))
                        shutil.copy(mutant, keep + ".mig")
                        shutil.copy(mutant[:-4] + ".txt", keep + ".mutations.txt")
                        with open(keep + ".verdict.json", "w") as f:
                            json.dump(verdict, f, indent=2)
                        kept.append((keep, status, verdict["relation"]))
                        print("kept %s: QEMU %s; %s" % (keep, status, verdict["relation"]))
    print("\n%d mutants: %s" % (counts["mutants"], ", ".join(
        "%s %d" % (k, v) for k, v in sorted(counts.items()) if k != "mutants")))
    print("%d kept in %s" % (len(kept), out))
    return 1 if kept else 0


if __name__ == "__main__":
    sys.exit(main())
