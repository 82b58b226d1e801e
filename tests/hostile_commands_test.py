#!/usr/bin/env python3
"""qmig's commands on hand-made hostile streams, as a user runs them.

* Names that are not UTF-8, or hold terminal escapes, come out escaped the
  same way in every output: JSON that parses, text with no control byte;
  no command aborts.
* extract exits as check does on streams check accepts: a 255-byte block
  name, a 64 TiB block; a page that does not decode is a finding with its
  offset (exit 1), not a bare I/O error.
* extract never writes through a symbolic link already in DIR.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

from checks import check, finish  # noqa: E402
from qemu_testing import QMIG  # noqa: E402

PAGE = 4096



def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


MACHINE = b"pc-i440fx-7.2"


def header(machine=MACHINE, capabilities=()):
    out = b"QEVM" + be32(3) + b"\x07" + be32(len(machine)) + machine
    if capabilities:
        name = b"configuration/capabilities"
        out += b"\x05" + bytes([len(name)]) + name + be32(1) + be32(len(capabilities))
        for cap in capabilities:
            out += bytes([len(cap)]) + cap
    return out


def ram_start(blocks, sid=1):
    total = sum(length for _, length in blocks)
    out = b"\x01" + be32(sid) + b"\x03ram" + be32(0) + be32(4) + be64(total | 0x04)
    for name, length in blocks:
        out += bytes([len(name)]) + name + be64(length)
    return out + be64(0x10) + b"\x7e" + be32(sid)


def ram_part(records, sid=1):
    return b"\x02" + be32(sid) + b"".join(records) + be64(0x10) + b"\x7e" + be32(sid)


def ram_end(sid=1):
    return b"\x03" + be32(sid) + be64(0x10) + b"\x7e" + be32(sid)


def page(block, offset, fill):
    return be64(offset | 0x08) + bytes([len(block)]) + block + bytes([fill]) * PAGE


def full(sid, name, body):
    return (b"\x04" + be32(sid) + bytes([len(name)]) + name + be32(0) + be32(1) + body +
            b"\x7e" + be32(sid))


def trailer(devices):
    text = json.dumps({"page_size": PAGE, "devices": devices}).encode()
    return b"\x00\x06" + be32(len(text)) + text


def run(*args, stdin=None):
    return subprocess.run([QMIG, *args], capture_output=True, timeout=120, input=stdin)


def printable(data):
    return all(b == 0x0a or 0x20 <= b < 0x7f for b in data)


def test_names_are_escaped(tmp):
    # Every kind of name the stream carries, with bytes that are not UTF-8
    # and terminal escapes: machine, capability, block, section, field.
    evil = b"\xff\xfe\x1b[31m\x07"
    block = b"pc.ram" + evil
    device = b"dev" + evil
    stream = (header(b"pc-i440fx-7.2" + evil, [b"x-ignore" + evil]) +
              ram_start([(block, 2 * PAGE)]) + ram_part([page(block, 0, 0xaa)]) +
              full(2, device, b"\x01") +
              b"\x01" + be32(3) + bytes([len(device)]) + device + be32(0) + be32(1) +  # not ended
              ram_end() +
              trailer([{"name": device.decode("latin-1"), "instance_id": 0,
                        "vmsd_name": "d", "version": 1,
                        "fields": [{"name": "f\u001b\u0007", "type": "uint8", "size": 1}]}]))
    path = os.path.join(tmp, "evil.mig")
    open(path, "wb").write(stream)
    for args in (["check", "--json"], ["dump", "--json"]):
        out = run(*args, path)
        check(out.returncode in (0, 1), "%s exits 0 or 1 (%d): %s" %
              (" ".join(args), out.returncode, out.stderr[-200:]))
        try:
            doc = json.loads(out.stdout)
            text = json.dumps(doc)
            check("\\\\xff\\\\xfe\\\\x1b" in text, "%s shows the bytes escaped as \\xNN" %
                  " ".join(args))
        except ValueError as error:
            check(False, "%s writes JSON that parses (%s)" % (" ".join(args), error))
    for args in (["check"], ["dump"], ["dump", "--format=analyze-migration"]):
        out = run(*args, path)
        check(out.returncode in (0, 1) and printable(out.stdout) and printable(out.stderr),
              "%s: no control or non-ASCII byte reaches the terminal" % " ".join(args))
    analyze = run("dump", "--format=analyze-migration", path)
    try:
        json.loads(analyze.stdout)
        check(True, "the analyze-migration view parses")
    except ValueError:
        check(False, "the analyze-migration view parses")
    report = os.path.join(tmp, "evil.html")
    out = run("report", path, "-o", report)
    html = open(report, "rb").read() if os.path.exists(report) else b""
    check(out.returncode in (0, 1) and b"\\\\xff" in html, "report writes the page (%d)" %
          out.returncode)
    target = os.path.join(tmp, "evil-extract")
    out = run("extract", path, target)
    check(out.returncode in (0, 1), "extract exits 0 or 1 (%d)" % out.returncode)
    for name in ("state.json", "extract.json", "config.json"):
        try:
            json.load(open(os.path.join(target, name)))
            check(True, "extract's %s parses" % name)
        except (OSError, ValueError) as error:
            check(False, "extract's %s parses (%s)" % (name, error))


def test_extract_agrees_with_check(tmp):
    long_name = b"b" * 255
    streams = {
        "long block name": (header() + ram_start([(long_name, 2 * PAGE)]) +
                            ram_part([page(long_name, PAGE, 0x11)]) + ram_end() + b"\x00"),
        "64 TiB block": (header() + ram_start([(b"huge", 1 << 46)]) +
                         ram_part([page(b"huge", (1 << 46) - PAGE, 0x22)]) + ram_end() +
                         b"\x00"),
    }
    # A compressed page whose zlib stream is corrupt, and an XBZRLE page
    # whose run runs past the page.
    bad_zlib = zlib.compress(b"\x33" * PAGE)[:-6] + b"\xff" * 6
    streams["bad zlib page"] = (header() + ram_start([(b"pc.ram", 2 * PAGE)]) +
                                ram_part([be64(0x100) + b"\x06pc.ram" + be32(len(bad_zlib)) +
                                          bad_zlib]) + ram_end() + b"\x00")
    bad_xbzrle = b"\x00\xff\x7f" + b"\x00" * 8  # a zero run longer than the page
    streams["bad XBZRLE page"] = (header() + ram_start([(b"pc.ram", 2 * PAGE)]) +
                                  ram_part([page(b"pc.ram", 0, 1),
                                            be64(0x40 | 0x20) + b"\x01" + struct.pack(
                                                ">H", len(bad_xbzrle)) + bad_xbzrle]) +
                                  ram_end() + b"\x00")
    for label, stream in streams.items():
        path = os.path.join(tmp, label.replace(" ", "-") + ".mig")
        open(path, "wb").write(stream)
        checked = run("check", "--json", path)
        verdict = json.loads(checked.stdout)
        out_dir = os.path.join(tmp, label.replace(" ", "-"))
        extracted = run("extract", path, out_dir)
        check(extracted.returncode == checked.returncode,
              "%s: extract exits %d as check does (%d): %s" %
              (label, extracted.returncode, checked.returncode, extracted.stderr[-300:]))
        if checked.returncode == 1:
            first = [f for f in verdict["findings"] if f["severity"] == "error"][0]
            where = ("@0x%x" % first["offset"]).encode()
            check(where in extracted.stdout,
                  "%s: extract names the finding's offset %s" % (label, where.decode()))
    index = json.load(open(os.path.join(tmp, "long-block-name", "extract.json")))
    block = index["ram_blocks"][0]
    data = open(os.path.join(tmp, "long-block-name", block["file"]), "rb").read()
    check(len(os.path.basename(block["file"])) <= 255 and data[PAGE:] == b"\x11" * PAGE,
          "a 255-byte block name gets a file name the file system takes, with its page")
    # ext4 holds files of up to 16 TiB: the page at 64 TiB - 4 KiB is then
    # counted as not stored, and said so; elsewhere it is in the file.
    block = json.load(open(os.path.join(tmp, "64-TiB-block", "extract.json")))["ram_blocks"][0]
    stored = block["data_pages"] == 1 and "file_length" not in block
    counted = block.get("pages_beyond_file_length") == 1 and block["data_pages"] == 0
    check(block["length"] == 1 << 46 and (stored or counted),
          "a 64 TiB block is extracted with its one page, or says the file system could not "
          "hold it: %s" % block)


def test_extract_refuses_links(tmp):
    stream = (header() + ram_start([(b"pc.ram", 2 * PAGE)]) +
              ram_part([page(b"pc.ram", 0, 0x44)]) + ram_end() + b"\x00")
    path = os.path.join(tmp, "small.mig")
    open(path, "wb").write(stream)
    victim = os.path.join(tmp, "victim")
    for planted in ("state.json", "ram/pc.ram.ram", "ram"):
        open(victim, "wb").write(b"precious")
        target = os.path.join(tmp, "links-" + planted.replace("/", "-"))
        os.makedirs(os.path.join(target, "ram") if planted != "ram" else target, exist_ok=True)
        os.symlink(victim if planted != "ram" else tmp, os.path.join(target, planted))
        out = run("extract", path, target)
        check(out.returncode == 2 and open(victim, "rb").read() == b"precious",
              "extract refuses a link at DIR/%s and leaves its target alone (exit %d)" %
              (planted, out.returncode))


def test_kind_is_told_from_the_first_bytes(tmp):
    """A postcopy preempt channel has no magic: its first page record, with a
    named block, tells it apart. Four zero bytes and garbage do not, and stay
    a main stream with a bad magic; a name with a control byte is no name."""
    cases = [
        ("preempt", page(b"pc.ram", 0x1000, 7) + page(b"pc.ram", 0x2000, 9), "preempt", True),
        ("from stdin", page(b"pc.ram", 0, 1), "preempt", True),
        ("garbage", bytes(4) + b"garbage" * 10, "main", False),
        ("control byte", page(b"pc\x1bram", 0, 1), "main", False),
    ]
    for label, data, kind, valid in cases:
        if label == "from stdin":
            out = run("check", "--json", "-", stdin=data)
        else:
            path = os.path.join(tmp, label.replace(" ", "-") + ".bin")
            open(path, "wb").write(data)
            out = run("check", "--json", path)
        report = json.loads(out.stdout) if out.returncode in (0, 1) else None
        check(report is not None and report["kind"] == kind and report["valid"] == valid,
              "%s: read as %s, %s (%s)" % (label, kind, "valid" if valid else "invalid",
                                           report and (report["kind"], report["valid"])))
    bad = [f for f in report["findings"] if f["code"] == "header.bad_magic"] if report else []
    check(bad and bad[0]["offset"] == 0, "a main stream with a bad magic says so at offset 0")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        test_kind_is_told_from_the_first_bytes(tmp)
        test_names_are_escaped(tmp)
        test_extract_agrees_with_check(tmp)
        test_extract_refuses_links(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
