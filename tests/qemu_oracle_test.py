#!/usr/bin/env python3
"""Real QEMU 7.2 as the oracle: broken variants of real corpus streams are
loaded by a real QEMU destination and checked by qmig. qmig must reject every
stream QEMU rejects for a defect visible in the stream, and must also reject
the streams QEMU wrongly accepts, saying that QEMU would have accepted them.

Needs qemu-system-x86 (installed by tools/setup); fails loudly without it.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from qemu_testing import CORPUS, qemu_verdict, qmig_check, require_qemu


def read(name):
    with open(os.path.join(CORPUS, name), "rb") as f:
        return bytearray(f.read())


def find(data, needle, start=0):
    at = data.find(needle, start)
    if at < 0:
        raise AssertionError(f"pattern {needle!r} not found")
    return at


# --- mutations of pc-i440fx-7.2.mig (precopy with footers and a trailer) ---
FIRST_RECORD = 8 + 1 + 4 + len(b"pc-i440fx-7.2")  # header, CONFIGURATION, name


def bad_magic(d):
    d[0:4] = b"QEVN"
    return d


def obsolete_version(d):
    d[4:8] = struct.pack(">I", 2)
    return d


def ram_footer_id(d):
    at = find(d, b"\x00\x00\x00\x00\x00\x00\x00\x10\x7e\x00\x00\x00\x02")
    d[at + 12] = 3
    return d


def ram_version(d):
    at = find(d, b"\x01\x00\x00\x00\x02\x03ram\x00\x00\x00\x00\x00\x00\x00\x04")
    d[at + 16] = 5
    return d


def page_outside_block(d):
    at = find(d, b"\x08\x12/rom@etc/acpi/rsdp")  # last byte of a PAGE word, then its block
    d[at - 7:at + 1] = struct.pack(">Q", 0x7fff000 | 0x08)
    return d


def unknown_command(d):
    d[FIRST_RECORD:FIRST_RECORD] = b"\x08\x00\x0b\x00\x00"
    return d


def ping_bad_length(d):
    d[FIRST_RECORD:FIRST_RECORD] = b"\x08\x00\x02\x00\x05" + b"\x00" * 5
    return d


def cut_in_half(d):
    return d[:len(d) // 2]


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
    path = os.path.join(work, "pc-i440fx-7.2.vmstate.json")
    subprocess.run(["qemu-system-x86_64", "-machine", "pc-i440fx-7.2", "-nodefaults",
                    "-display", "none", "-dump-vmstate", path], check=True, timeout=60,
                   capture_output=True)
    return path


def package_one_byte_short(d):
    at = find(d, b"\x08\x00\x07\x00\x04")
    length = struct.unpack(">I", d[at + 5:at + 9])[0]
    d[at + 5:at + 9] = struct.pack(">I", length - 1)
    return d


# (stream, meta, mutation, expected QEMU status, qmig finding that must appear)
CASES = [
    ("pc-i440fx-7.2.mig", None, "completed", None),
    ("pc-i440fx-7.2.mig", bad_magic, "failed", "header.bad_magic"),
    ("pc-i440fx-7.2.mig", obsolete_version, "failed", "header.obsolete_version"),
    ("pc-i440fx-7.2.mig", ram_footer_id, "failed", "section.footer_mismatch"),
    ("pc-i440fx-7.2.mig", ram_version, "failed", "ram.bad_version"),
    ("pc-i440fx-7.2.mig", page_outside_block, "failed", "ram.bad_offset"),
    ("pc-i440fx-7.2.mig", unknown_command, "failed", "cmd.unknown"),
    ("pc-i440fx-7.2.mig", ping_bad_length, "failed", "cmd.bad_length"),
    ("pc-i440fx-7.2.mig", cut_in_half, "failed", "stream.truncated"),
    # QEMU 7.2 is laxer than it should be on these:
    ("pc-i440fx-7.2.mig", nonzero_fill, "completed", "ram.nonzero_fill"),
    ("pc-i440fx-7.2.mig", garbage_after_trailer, "completed", "stream.trailing_bytes"),
    ("pc-i440fx-7.2.mig", truncated_trailer, "completed", "vmdesc.truncated"),
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
            if qemu["status"] != qemu_expected:
                problems.append(f"QEMU said {qemu['status']} ({qemu.get('message', '')[-200:]}), "
                                f"expected {qemu_expected}")
            if code is None:
                if not report["valid"]:
                    problems.append(f"qmig rejected it: {list(codes)}")
            else:
                if report["valid"] or code not in codes:
                    problems.append(f"qmig did not report {code}: {list(codes)}")
                elif qemu_expected == "completed" and not codes[code]["qemu_accepts"]:
                    problems.append(f"{code} does not say that QEMU would accept the stream")
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
