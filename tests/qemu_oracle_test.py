#!/usr/bin/env python3
"""A real QEMU as the oracle: broken variants of real corpus streams of one
release (7.2, 10.0 or 11.1, or 8.2 and 9.2 with $QMIG_TEST_QEMU_BINARY;
--qemu=VERSION) are loaded by a real destination of
that release and checked by qmig. qmig must reject every
stream QEMU rejects for a defect visible in the stream, and must also reject
the streams QEMU wrongly accepts, saying that QEMU would have accepted them.

The mutations find their sites by pattern, so they apply to the streams of
every release; where releases disagree (a zero page with a fill byte is loaded
by 7.2 and refused from 10.0 on), the expected verdict names the release.

Needs the release's QEMU (installed by tools/setup); fails loudly without it.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from qemu_testing import (CORPUS, QEMU_VERSION, qemu_command, qemu_verdict, qmig_check,
                          require_qemu, tool_module)

qemu_stream = tool_module("fuzz/qemu_stream.py")

MACHINE = "pc-i440fx-" + QEMU_VERSION  # the plain precopy stream of each corpus
PRECOPY = MACHINE + ".mig"


def read(name):
    with open(os.path.join(CORPUS, name), "rb") as f:
        return bytearray(f.read())


def find(data, needle, start=0):
    at = data.find(needle, start)
    if at < 0:
        raise AssertionError(f"pattern {needle!r} not found")
    return at


# --- mutations of pc-i440fx-VERSION.mig (precopy with footers and a trailer) ---
FIRST_RECORD = 8 + 1 + 4 + len(MACHINE)  # header, CONFIGURATION, name


def bad_magic(d):
    d[0:4] = b"QEVN"
    return d


def obsolete_version(d):
    d[4:8] = struct.pack(">I", 2)
    return d


def ram_start(d):
    """Offset of the RAM section's START record (its id differs by release)."""
    match = re.search(rb"\x01(....)\x03ram\x00\x00\x00\x00\x00\x00\x00\x04", d, re.DOTALL)
    if not match:
        raise AssertionError("no START record of ram version 4")
    return match.start()


def ram_footer_id(d):
    start = ram_start(d)
    eos_footer = b"\x00" * 7 + b"\x10\x7e" + bytes(d[start + 1:start + 5])
    at = find(d, eos_footer, start)
    d[at + 12] ^= 1
    return d


def ram_version(d):
    d[ram_start(d) + 16] = 5
    return d


def page_outside_block(d):
    at = find(d, b"\x08\x12/rom@etc/acpi/rsdp")  # last byte of a PAGE word, then its block
    d[at - 7:at + 1] = struct.pack(">Q", 0x7fff000 | 0x08)
    return d


def unknown_command(d):
    # 12: one past SWITCHOVER_START (11, from 10.0), unknown to every release.
    d[FIRST_RECORD:FIRST_RECORD] = b"\x08\x00\x0c\x00\x00"
    return d


def ping_bad_length(d):
    d[FIRST_RECORD:FIRST_RECORD] = b"\x08\x00\x02\x00\x05" + b"\x00" * 5
    return d


