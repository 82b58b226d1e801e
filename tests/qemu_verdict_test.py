#!/usr/bin/env python3
"""`qmig qemu-verdict` over the whole corpus of a release, against its real QEMU
(--qemu=7.2|10.0|11.1).

For every stream a destination can load from a file, qmig runs QEMU with the
stream's recorded destination configuration (--meta) and must agree with it
(exit 0), and QEMU's verdict must be the one recorded when the corpus was
made; configured from the stream alone (no --meta), it must reach the same
verdict. Streams that need their other connections (multifd channels, a
recovery's first connection) are refused with exit status 2. A stream cut
short is rejected by both; bytes after the trailer are named as QEMU's
laxness; another machine's name is named as the destination's configuration.
From 7.2 streams only: the PACKAGED length one byte short that makes QEMU 7.2
crash while exiting is named as QEMU's fault; a postcopy page sent twice is
rejected by both.
"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

from checks import check, finish  # noqa: E402
from qemu_testing import (CORPUS, QEMU_SELECTOR, QEMU_VERSION, QMIG, ROOT,  # noqa: E402
                          require_qemu, tool_module)

qemu_stream = tool_module("fuzz/qemu_stream.py")




def verdict(stream, meta=None, timeout=30):
    args = [QMIG, "qemu-verdict", "--json", "--timeout_s=%d" % timeout, "--qemu=" + QEMU_SELECTOR]
    if meta:
        args.append("--meta=" + meta)
    run = subprocess.run(args + [stream], capture_output=True, text=True, timeout=timeout + 60)
    report = json.loads(run.stdout) if run.returncode != 2 else None
    return run.returncode, report, run.stderr


def first_postcopy_page(data):
    """[start, end) of the first page record after the postcopy package."""
    after_package = False
    for record in qemu_stream.walk_stream(data):
        after_package = after_package or record.kind == "PACKAGED"
        if after_package and record.kind in ("PART", "END"):
            for ram in record.info.get("ram") or []:
                if ram.kind == "PAGE" and not ram.info["flags"] & qemu_stream.RAM_CONTINUE:
                    return ram.start, ram.end
    raise AssertionError("no postcopy page record")


def check_advise_without_ram(tmp):
    """postcopy.mig with its POSTCOPY_ADVISE cut to length 0, which does not
    advise RAM postcopy. A destination with postcopy-ram refuses that ADVISE;
    one without takes the discards and LISTEN and fails at the first
    postcopy page (its blocks have no postcopy length). qmig's first error is
    that page."""
    postcopy = os.path.join(ROOT, "corpus", "qemu-7.2", "postcopy.mig")
    data = open(postcopy, "rb").read()
    advise = [r for r in qemu_stream.walk_stream(data)
              if r.kind == "COMMAND" and r.info["number"] == 3]
    check(len(advise) == 1 and advise[0].end - advise[0].start == 21,
          "postcopy.mig has one 16-byte POSTCOPY_ADVISE")
    start, end = advise[0].start, advise[0].end
    zero = os.path.join(tmp, "advise-zero.mig")
    with open(zero, "wb") as f:
        f.write(data[:start] + b"\x08\x00\x03\x00\x00" + data[end:])
    after_package = False
    first_record = None
    for record in qemu_stream.walk_stream(data):
        after_package = after_package or record.kind == "PACKAGED"
        if after_package and first_record is None and record.kind in ("PART", "END"):
            pages = [ram for ram in record.info.get("ram") or [] if ram.kind in ("PAGE", "ZERO")]
            first_record = pages[0].start if pages else None
    page_offset = first_record - (end - start - 5)  # the ADVISE lost 16 bytes
    meta = json.load(open(stream_meta(postcopy)))
    meta["dest_capabilities"] = [c for c in meta["dest_capabilities"] if c != "postcopy-ram"]
    no_postcopy_ram = os.path.join(tmp, "no-postcopy-ram.meta.json")
    with open(no_postcopy_ram, "w") as f:
        json.dump(meta, f)
    for meta_path, where in ((stream_meta(postcopy), "0 byte advise"),
                             (no_postcopy_ram, "Illegal RAM offset")):
        rc, report, _ = verdict(zero, meta_path)
        errors = [f for f in report["qmig"]["findings"] if f["severity"] == "error"]
        check(rc == 0 and report["relation"] == "agree: both reject" and
              where in report["qemu"]["message"],
              "0-byte ADVISE, then postcopy pages: both reject, QEMU with %r (%s)" %
              (where, report and report["relation"]))
        check(bool(errors) and errors[0]["code"] == "ram.postcopy_record" and
              errors[0]["offset"] == page_offset,
              "0-byte ADVISE: qmig's first error is the first postcopy page record (%s)" %
              (errors[:1],))


def both_reject(status_a, status_b):
    """Two QEMU outcomes that both refuse the stream. A cut stream read from
    a live connection (the 10.0 and 11.1 recordings) waits for more and
    times out; read from a file it meets the end and fails. A postcopy load
    that fails may also crash the destination as it tears down (a race in
    QEMU, seen with 7.2 and 10.0): that refuses the stream too."""
    refused = ("failed", "timeout", "paused", "crashed")
    return status_a in refused and status_b in refused


def stream_meta(stream):
    return stream[:-len(".mig")] + ".meta.json"


def main():
    if not require_qemu():
        return 1
    for stream in sorted(glob.glob(os.path.join(CORPUS, "*.mig"))):
        name = os.path.basename(stream)
        meta_path = stream[:-len(".mig")] + ".meta.json"
        meta = json.load(open(meta_path))
        rc, report, err = verdict(stream, meta_path)
        capabilities = meta.get("dest_capabilities") or []
        # A mapped-ram file holds what its multifd channels wrote.
        needs_others = ("multifd" in capabilities and "mapped-ram" not in capabilities) or \
            "postcopy-preempt" in capabilities or name.endswith(".resume.mig")
        if needs_others:
            check(rc == 2 and err.startswith("qmig qemu-verdict: "), "%s: refused, it loads only with its other "
                  "connections (%s)" % (name, err.strip()[:80]))
            continue
        check(rc == 0, "%s: qmig and QEMU agree: %s" % (name, report and report["relation"]))
        # Without --meta, configured from what the stream shows alone. A
        # device added with -device is not something a stream says how to
        # add: qmig says it cannot tell, naming the device.
        rc_plain, plain, err_plain = verdict(stream)
        if "-device" in " ".join(meta.get("dest_args") or []) and "pc-dimm" not in " ".join(
                meta.get("dest_args") or []):
            check(rc_plain == 2 and "cannot tell" in err_plain and "has no device" in err_plain,
                  "%s: without --meta, cannot tell, naming the device: %s" %
                  (name, err_plain.strip()[:160]))
        else:
            # A cut recovery connection may fail or pause, either way.
            same = (plain is not None and (plain["qemu"]["status"] == report["qemu"]["status"] or
                                           ("recover" in name and plain["qemu"]["status"] in
                                            ("failed", "paused")) or
                                           both_reject(plain["qemu"]["status"],
                                                       report["qemu"]["status"])))
            check(rc_plain == 0 and same and
                  "qemu-system-x86_64 " in plain["qemu"]["command_line"],
                  "%s: without --meta too (%s, QEMU %s): %s" %
                  (name, plain and plain["relation"], plain and plain["qemu"]["status"],
                   err_plain.strip()[:200]))
        if "recover" in name:
            # The first connection of a recovered postcopy, cut mid-stream.
            # QEMU fails, or pauses the postcopy to wait for a resume.
            check(report["qemu"]["status"] in ("failed", "paused") and not report["qmig"]["valid"],
                  "%s: both reject the cut connection (QEMU %s)" % (name, report["qemu"]["status"]))
        else:
            recorded = meta["qemu_verdict"]["status"]
            check(report["qemu"]["status"] == recorded or
                  (QEMU_VERSION != "7.2" and both_reject(report["qemu"]["status"], recorded)),
                  "%s: QEMU says %s, as recorded (%s)" % (name, report["qemu"]["status"], recorded))

    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(CORPUS, "pc-i440fx-%s.mig" % QEMU_VERSION)
        cut = os.path.join(tmp, "cut.mig")
        with open(base, "rb") as f, open(cut, "wb") as out:
            data = f.read()
            # Half of what precedes the trailer, which QEMU never reads (it is
            # more than half of an 8.2 stream).
            trailer = qemu_stream.locate_trailer(data)
            out.write(data[:(len(data) - (len(trailer) + 6 if trailer else 0)) // 2])
        rc, report, _ = verdict(cut)  # configured from the stream itself
        check(rc == 0 and report["relation"] == "agree: both reject",
              "a cut stream: both reject (%s)" % (report and report["relation"]))

        # Bytes after the trailer: QEMU never reads them, qmig names them.
        trailing = os.path.join(tmp, "trailing.mig")
        with open(base, "rb") as f, open(trailing, "wb") as out:
            out.write(f.read() + b"\x00garbage")
        rc, report, _ = verdict(trailing, stream_meta(base))
        check(rc == 0 and report["qemu"]["status"] == "completed" and
              report["relation"].startswith("QEMU is lax") and
              "stream.trailing_bytes" in report["relation"],
              "bytes after the trailer: QEMU loads it, qmig names why (%s)"
              % (report and report["relation"]))

        # Another machine's name (same length) into a destination of the
        # recorded machine: the destination's configuration, not a defect.
        machine = ("pc-i440fx-" + QEMU_VERSION).encode()
        other = machine[:-1] + (b"9" if machine[-1:] != b"9" else b"8")
        renamed = os.path.join(tmp, "renamed.mig")
        with open(base, "rb") as f, open(renamed, "wb") as out:
            data = f.read()
            assert data[13:13 + len(machine)] == machine
            out.write(data[:13] + other + data[13 + len(machine):])
        rc, report, _ = verdict(renamed, stream_meta(base))
        check(rc == 0 and report["qmig"]["valid"] and report["qemu"]["status"] == "failed" and
              report["relation"].startswith("the destination's configuration") and
              other.decode() in report["relation"],
              "another machine's name: named as the destination's configuration (%s)"
              % (report and report["relation"]))

    if QEMU_VERSION != "7.2":
        # The variants below are cut from 7.2 streams, with 7.2's recorded
        # behaviour (the oracle and regression tests cover the others).
        return finish()
    with tempfile.TemporaryDirectory() as tmp:
        regression = json.load(open(os.path.join(ROOT, "corpus", "regressions", "qemu",
                                                  "package-one-byte-short.json")))
        data = bytearray(open(os.path.join(ROOT, regression["base"]), "rb").read())
        for patch in regression["patches"]:
            data[patch["offset"]:patch["offset"] + 4] = struct.pack(">I", patch["be32"])
        short = os.path.join(tmp, "package-one-byte-short.mig")
        with open(short, "wb") as f:
            f.write(data)
        rc, report, _ = verdict(short, os.path.join(ROOT, regression["qemu"]["7.2"]["meta"]))
        status = report["qemu"]["status"]
        check(rc == 0 and status in ("failed", "crashed"),
              "package one byte short: QEMU %s (signal %s), qmig: %s" %
              (status, report["qemu"]["signal"], report["relation"]))
        check(status != "crashed" or report["relation"].startswith("QEMU is wrong"),
              "a crash of QEMU is named as QEMU's fault")

        # A postcopy page sent twice (the first page record after the
        # package, repeated): QEMU's UFFDIO_COPY fails with EEXIST.
        postcopy = os.path.join(ROOT, "corpus", "qemu-7.2", "postcopy.mig")
        data = open(postcopy, "rb").read()
        start, end = first_postcopy_page(data)
        twice = os.path.join(tmp, "postcopy-page-twice.mig")
        with open(twice, "wb") as f:
            f.write(data[:end] + data[start:end] + data[end:])
        rc, report, _ = verdict(twice, stream_meta(postcopy))
        check(rc == 0 and report["relation"].startswith("agree") and
              report["qemu"]["status"] in ("failed", "paused") and
              "ram.postcopy_page_twice" in json.dumps(report["qmig"]),
              "a postcopy page placed twice: both reject (QEMU %s, %s)" %
              (report and report["qemu"]["status"], report and report["relation"]))
        check_advise_without_ram(tmp)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
