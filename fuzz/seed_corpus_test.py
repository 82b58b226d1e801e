#!/usr/bin/env python3
"""The seed corpora are what fuzz/make_seeds.py makes from the real corpora
today, and they carry the records of every QEMU release the project reads:
a stream of 7.2, 8.2, 10.0 and 11.1 (9.2 sends nothing 8.2 and 10.0 do
not), 8.2's COMPRESS_PAGE records, mapped-ram pages read from their file offsets,
SWITCHOVER_START, a 10.0+ multifd sync packet (1344 bytes) and a multifd
packet with a page. Checked with `qmig check --json` on the seeds."""
import filecmp
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUNFILES = os.environ.get("TEST_SRCDIR", "")
ROOT = (os.path.join(RUNFILES, os.environ.get("TEST_WORKSPACE", "qmig")) if RUNFILES
        else os.path.dirname(HERE))
QMIG = os.environ.get("QMIG") or os.path.join(ROOT, "tools", "qmig", "qmig")
SEEDS = os.path.join(ROOT, "fuzz", "corpus")
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        failures.append(message)


def summaries(target):
    directory = os.path.join(SEEDS, target)
    for name in sorted(os.listdir(directory)):
        out = subprocess.run([QMIG, "check", "--json", os.path.join(directory, name)],
                             capture_output=True, text=True, timeout=60)
        if out.returncode in (0, 1):
            report = json.loads(out.stdout)
            yield name, report["valid"], report["summary"]


def main():
    with tempfile.TemporaryDirectory() as out:
        made = subprocess.run([sys.executable, os.path.join(ROOT, "fuzz", "make_seeds.py"),
                               "--out", out], capture_output=True, text=True)
        check(made.returncode == 0, "make_seeds.py runs (%s)" % made.stderr[-300:])
        for target in sorted(os.listdir(out)):
            compared = filecmp.dircmp(os.path.join(out, target), os.path.join(SEEDS, target))
            stale = compared.left_only + compared.right_only + compared.diff_files
            check(not stale, "%s: seeds as make_seeds.py makes them%s" % (
                target, "" if not stale else " (differ: %s)" % stale[:5]))

    valid = [(name, s) for name, ok, s in summaries("stream_fuzzer") if ok]
    for release in ("7.2", "8.2", "10.0", "11.1"):
        names = [n for n, s in valid if s.get("profile") == "qemu-" + release]
        check(names, "stream seeds of QEMU %s: %d" % (release, len(names)))
    mapped = [n for n, s in valid if "mapped-ram" in (s.get("capabilities") or []) and
              sum(b["normal_pages"] for b in s["ram_blocks"]) > 0]
    check(mapped, "mapped-ram seeds with pages: %s" % mapped)
    compressed = [n for n, s in valid if s.get("profile") == "qemu-8.2" and
                  sum(b["compressed_pages"] for b in s["ram_blocks"]) > 0]
    check(compressed, "QEMU 8.2 seeds with COMPRESS_PAGE records: %s" % compressed)
    switchover = [n for n, s in valid if s.get("commands", {}).get("SWITCHOVER_START")]
    check(switchover, "seeds with SWITCHOVER_START: %d" % len(switchover))

    channels = [(n, s) for n, ok, s in summaries("multifd_fuzzer") if ok]
    sync_1344 = [n for n, s in channels
                 if s.get("sync_packets") == 1 and s.get("packets") == 1 and s["bytes"] == 64 + 1344]
    check(sync_1344, "multifd seeds of one 1344-byte sync packet: %s" % sync_1344)
    with_page = [n for n, s in channels if s.get("pages")]
    check(with_page, "multifd seeds with a page: %s" % with_page)

    print("%d failed checks" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
