#!/usr/bin/env python3
"""Make a big QEMU precopy stream for the qmig performance benchmark.

Starts Debian's qemu-system-x86_64 (7.2 by default; --qemu=10.0 or 11.1 runs
the chroot of tools/qemu-versions) with a guest of --mem MiB (default
2048) that is never run (-S, qtest accelerator), fills all of guest RAM with
non-zero data that differs between regions (qtest `memset` per 256 KiB with a
byte that cycles through 1..255, so no page is a zero page), migrates it with
`migrate exec:cat > FILE` at a very high max-bandwidth, waits for `completed`
(with a timeout) and checks the file. With --mapped-ram (QEMU 10.0 or 11.1)
it migrates with `file:FILE` and the mapped-ram capability instead: each
page at its fixed offset in the file.

The stream is written to DIR/guest-<mem>M.mig, or
DIR/guest-<mem>M-<qemu>[-mapped-ram].mig for another QEMU (DIR defaults to
${TMPDIR:-/tmp}/qmig-bench). A file that is already there and complete (its
`.done` marker matches its size) is reused, so repeated runs are fast.
Prints the path of the stream on the last line of stdout.

Standard library only. Usage:
  make_big_stream.py [--dir DIR] [--mem MiB] [--qemu=7.2|10.0|11.1] [--mapped-ram]
                     [--force] [--timeout SEC]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

# The QMP client of the corpus generator (tools/corpus/make_corpus.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus"))
from make_corpus import QMP, QMPError  # noqa: E402

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
QEMU_VERSIONS_TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                  "qemu-versions")
PAGE = 4096
REGION = 256 * 1024          # bytes per qtest memset
MACHINE = "pc-i440fx-7.2"


def log(msg):
    print("[make_big_stream] " + msg, file=sys.stderr, flush=True)


class Error(Exception):
    pass


# --- QMP / qtest clients (same protocol handling as tools/corpus/make_corpus.py)

class QTest:
    """A qtest client that pipelines many commands (the corpus one waits for
    each reply, too slow for filling gigabytes)."""

    def __init__(self, sock):
        self.f = sock.makefile("rwb")

    def send(self, line):
        self.f.write((line + "\n").encode())

    def reply(self):
        while True:
            r = self.f.readline()
            if not r:
                raise Error("qtest connection closed")
            r = r.decode().strip()
            if r.startswith("IRQ"):
                continue
            if not r.startswith("OK"):
                raise Error("qtest error: %r" % r)
            return r

    def cmd(self, line):
        self.send(line)
        self.f.flush()
        return self.reply()

    def pipelined(self, lines, depth=64):
        """Send many commands, keeping up to `depth` replies outstanding."""
        pending = 0
        for line in lines:
            self.send(line)
            pending += 1
            if pending >= depth:
                self.f.flush()
                while pending > depth // 2:
                    self.reply()
                    pending -= 1
        self.f.flush()
        while pending:
            self.reply()
            pending -= 1


def accept(ls, proc, what):
    ls.settimeout(0.2)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c, _ = ls.accept()
            c.settimeout(None)
            return c
        except socket.timeout:
            if proc.poll() is not None:
                raise Error("QEMU exited early with status %s" % proc.returncode)
    raise Error("QEMU did not connect its %s socket" % what)


def listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


# --- guest memory

def fill_commands(mem_bytes):
    """qtest commands that make every page of guest RAM non-zero.

    With -m <= 3.5 GiB on i440fx all RAM is below 4 GiB at GPA 0..mem. The
    legacy holes (0xa0000-0xfffff) are VGA/SMRAM and PAM-controlled ROM
    shadows: open them to RAM first (PAM registers 0x59-0x5f = 0x33, SMRAM
    0x72 = D_OPEN|G_SMRAME|0xa0000) so the memset reaches pc.ram there too.
    """
    cmds = []
    # i440fx host bridge is 00:00.0; config address 0x80000000 | reg & ~3.
    for reg in range(0x59, 0x60):
        cmds.append("outl 0xcf8 0x%x" % (0x80000000 | (reg & ~3)))
        cmds.append("outb 0x%x 0x33" % (0xcfc + (reg & 3)))
    cmds.append("outl 0xcf8 0x%x" % (0x80000000 | (0x72 & ~3)))
    cmds.append("outb 0x%x 0x4a" % (0xcfc + (0x72 & 3)))
    i = 0
    for addr in range(0, mem_bytes, REGION):
        cmds.append("memset 0x%x 0x%x 0x%02x" % (addr, REGION, 1 + i % 255))
        i += 1
    return cmds


# --- stream checks

def verify(path, mem_bytes, mapped_ram=False):
    """Cheap structural checks: magic, version, plausible size, JSON trailer."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(max(0, size - 4096))
        tail = f.read()
    if head[:4] != b"QEVM" or head[4:8] != b"\x00\x00\x00\x03":
        raise Error("%s: no QEVM v3 header" % path)
    pages = mem_bytes // PAGE
    # Every guest page as a PAGE record, or at its offset in a mapped-ram file.
    minimum = pages * PAGE if mapped_ram else pages * (PAGE + 8)
    if size < minimum or size > minimum + 64 * 1024 * 1024:
        raise Error("%s: size %d is not about %d (all pages of a %d MiB guest)"
                    % (path, size, minimum, mem_bytes >> 20))
    if not tail.rstrip(b"\x00").endswith(b"}"):
        raise Error("%s: no VMDESCRIPTION JSON at the end" % path)
    return size


