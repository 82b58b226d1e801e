#!/usr/bin/env python3
"""Regenerates the test data of `qmig compat` in this directory from the real
QEMUs: Debian 12's 7.2 (the system's qemu-system-x86_64) and Debian's 10.0 and
11.1 (tools/qemu-versions). Runs as root, as tools/corpus/make_corpus.py does
(the chroots of 10.0 and 11.1). Standard library only.

* qemu-VERSION-MACHINE.json.gz: `qemu-system-x86_64 -machine MACHINE
  -nodefaults -vga none -display none -accel tcg -dump-vmstate FILE`,
  gzipped (each is 0.8 to 0.9 MiB of JSON, 40 KiB gzipped).
* qemu-11.1-pc-i440fx-7.2-ltim.mig: precopy to a file (`migrate exec:cat >
  FILE`) of QEMU 11.1 running the old machine type pc-i440fx-7.2 (tiny BIOS,
  -m 16, qtest, never started), after the guest's master PIC was initialised
  in level-triggered mode through qtest (ICW1 0x19: LTIM set). Its i8259
  state then carries the subsection "i8259/ltim" (QEMU 8.0 on), which QEMU
  7.2's i8259 does not have.

Usage: tests/data/vmstate/make_vmstate_data.py [--out DIR]
"""
import argparse
import gzip
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tools", "corpus"))

from corpusgen import qemu as cq  # noqa: E402

DUMPS = [("7.2", "pc-i440fx-7.2"), ("10.0", "pc-i440fx-7.2"), ("11.1", "pc-i440fx-7.2"),
         ("11.1", "pc-i440fx-11.1")]
# The 8259's initialisation words, as a guest writes them to the master PIC:
# ICW1 with LTIM (0x08) and IC4, ICW2 (vector base 0x08), ICW3, ICW4 (8086).
LTIM_INIT = [("0x20", "0x19"), ("0x21", "0x08"), ("0x21", "0x04"), ("0x21", "0x01")]


def write_gzip(path, data):
    """gzip without a name or time in the header, so the file depends on the
    data only."""
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(data)


def make_dump(version, machine, out, tmp):
    binary = cq.use_qemu(version)
    path = os.path.join(tmp, "vmstate-%s-%s.json" % (version, machine))
    args = [binary, "-machine", machine, "-nodefaults", "-vga", "none", "-display", "none",
            "-accel", "tcg", "-dump-vmstate", path]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise SystemExit("%s: %s" % (" ".join(args), run.stderr))
    with open(path, "rb") as f:
        data = f.read()
    name = "qemu-%s-%s.json.gz" % (version, machine)
    write_gzip(os.path.join(out, name), data)
    cq.log("%s: %d bytes of JSON (%s)" % (name, len(data), cq.qemu_version()))


def make_ltim_stream(out, tmp):
    cq.use_qemu("11.1")
    machine = "pc-i440fx-7.2"
    extra = [a.replace(cq.TMP_TOKEN, tmp) for a in cq.TINY_BIOS_ARGS]
    cq.make_aux_files(tmp, cq.aux_of(cq.TINY_BIOS_ARGS))
    target = os.path.join(tmp, "ltim.mig")
    with cq.Vm("src-ltim", cq.machine_args(machine, extra) + ["-S"], tmp).start() as vm:
        for port, value in LTIM_INIT:
            vm.qt.cmd("outb %s %s" % (port, value))
        vm.qmp.cmd("migrate", uri="exec:cat > " + shlex.quote(target))
        r = cq.wait_status(vm, ("completed",), 120)
        if r.get("status") != "completed":
            raise SystemExit("migration %s: %s" % (r.get("status"), vm.stderr_text()))
    time.sleep(0.2)  # the exec child may still be flushing
    name = "qemu-11.1-pc-i440fx-7.2-ltim.mig"
    shutil.copyfile(target, os.path.join(out, name))
    cq.log("%s: %d bytes (%s)" % (name, os.path.getsize(target), cq.qemu_version()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    # A chrooted QEMU sees the host's /tmp only.
    with tempfile.TemporaryDirectory(prefix="qmig-vmstate-", dir="/tmp") as tmp:
        for version, machine in DUMPS:
            make_dump(version, machine, args.out, tmp)
        make_ltim_stream(args.out, tmp)


if __name__ == "__main__":
    main()