def cut_in_half(d):
    """Half of what comes before the VMDESCRIPTION trailer: QEMU never reads
    the trailer, and in 8.2's streams it is more than half of the file."""
    trailer = qemu_stream.locate_trailer(bytes(d))
    body = len(d) - (len(trailer) + 6 if trailer is not None else 0)  # EOF, VMDESC, length
    return d[:body // 2]


def nonzero_fill(d):
    at = find(d, b"\x02\x06pc.ram\x00")
    d[at + 8] = 1
    return d


def garbage_after_trailer(d):
    return d + b"garbage"


def truncated_trailer(d):
    return d[:-10]


# --- mutations of postcopy.mig ---
def package_swallows_ping(d):
    """PACKAGED's length grows by the PING(4) after it: RUN is followed by
    nine bytes QEMU silently discards, and PING 4 is never answered."""
    at = find(d, b"\x08\x00\x07\x00\x04")
    length = struct.unpack(">I", d[at + 5:at + 9])[0]
    end = at + 9 + length
    assert d[end:end + 9] == b"\x08\x00\x02\x00\x04\x00\x00\x00\x04", d[end:end + 9]
    d[at + 5:at + 9] = struct.pack(">I", length + 9)
    return d


def piix3_version_9(d):
    """A device section version QEMU 7.2 does not accept (PIIX3 is 2..3);
    only a description that knows the bounds can tell (-dump-vmstate)."""
    at = find(d, b"\x120000:00:01.0/PIIX3")
    d[at + 19 + 4 + 3] = 9
    return d


def dump_vmstate(work):
    """QEMU's own -dump-vmstate of the corpus machine."""
    path = os.path.join(work, "postcopy.vmstate.json")
    machine = json.load(open(os.path.join(CORPUS, "postcopy.meta.json")))["machine"]
    subprocess.run(qemu_command() + ["-machine", machine, "-nodefaults",
                                     "-display", "none", "-dump-vmstate", path], check=True,
                   timeout=60, capture_output=True)
    return path


def package_one_byte_short(d):
    at = find(d, b"\x08\x00\x07\x00\x04")
    length = struct.unpack(">I", d[at + 5:at + 9])[0]
    d[at + 5:at + 9] = struct.pack(">I", length - 1)
    return d


# (stream, meta, mutation, expected QEMU status, qmig finding that must appear)
CASES = [
    (PRECOPY, None, "completed", None),
    (PRECOPY, bad_magic, "failed", "header.bad_magic"),
    (PRECOPY, obsolete_version, "failed", "header.obsolete_version"),
    (PRECOPY, ram_footer_id, "failed", "section.footer_mismatch"),
    (PRECOPY, ram_version, "failed", "ram.bad_version"),
    (PRECOPY, page_outside_block, "failed", "ram.bad_offset"),
    (PRECOPY, unknown_command, "failed", "cmd.unknown"),
    (PRECOPY, ping_bad_length, "failed", "cmd.bad_length"),
    (PRECOPY, cut_in_half, "failed", "stream.truncated"),
    # QEMU is laxer than it should be on these (7.2 on all three):
    (PRECOPY, nonzero_fill,
     {"7.2": "completed", "8.2": "failed", "9.2": "failed", "10.0": "failed", "11.1": "failed"},
     "ram.nonzero_fill"),
    (PRECOPY, garbage_after_trailer, "completed", "stream.trailing_bytes"),
    (PRECOPY, truncated_trailer, "completed", "vmdesc.truncated"),
    ("postcopy.mig", None, "completed", None),
    ("postcopy.mig", package_swallows_ping, "completed", "package.bytes_after_run"),
    ("postcopy.mig", package_one_byte_short, "failed", "package.ends_mid_record"),
    # Checked with --schema set to QEMU's -dump-vmstate output:
    ("postcopy.mig", piix3_version_9, "failed", "device.version_mismatch", "dump"),
]


def main():
    if not require_qemu():
        return 1
    failures = 0
    work = tempfile.mkdtemp(prefix="qmig-oracle-", dir="/tmp")
    try:
        dump = dump_vmstate(work)
        for stream, mutate, qemu_expected, code, *schema in CASES:
            if isinstance(qemu_expected, dict):
                qemu_expected = qemu_expected[QEMU_VERSION]
            name = f"{stream}:{mutate.__name__ if mutate else 'unchanged'}"
            data = read(stream)
            if mutate:
                data = mutate(data)
            path = os.path.join(work, name.replace(":", "_").replace("/", "_"))
            with open(path, "wb") as f:
                f.write(data)
            meta = stream.replace(".mig", ".meta.json")
            qemu = qemu_verdict(path, os.path.join(CORPUS, meta))
            report = qmig_check(path, *([f"--schema={dump}"] if schema else []))
            codes = {f["code"]: f for f in report["findings"] if f["severity"] == "error"}
            problems = []
            # A destination that never completes has refused the stream too:
            # after a failed postcopy load, 10.0 and 11.1 sometimes hang
            # (11.1 stays in postcopy-device on a short package) instead of
            # exiting; the status is printed as QEMU gave it.
            refused = qemu["status"] in ("failed", "timeout")
            if (qemu_expected == "failed") != refused:
                problems.append(f"QEMU said {qemu['status']} ({qemu.get('message', '')[-200:]}), "
                                f"expected {qemu_expected}")
            if code is None:
                if not report["valid"]:
                    problems.append(f"qmig rejected it: {list(codes)}")
            else:
                if report["valid"] or code not in codes:
                    problems.append(f"qmig did not report {code}: {list(codes)}")
                elif qemu_expected == "completed" and (
                        QEMU_VERSION not in codes[code].get("qemu_accepts_in", [])):
                    problems.append(f"{code} does not say that QEMU {QEMU_VERSION} accepts it")
                elif qemu_expected == "failed" and (
                        QEMU_VERSION in codes[code].get("qemu_accepts_in", [])):
                    problems.append(f"{code} says that QEMU {QEMU_VERSION} accepts it")
            verdict = "ok" if not problems else "FAIL " + "; ".join(problems)
            print(f"{name:48} qemu={qemu['status']:9} qmig={'valid' if report['valid'] else 'invalid':7}"
                  f" {verdict}")
            failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(CASES) - failures} of {len(CASES)} cases agree with the oracle")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