def make(path, mem_mib, timeout, qemu, mapped_ram):
    mem_bytes = mem_mib << 20
    tmpdir = tempfile.mkdtemp(prefix="qmig-bench-qemu-")
    part = path + ".part"
    proc = None
    try:
        qmp_path = os.path.join(tmpdir, "qmp")
        qt_path = os.path.join(tmpdir, "qtest")
        lq, lt = listen(qmp_path), listen(qt_path)
        args = [qemu, "-machine", MACHINE, "-m", str(mem_mib), "-nodefaults",
                "-vga", "none", "-display", "none", "-S",
                "-rtc", "base=2020-01-01T00:00:00,clock=vm",
                "-qmp", "unix:" + qmp_path,
                "-qtest", "unix:" + qt_path, "-qtest-log", "/dev/null"]
        stderr_path = os.path.join(tmpdir, "stderr")
        stderr_f = open(stderr_path, "wb")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stderr_f,
                                stderr=stderr_f, start_new_session=True)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            qt = QTest(accept(lt, proc, "qtest"))   # qtest connects first
            qmp = QMP(accept(lq, proc, "QMP"))
        finally:
            lq.close()
            lt.close()

        t0 = time.time()
        qt.pipelined(fill_commands(mem_bytes))
        # Spot checks: first page, a legacy-hole page, the last page.
        for addr in (0, 0xa0000, 0xf0000, mem_bytes - PAGE):
            r = qt.cmd("read 0x%x 0x10" % addr)
            data = bytes.fromhex(r.split()[1][2:])
            if data == bytes(16):
                log("warning: guest page at 0x%x still reads as zero" % addr)
        log("filled %d MiB of guest RAM in %.1f s" % (mem_mib, time.time() - t0))

        if os.path.exists(part):
            os.unlink(part)
        qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 100 * 1000 ** 3})
        t0 = time.time()
        if mapped_ram:
            qmp.cmd("migrate-set-capabilities",
                    capabilities=[{"capability": "mapped-ram", "state": True}])
            qmp.cmd("migrate", uri="file:" + part)
        else:
            # The path goes through /bin/sh; quote it.
            qmp.cmd("migrate", uri="exec:cat > '%s'" % part.replace("'", "'\\''"))
        deadline = t0 + timeout
        status = None
        while time.time() < deadline:
            if proc.poll() is not None:
                raise Error("QEMU exited during migration (status %s)" % proc.returncode)
            r = qmp.cmd("query-migrate")
            status = r.get("status")
            if status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)
        if status != "completed":
            raise Error("migration ended as %r (%s)" % (status, r.get("error-desc", "")))
        log("migrated in %.1f s" % (time.time() - t0))
        try:
            qmp.cmd("quit")
        except (Error, QMPError):
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        watchdog.cancel()
        # `cat` may still be flushing when QEMU reports completed: the file is
        # final once QEMU (and its exec child) has exited.
        size = verify(part, mem_bytes, mapped_ram)
        os.rename(part, path)
        with open(path + ".done", "w") as f:
            json.dump({"size": size, "mem_mib": mem_mib, "machine": MACHINE,
                       "mapped_ram": mapped_ram,
                       "qemu": subprocess.run([qemu, "--version"], capture_output=True,
                                              text=True).stdout.splitlines()[0]}, f)
        return size
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if os.path.exists(part):
            os.unlink(part)
        shutil.rmtree(tmpdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "qmig-bench"),
                    help="where to write the stream (default ${TMPDIR:-/tmp}/qmig-bench)")
    ap.add_argument("--mem", type=int, default=2048, help="guest RAM in MiB (default 2048)")
    ap.add_argument("--qemu", default="7.2", choices=("7.2", "10.0", "11.1"),
                    help="QEMU to make it with (default 7.2, the system's; 10.0 and 11.1 "
                    "from tools/qemu-versions)")
    ap.add_argument("--mapped-ram", action="store_true",
                    help="migrate to a file with the mapped-ram capability (10.0, 11.1)")
    ap.add_argument("--force", action="store_true", help="remake the stream even if present")
    ap.add_argument("--timeout", type=int, default=900, help="limit for QEMU in seconds")
    a = ap.parse_args()
    if a.mem < 16 or a.mem > 3584:
        ap.error("--mem must be between 16 and 3584 MiB (RAM below 4 GiB)")
    if a.mapped_ram and a.qemu == "7.2":
        ap.error("--mapped-ram needs QEMU 9.0 or later: --qemu=10.0 or 11.1")
    qemu = QEMU
    if a.qemu != "7.2":
        out = subprocess.run([QEMU_VERSIONS_TOOL, "binary", a.qemu], capture_output=True,
                             text=True)
        if out.returncode != 0:
            log("error: QEMU %s is not installed (%s); run tools/setup"
                % (a.qemu, out.stderr.strip()))
            return 1
        qemu = out.stdout.strip()
    os.makedirs(a.dir, exist_ok=True)
    name = "guest-%dM" % a.mem
    if a.qemu != "7.2":
        name += "-" + a.qemu + ("-mapped-ram" if a.mapped_ram else "")
    path = os.path.join(os.path.abspath(a.dir), name + ".mig")
    done = path + ".done"
    if not a.force and os.path.exists(path) and os.path.exists(done):
        try:
            with open(done) as f:
                meta = json.load(f)
            if meta.get("size") == os.path.getsize(path) and meta.get("mem_mib") == a.mem:
                verify(path, a.mem << 20, a.mapped_ram)
                log("reusing %s (%d bytes)" % (path, meta["size"]))
                print(path)
                return 0
        except (OSError, ValueError, Error, QMPError) as e:
            log("not reusing %s: %s" % (path, e))
    for stale in (path, done):
        if os.path.exists(stale):
            os.unlink(stale)
    try:
        size = make(path, a.mem, a.timeout, qemu, a.mapped_ram)
    except (Error, QMPError) as e:
        log("error: %s" % e)
        return 1
    log("wrote %s (%d bytes)" % (path, size))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
