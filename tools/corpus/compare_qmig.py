#!/usr/bin/env python3
"""What `qmig check` says of every file of a corpus directory, next to what
real QEMU said (the qemu_verdict in each .meta.json).

  tools/corpus/compare_qmig.py corpus/qemu-10.0 [--qmig PATH] [--json]

Each file is checked as what it is: a main stream as is, a return path,
multifd channel or preempt channel with --kind and --main (its main stream,
from the meta's "load" or companions). QEMU's verdict is on the whole
migration, so a channel file's verdict is that of its migration. "agree"
means qmig finds the file valid exactly when QEMU loaded the migration;
a disagreement names qmig's first error code, or says that qmig accepted
what QEMU refused. A broken variant that qmig rejects only agrees by
accident when qmig also rejects the valid file it was made from, at the same
place or earlier. Exit status 0; the table is the output.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from corpusgen.verdict import outcome  # noqa: E402

KIND_FLAG = {"return-path": "return-path", "multifd-channel": "multifd",
             "preempt-channel": "preempt"}


def meta_name(fname):
    return fname[:-4] + ".meta.json" if fname.endswith(".mig") else fname + ".meta.json"


def main_of(meta):
    """The main stream of a companion file."""
    load = meta.get("load") or {}
    if load.get("main") and load["main"] != meta["file"]:
        return load["main"]
    for c in meta.get("companions", []):
        if c.endswith(".mig"):
            return c
    return None


def check(qmig, directory, meta):
    kind = meta["kind"].replace("broken-", "", 1)
    args = [qmig, "check", "--json"]
    if kind in KIND_FLAG:
        args.append("--kind=" + KIND_FLAG[kind])
        main = main_of(meta)
        if main:
            args.append("--main=" + os.path.join(directory, main))
    args.append(os.path.join(directory, meta["file"]))
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"valid": None, "exit": out.returncode, "error": out.stderr.strip()[-300:],
                "args": args[2:]}
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    return {"valid": report["valid"], "exit": out.returncode, "args": args[2:],
            "first_error": errors[0]["code"] if errors else None,
            "first_error_message": errors[0].get("message", "")[:200] if errors else None,
            "first_error_offset": errors[0].get("offset") if errors else None,
            "qemu_accepts": errors[0].get("qemu_accepts") if errors else None,
            "error_codes": sorted({f["code"] for f in errors})}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory")
    ap.add_argument("--qmig", default=os.path.join(ROOT, "bazel-bin", "tools", "qmig", "qmig"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for mf in sorted(glob.glob(os.path.join(a.directory, "*.meta.json"))):
        meta = json.load(open(mf))
        qv = meta.get("qemu_verdict", {})
        q = meta.get("qemu_outcome") or outcome(qv)
        accepted = qv.get("status") == "completed"
        r = check(a.qmig, a.directory, meta)
        base = None
        if meta.get("base"):
            with open(os.path.join(a.directory, meta_name(meta["base"]))) as f:
                base = check(a.qmig, a.directory, json.load(f))
        if r["valid"] is None:
            agree = "qmig failed"
        elif r["valid"] == accepted and not accepted and base and base["valid"] is False \
                and not (r["first_error_offset"] is not None and
                         base["first_error_offset"] is not None and
                         r["first_error_offset"] < base["first_error_offset"]):
            agree = "agree only by accident: qmig rejects the valid %s too (%s)" % (
                meta["base"], base["first_error"])
        elif r["valid"] == accepted:
            agree = "agree"
        elif accepted:
            agree = "disagree: qmig rejects (%s%s)" % (
                r["first_error"], ", says QEMU accepts" if r["qemu_accepts"] else "")
        else:
            agree = "disagree: qmig accepts"
        rows.append({"file": meta["file"], "kind": meta["kind"], "qemu": q,
                     "qemu_message": (qv.get("message") or "").splitlines()[-1:],
                     "qmig": r, "qmig_on_base": base, "agreement": agree})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        r = row["qmig"]
        qm = "valid" if r["valid"] else "invalid (%s)" % r["first_error"] \
            if r["valid"] is False else "error"
        print("%-36s %-30s %-36s %s" % (row["file"], row["qemu"][:30], qm, row["agreement"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
