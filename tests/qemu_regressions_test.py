#!/usr/bin/env python3
"""Streams that break real QEMU, kept as regressions (corpus/regressions/qemu/).

Each file names a real corpus stream with be32 patches to it, records to
insert into it ("inserts": hex bytes at an offset), records to delete from it
("deletes": a length at an offset, with the hex bytes it starts with; offsets
of patches, inserts and deletes all count in the original stream) and
optionally how many of its
bytes to keep ("truncate"), or a whole mutant kept beside it ("stream");
what each QEMU release does with the result ("qemu": {"7.2": ..., "11.1": ...},
each with the destination's .meta.json, recorded by running it), and what
qmig must say.

The test runs against one release (--qemu=VERSION) and takes the regressions
recorded for it. It rebuilds each stream, checks qmig's verdict, and asks a
real destination of that release again, printing its behaviour. QEMU's
crashes are racy, so its exit code is reported, not asserted; its verdict is
asserted, as one status or as the list of statuses seen in repeated runs.
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

from qemu_testing import QEMU_VERSION, ROOT, qemu_verdict, qmig_check, require_qemu


def rebuild(regression):
    if "stream" in regression:  # a mutant kept whole
        data = open(os.path.join(ROOT, regression["stream"]), "rb").read()
        if hashlib.sha256(data).hexdigest() != regression["stream_sha256"]:
            raise AssertionError("stream changed: " + regression["stream"])
        return data
    data = bytearray(open(os.path.join(ROOT, regression["base"]), "rb").read())
    if hashlib.sha256(data).hexdigest() != regression["base_sha256"]:
        raise AssertionError("base stream changed: " + regression["base"])
    if "truncate" in regression:  # keep only the first N bytes
        del data[regression["truncate"]:]
    for patch in regression["patches"]:
        at = patch["offset"]
        if struct.unpack(">I", data[at:at + 4])[0] != patch["was"]:
            raise AssertionError("patch site moved at %d" % at)
        data[at:at + 4] = struct.pack(">I", patch["be32"])
    for delete in regression.get("deletes", []):
        at, starts = delete["offset"], bytes.fromhex(delete["starts_with"])
        if data[at:at + len(starts)] != starts:
            raise AssertionError("deleted record moved at %d" % at)
    edits = ([(i["offset"], 0, bytes.fromhex(i["hex"])) for i in regression.get("inserts", [])] +
             [(d["offset"], d["length"], b"") for d in regression.get("deletes", [])])
    # From the end, so that every offset still counts in the original stream;
    # at one offset the delete goes first, so that it removes original bytes.
    for at, length, new in sorted(edits, key=lambda e: (-e[0], -e[1])):
        data[at:at + length] = new
    return data


def main():
    if not require_qemu():
        return 1
    files = [path for path in
             sorted(glob.glob(os.path.join(ROOT, "corpus", "regressions", "qemu", "*.json")))
             if QEMU_VERSION in json.load(open(path))["qemu"]]
    if not files:
        print("FAIL: no regressions recorded for QEMU %s" % QEMU_VERSION, file=sys.stderr)
        return 1
    failures = 0
    work = tempfile.mkdtemp(prefix="qmig-qemu-regressions-", dir="/tmp")
    try:
        for path in files:
            regression = json.load(open(path))
            name = os.path.basename(path)[:-len(".json")]
            stream = os.path.join(work, name + ".mig")
            open(stream, "wb").write(rebuild(regression))
            report = qmig_check(stream)
            codes = sorted({f["code"] for f in report["findings"] if f["severity"] == "error"})
            problems = []
            if report["valid"] != regression["qmig"]["valid"]:
                problems.append("qmig valid=%s" % report["valid"])
            missing = set(regression["qmig"]["error_codes"]) - set(codes)
            if missing:
                problems.append("qmig lacks %s (has %s)" % (sorted(missing), codes))
            warnings = {f["code"] for f in report["findings"] if f["severity"] == "warning"}
            missing = set(regression["qmig"].get("warning_codes", [])) - warnings
            if missing:
                problems.append("qmig does not warn %s" % sorted(missing))
            recorded = regression["qemu"][QEMU_VERSION]
            qemu = qemu_verdict(stream, os.path.join(ROOT, recorded["meta"]),
                                timeout=recorded.get("timeout_s", 30))
            expected = recorded["verdict"]
            if qemu["status"] not in (expected if isinstance(expected, list) else [expected]):
                problems.append("QEMU %s now says %s" % (QEMU_VERSION, qemu["status"]))
            crashed = (qemu["status"] != "timeout" and qemu.get("exit_code") is not None and
                       qemu["exit_code"] < 0)
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
