#!/usr/bin/env python3
"""Regenerate qmig's corpus of real QEMU 7.2 migration streams.

Every stream in corpus/qemu-7.2/ is produced by Debian's qemu-system-x86_64
(7.2) driven over QMP (and qtest, for deterministic guest memory).  For each
stream a NAME.meta.json describes how it was made and what a real QEMU
destination says when it loads it (the "qemu_verdict").

Standard library only.  Usage:

  tools/corpus/make_corpus.py [--out DIR] [--only NAME ...] [--list]
  tools/corpus/make_corpus.py --verdict FILE --machine M [--caps a,b]
        [--param k=v ...] [--meta NAME.meta.json] [-- extra qemu args]

See tools/corpus/README.md.
"""

import argparse
import atexit
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
MADE_BY = "tools/corpus/make_corpus.py"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "corpus", "qemu-7.2")
PAGE = 4096
VM_TIMEOUT = 180          # hard limit for any single QEMU process (seconds)
TMP_TOKEN = "$TMP"        # stands for the per-run temp dir in recorded args

# Arguments shared by every guest: tiny, no default devices, fixed RTC so that
# device state does not depend on the wall clock.
BASE_ARGS = ["-m", "16", "-nodefaults", "-vga", "none", "-display", "none",
             "-rtc", "base=2020-01-01T00:00:00,clock=vm"]

_live_procs = []          # every QEMU we started and have not reaped yet


def log(msg):
    print("[make_corpus] " + msg, flush=True)


def _kill_all():
    for p in list(_live_procs):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass


atexit.register(_kill_all)


def qemu_version():
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    return out.splitlines()[0].strip() if out else "unknown"


# ---------------------------------------------------------------------------
# QMP / qtest clients and the QEMU process wrapper
# ---------------------------------------------------------------------------

class QMPError(Exception):
    pass


class QMP:
    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rwb")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError("bad QMP greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        try:
            line = self.f.readline()
        except (ConnectionError, OSError) as e:
            # QEMU exits by itself after a failed incoming migration.
            raise QMPError("QMP connection lost: %s" % e)
        if not line:
            raise QMPError("QMP connection closed")
        return json.loads(line)

    def cmd_raw(self, _name, **args):
        msg = {"execute": _name}
        if args:
            msg["arguments"] = args
        try:
            self.f.write((json.dumps(msg) + "\n").encode())
            self.f.flush()
        except (ConnectionError, OSError) as e:
            raise QMPError("QMP connection lost: %s" % e)
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            return r

    def cmd(self, _name, **args):
        r = self.cmd_raw(_name, **args)
        if "error" in r:
            raise QMPError("%s %s -> %s" % (_name, json.dumps(args), r["error"].get("desc")))
        return r.get("return")


class QTest:
    def __init__(self, sock):
        self.sock = sock
        self.f = sock.makefile("rwb")
        self.lock = threading.Lock()

    def cmd(self, line):
        with self.lock:
            self.f.write((line + "\n").encode())
            self.f.flush()
            while True:
                r = self.f.readline()
                if not r:
                    raise QMPError("qtest connection closed")
                r = r.decode().strip()
                if r.startswith("IRQ"):       # asynchronous IRQ notifications
                    continue
                if not r.startswith("OK"):
                    raise QMPError("qtest %r -> %r" % (line, r))
                return r

    def read(self, addr, size):
        r = self.cmd("read 0x%x 0x%x" % (addr, size))
        return bytes.fromhex(r.split()[1][2:])


def _listen_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


class Vm:
    """One QEMU process with a QMP (and optionally qtest) connection.

    The script listens on the unix sockets and QEMU connects to them (as
    libqtest does), so there is no polling for socket files.  A watchdog kills
    the process after `timeout` seconds whatever happens.
    """

    def __init__(self, name, args, tmpdir, qtest=True, timeout=VM_TIMEOUT):
        self.name = name
        self.args = list(args)
        self.tmpdir = tmpdir
        self.use_qtest = qtest
        self.timeout = timeout
        self.proc = None
        self.qmp = None
        self.qt = None
        self.stderr_path = os.path.join(tmpdir, name + ".stderr")
        self.exit_code = None

    def harness_args(self):
        a = ["-qmp", "unix:" + os.path.join(self.tmpdir, self.name + ".qmp")]
        if self.use_qtest:
            a += ["-qtest", "unix:" + os.path.join(self.tmpdir, self.name + ".qtest"),
                  "-qtest-log", "/dev/null"]
        else:
            a += ["-accel", "tcg"]
        return a

    def full_args(self):
        return [QEMU] + self.args + self.harness_args()

    def start(self):
        qmp_path = os.path.join(self.tmpdir, self.name + ".qmp")
        qt_path = os.path.join(self.tmpdir, self.name + ".qtest")
        lq = _listen_unix(qmp_path)
        lt = _listen_unix(qt_path) if self.use_qtest else None
        self.stderr_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.full_args(), stdin=subprocess.DEVNULL,
                                     stdout=self.stderr_f, stderr=self.stderr_f,
                                     start_new_session=True)
        _live_procs.append(self.proc)
        self.watchdog = threading.Timer(self.timeout, self._expire)
        self.watchdog.daemon = True
        self.watchdog.start()
        try:
            # qtest connects first (it is set up before the monitor)
            if lt is not None:
                self.qt = QTest(self._accept(lt))
            self.qmp = QMP(self._accept(lq))
        except Exception:
            self.kill()
            raise
        finally:
            lq.close()
            if lt is not None:
                lt.close()
        return self

    def _accept(self, ls):
        ls.settimeout(0.2)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c, _ = ls.accept()
                c.settimeout(None)
                return c
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise QMPError("%s exited early (%s): %s" % (
                        self.name, self.proc.returncode, self.stderr_text()))
        raise QMPError("%s did not connect" % self.name)

    def _expire(self):
        if self.proc and self.proc.poll() is None:
            log("  watchdog: killing %s after %ss" % (self.name, self.timeout))
            self.proc.kill()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_exit(self, timeout):
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.exit_code = self.proc.returncode
        self.watchdog.cancel()
        if self.proc in _live_procs:
            _live_procs.remove(self.proc)
        self.stderr_f.close()

    def quit(self):
        """Ask QEMU to quit; kill it if it does not."""
        if self.alive():
            try:
                self.qmp.cmd_raw("quit")
            except Exception:
                pass
            self.wait_exit(10)
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()


def set_caps(vm, caps):
    if caps:
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": c, "state": True} for c in caps])


def set_params(vm, params):
    if params:
        vm.qmp.cmd("migrate-set-parameters", **params)


def wait_status(vm, want, timeout, poll=0.05, during=None):
    """Poll query-migrate until the status is in `want` (or failed)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not vm.alive():
            return {"status": "exited"}
        r = vm.qmp.cmd("query-migrate")
        st = r.get("status")
        if st in want or st == "failed":
            return r
        if during:
            during(r)
        time.sleep(poll)
    return {"status": "timeout"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------
# Guest memory patterns (applied through qtest) and a model of their result
# ---------------------------------------------------------------------------

def w_writeq(addr, value):
    return {"op": "writeq", "addr": addr, "value": value}


def w_write(addr, data):
    return {"op": "write", "addr": addr, "size": len(data), "data": data.hex()}


def w_pattern(addr, tag, n):
    """A full page of page_pattern(tag, n); recorded compactly in the meta."""
    w = w_write(addr, page_pattern(tag, n))
    w["pattern"] = "%s/%d" % (tag, n)
    return w


def w_memset(addr, size, value):
    return {"op": "memset", "addr": addr, "size": size, "value": value}


def apply_write(qt, w):
    if w["op"] == "writeq":
        qt.cmd("writeq 0x%x 0x%x" % (w["addr"], w["value"]))
    elif w["op"] == "write":
        qt.cmd("write 0x%x 0x%x 0x%s" % (w["addr"], w["size"], w["data"]))
    elif w["op"] == "memset":
        qt.cmd("memset 0x%x 0x%x 0x%02x" % (w["addr"], w["size"], w["value"]))
    else:
        raise ValueError(w)


class MemModel:
    """Sparse model of guest pages touched by guest_writes (untouched = 0)."""

    def __init__(self):
        self.pages = {}

    def _page(self, pa):
        return self.pages.setdefault(pa, bytearray(PAGE))

    def put(self, addr, data):
        for i, b in enumerate(data):
            a = addr + i
            self._page(a & ~(PAGE - 1))[a & (PAGE - 1)] = b

    def apply(self, w):
        if w["op"] == "writeq":
            self.put(w["addr"], struct.pack("<Q", w["value"]))
        elif w["op"] == "write":
            self.put(w["addr"], bytes.fromhex(w["data"]))
        elif w["op"] == "memset":
            self.put(w["addr"], bytes([w["value"]]) * w["size"])

    def expected(self):
        return [{"addr": pa, "sha256": hashlib.sha256(bytes(d)).hexdigest()}
                for pa, d in sorted(self.pages.items())]


def model_of(writes):
    m = MemModel()
    for w in writes:
        m.apply(w)
    return m


def hexify_writes(writes):
    out = []
    for w in writes:
        w = dict(w)
        w["addr"] = "0x%x" % w["addr"]
        if "value" in w and w["op"] == "writeq":
            w["value"] = "0x%016x" % w["value"]
        if "size" in w:
            w["size"] = "0x%x" % w["size"]
        if "pattern" in w:
            w["data_sha256"] = hashlib.sha256(bytes.fromhex(w.pop("data"))).hexdigest()
        out.append(w)
    return out


def page_pattern(tag, n):
    """Deterministic, incompressible 4 KiB page content: the concatenation
    of s1..s128 where s0 = sha256("TAG/N") and s(k+1) = sha256(s(k))."""
    out = bytearray()
    seed = hashlib.sha256(("%s/%d" % (tag, n)).encode()).digest()
    while len(out) < PAGE:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:PAGE])


def std_writes(base=0x100000):
    """The standard pattern set written into a never-started guest."""
    return [
        w_writeq(base, 0x5145564d716d6967),                  # "gimqMVEQ" LE
        w_writeq(base + 0x8, 0x0123456789abcdef),
        w_memset(base + 0x100000, 3 * PAGE, 0xa5),           # 3 full pages of 0xa5
        w_write(base + 0x200000, bytes(range(256))),         # 00..ff
        w_writeq(base + 0x300ff8, 0xdeadbeefcafef00d),       # last qword of a page
        w_pattern(base + 0x400000, "std", 0),    # one pseudo-random page
    ]


# ---------------------------------------------------------------------------
# Stream scanner (RAM-level): used to check that the wanted records exist
# ---------------------------------------------------------------------------

F_MEM_SIZE, F_ZERO, F_PAGE, F_EOS, F_CONTINUE, F_XBZRLE, F_COMPRESS = (
    0x04, 0x02, 0x08, 0x10, 0x20, 0x40, 0x100)
CMD_NAMES = {1: "OPEN_RETURN_PATH", 2: "PING", 3: "POSTCOPY_ADVISE", 4: "LISTEN",
             5: "RUN", 6: "RAM_DISCARD", 7: "PACKAGED", 8: "ENABLE_COLO",
             9: "POSTCOPY_RESUME", 10: "RECV_BITMAP"}
RP_NAMES = {1: "SHUT", 2: "PONG", 3: "REQ_PAGES_ID", 4: "REQ_PAGES",
            5: "RECV_BITMAP", 6: "RESUME_ACK"}


class Scan:
    """Walks header, configuration, commands and RAM sections.

    Device (FULL) sections and non-RAM iterable sections cannot be parsed
    without their vmstate description; the walk stops there ("stopped_at").
    """

    def __init__(self, data, headerless=False, footers=None, sections=None):
        self.d = data
        self.i = 0
        self.headerless = headerless
        self.footers = footers
        self.ignore_shared = False
        self.postcopy_advised = False
        self.machine = None
        self.config_subsections = []
        self.caps = []
        self.items = []          # top-level summary
        self.ram = {}            # record kind -> count
        self.blocks = []
        self.sections = dict(sections or {})   # section id -> idstr
        self.stopped_at = None
        self.has_vmdesc = None
        self.package = None

    def u8(self):
        v = self.d[self.i]
        self.i += 1
        return v

    def be16(self):
        v = struct.unpack_from(">H", self.d, self.i)[0]
        self.i += 2
        return v

    def be32(self):
        v = struct.unpack_from(">I", self.d, self.i)[0]
        self.i += 4
        return v

    def be64(self):
        v = struct.unpack_from(">Q", self.d, self.i)[0]
        self.i += 8
        return v

    def cstr(self):
        n = self.u8()
        s = self.d[self.i:self.i + n].decode(errors="replace")
        self.i += n
        return s

    def run(self):
        try:
            self._run()
        except (IndexError, struct.error) as e:
            self.stopped_at = "truncated at %d (%s)" % (self.i, e)
        return self

    def _run(self):
        if not self.headerless:
            magic, ver = self.be32(), self.be32()
            if magic != 0x5145564D:
                self.stopped_at = "bad magic"
                return
            self.items.append("HEADER v%d" % ver)
            if self.d[self.i] == 0x07:
                self.i += 1
                n = self.be32()
                self.machine = self.d[self.i:self.i + n].decode()
                self.i += n
                while self.d[self.i] == 0x05:
                    self.i += 1
                    name = self.cstr()
                    self.be32()
                    self.config_subsections.append(name)
                    if name.endswith("target-page-bits"):
                        self.be32()
                    elif name.endswith("capabilities"):
                        for _ in range(self.be32()):
                            self.caps.append(self.cstr())
                    elif name.endswith("uuid"):
                        self.i += 16
                    else:
                        self.stopped_at = "unknown config subsection " + name
                        return
                self.ignore_shared = "x-ignore-shared" in self.caps
                self.items.append("CONFIGURATION(%s%s)" % (
                    self.machine, "".join("," + s for s in self.config_subsections)))
        self._loop(len(self.d), top=True)
        if self.stopped_at is None and (not self.items or self.items[-1] != "EOF") \
                and self.has_vmdesc is None:
            self.items.append("(end of data, no EOF)")

    def _loop(self, end, top):
        while self.i < end:
            t = self.u8()
            if t == 0x00:
                self.items.append("EOF")
                if top:
                    if self.i < len(self.d) and self.d[self.i] == 0x06:
                        self.i += 1
                        n = self.be32()
                        self.has_vmdesc = True
                        self.items.append("VMDESCRIPTION(%d bytes JSON)" % n)
                        self.i += n
                    else:
                        self.has_vmdesc = False
                    if self.i != len(self.d):
                        self.items.append("TRAILING %d bytes" % (len(self.d) - self.i))
                return
            if t == 0x08:
                cmd, ln = self.be16(), self.be16()
                name = CMD_NAMES.get(cmd, "CMD%d" % cmd)
                if cmd == 7:
                    size = self.be32()
                    start = self.i
                    self.items.append("CMD PACKAGED(%d) {" % size)
                    sub = Scan(self.d[start:start + size], headerless=True,
                               footers=self.footers)
                    sub._pkg_loop()
                    self.package = sub.items
                    self.items.extend("  " + x for x in sub.items)
                    self.items.append("}")
                    self.i = start + size
                    continue
                payload = self.d[self.i:self.i + ln]
                self.i += ln
                if cmd == 2:
                    self.items.append("CMD PING(%d)" % struct.unpack(">I", payload)[0])
                elif cmd == 3:
                    self.postcopy_advised = True
                    self.items.append("CMD POSTCOPY_ADVISE(len %d%s)" % (
                        ln, "" if ln == 0 else ": 0x%x,0x%x" % struct.unpack(">QQ", payload)))
                elif cmd == 6:
                    nl = payload[1]
                    rid = payload[2:2 + nl].decode()
                    nr = (ln - 3 - nl) // 16
                    self.items.append("CMD RAM_DISCARD(%s, %d ranges)" % (rid, nr))
                elif cmd == 10:
                    self.items.append("CMD RECV_BITMAP(%s)" % payload[1:].decode())
                else:
                    self.items.append("CMD %s(len %d)" % (name, ln))
                continue
            if t in (0x01, 0x04):
                sid = self.be32()
                idstr = self.cstr()
                inst, ver = self.be32(), self.be32()
                self.sections[sid] = idstr
                kind = "START" if t == 1 else "FULL"
                if idstr == "dirty-bitmap":
                    self._dbm(kind, sid)
                    continue
                if idstr != "ram":
                    self.items.append("%s %s id=%d v%d" % (kind, idstr, sid, ver))
                    self.stopped_at = "%s %s (not parsed)" % (kind, idstr)
                    return
                self._ram(kind, sid)
                continue
            if t in (0x02, 0x03):
                sid = self.be32()
                idstr = self.sections.get(sid, "?")
                kind = "PART" if t == 2 else "END"
                if idstr == "dirty-bitmap":
                    self._dbm(kind, sid)
                    continue
                if idstr != "ram":
                    self.items.append("%s %s id=%d" % (kind, idstr, sid))
                    self.stopped_at = "%s %s (not parsed)" % (kind, idstr)
                    return
                self._ram(kind, sid)
                continue
            self.stopped_at = "unexpected byte 0x%02x at %d" % (t, self.i - 1)
            return

    def _pkg_loop(self):
        """Package contents: commands are walked; FULL sections are skipped
        by searching for the trailing PING/RUN commands."""
        end = len(self.d)
        while self.i < end:
            t = self.d[self.i]
            if t == 0x08:
                self.i += 1
                cmd, ln = self.be16(), self.be16()
                payload = self.d[self.i:self.i + ln]
                self.i += ln
                if cmd == 2:
                    self.items.append("CMD PING(%d)" % struct.unpack(">I", payload)[0])
                else:
                    self.items.append("CMD %s(len %d)" % (CMD_NAMES.get(cmd, cmd), ln))
                if cmd == 5:
                    if self.i != end:
                        self.items.append("(%d bytes after RUN)" % (end - self.i))
                    return
                continue
            # device sections: count FULL headers roughly, jump to the first
            # command that is followed only by commands up to the end
            tail = self.d.rfind(b"\x08\x00\x02\x00\x04")
            cand = tail
            while True:
                prev = self.d.rfind(b"\x08\x00\x02\x00\x04", 0, cand)
                if prev < 0 or prev + 9 != cand:
                    break
                cand = prev
            if cand <= self.i:
                self.items.append("(unparsed package tail)")
                return
            self.items.append("<device FULL sections, %d bytes>" % (cand - self.i))
            self.i = cand

    def _footer(self, sid):
        if self.i < len(self.d) and self.d[self.i] == 0x7E and self.footers is not False:
            self.i += 1
            fs = self.be32()
            if fs != sid:
                raise struct.error("footer id mismatch")
            return True
        return False

    def _dbm(self, kind, sid):
        """dirty-bitmap section payload: flag bytes, each optionally followed
        by names, START data (be32 granularity, u8 flags) or BITS data."""
        parts = []
        while True:
            fl = self.u8()
            if fl & 0x80:
                raise struct.error("dirty-bitmap extra flags not handled")
            if fl & 0x08:
                parts.append("dev=" + self.cstr())
            if fl & 0x04:
                parts.append("bitmap=" + self.cstr())
            if fl & 0x10:
                gran, bfl = self.be32(), self.u8()
                parts.append("START(gran=%d,flags=0x%x)" % (gran, bfl))
            if fl & 0x40:
                first, nr = self.be64(), self.be32()
                if fl & 0x02:
                    parts.append("ZEROES(%d+%d)" % (first, nr))
                else:
                    n = self.be64()
                    self.i += n
                    parts.append("BITS(%d+%d,%d bytes)" % (first, nr, n))
            if fl & 0x20:
                parts.append("COMPLETE")
            if fl & 0x01:
                break
        foot = self._footer(sid)
        self.items.append("%s dirty-bitmap id=%d %s%s" % (
            kind, sid, " ".join(parts) or "EOS", " +footer" if foot else ""))

    def _count(self, k):
        self.ram[k] = self.ram.get(k, 0) + 1

    def _ram(self, kind, sid):
        cnt0 = dict(self.ram)
        while True:
            w = self.be64()
            flags, addr = w & 0xFFF, w & ~0xFFF
            if flags & F_MEM_SIZE:
                total = addr
                self._count("MEM_SIZE")
                while total > 0:
                    name = self.cstr()
                    ln = self.be64()
                    blk = {"name": name, "used_length": ln}
                    if self.ignore_shared:
                        blk["addr"] = self.be64()
                    self.blocks.append(blk)
                    total -= ln
                continue
            if flags & (F_ZERO | F_PAGE | F_XBZRLE | F_COMPRESS):
                if not flags & F_CONTINUE:
                    self.cstr()
                if flags & F_ZERO:
                    self.u8()
                    self._count("ZERO")
                elif flags & F_PAGE:
                    self.i += PAGE
                    self._count("PAGE")
                elif flags & F_XBZRLE:
                    self.u8()
                    n = self.be16()
                    self.i += n
                    self._count("XBZRLE")
                elif flags & F_COMPRESS:
                    n = self.be32()
                    zlib.decompress(self.d[self.i:self.i + n])
                    self.i += n
                    self._count("COMPRESS_PAGE")
                continue
            if flags & F_EOS:
                self._count("EOS")
                break
            raise struct.error("unknown RAM flags 0x%x" % flags)
        foot = self._footer(sid)
        diff = {k: v - cnt0.get(k, 0) for k, v in self.ram.items() if v != cnt0.get(k, 0)}
        self.items.append("%s ram id=%d %s%s" % (
            kind, sid, ",".join("%s:%d" % kv for kv in sorted(diff.items())),
            " +footer" if foot else ""))

    def vmdesc_trailer(self):
        """Find `06 be32(n) {json}` ending exactly at the end of the data
        (used when the walk stopped before the EOF)."""
        for m in re.finditer(rb"\x06(....)\{", self.d, re.S):
            n = struct.unpack(">I", m.group(1))[0]
            if m.start() + 5 + n == len(self.d) and self.d[m.start() - 1] == 0:
                return {"offset": m.start(), "json_len": n}
        return None

    def summary(self, max_items=60):
        items = self.items
        if len(items) > max_items:
            items = items[:max_items // 2] + ["... %d more ..." % (len(items) - max_items)] + \
                items[-max_items // 2:]
        return {"machine": self.machine, "config_subsections": self.config_subsections,
                "config_capabilities": self.caps, "ram_records": self.ram,
                "ram_blocks": self.blocks,
                "vmdescription": self.vmdesc_trailer() if not self.headerless else None,
                "walk": items, "walk_stopped_at": self.stopped_at}


def scan_rp(data):
    """Return-path messages: list of (type name, payload summary)."""
    out, i = [], 0
    while i + 4 <= len(data):
        t, ln = struct.unpack_from(">HH", data, i)
        i += 4
        p = data[i:i + ln]
        i += ln
        name = RP_NAMES.get(t, "RP%d" % t)
        if t in (1, 2, 6):
            out.append("%s(%d)" % (name, struct.unpack(">I", p)[0]))
        elif t == 3:
            st, l2, nl = struct.unpack_from(">QIB", p)
            out.append("%s(%s,0x%x,0x%x)" % (name, p[13:13 + nl].decode(), st, l2))
        elif t == 4:
            out.append("%s(0x%x,0x%x)" % ((name,) + struct.unpack(">QI", p)))
        elif t == 5:
            blk = p[1:].decode()
            size = struct.unpack_from(">Q", data, i)[0]
            i += 8 + size + 8
            out.append("%s(%s, %d bitmap bytes)" % (name, blk, size))
        else:
            out.append("%s(len %d)" % (name, ln))
    if i != len(data):
        out.append("TRAILING %d bytes" % (len(data) - i))
    return out


def scan_multifd_channel(data):
    if len(data) < 64:
        return {"error": "short"}
    magic, ver = struct.unpack_from(">II", data, 0)
    uuid = data[8:24].hex()
    cid = data[24]
    i, packets, pages, syncs = 64, 0, 0, 0
    while i + 320 <= len(data):
        pm, pv, flags, alloc, normal, nxt, num = struct.unpack_from(">IIIIIIQ", data, i)
        if pm != 0x11223344:
            break
        i += 320 + alloc * 8 + normal * PAGE
        packets += 1
        pages += normal
        syncs += flags & 1
    return {"magic": "0x%08x" % magic, "version": ver, "uuid": uuid, "channel_id": cid,
            "packets": packets, "pages": pages, "sync_packets": syncs,
            "trailing": len(data) - i}


# ---------------------------------------------------------------------------
# Verdict: what a real QEMU destination says about a stream file
# ---------------------------------------------------------------------------

def _failure_message(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    return "\n".join(lines[-6:])


def verdict(path, machine, extra_args=(), caps=(), params=None, timeout=60,
            expect_pages=None, tmpdir=None):
    """Load `path` into a fresh `-S -incoming defer` destination.

    Returns {"status": "completed"|"failed"|"timeout", "exit_code", "message"}.
    With expect_pages ([{addr, sha256}]) guest pages are read back via qtest
    after a successful load and the result is added as "ram_check".
    """
    own = tmpdir is None
    if own:
        tmpdir = tempfile.mkdtemp(prefix="qmig-verdict-")
    args = ["-machine", machine] + BASE_ARGS + list(extra_args) + ["-S", "-incoming", "defer"]
    args = [a.replace(TMP_TOKEN, tmpdir) for a in args]
    vm = Vm("verdict", args, tmpdir, qtest=True, timeout=timeout + 30)
    res = {}
    try:
        vm.start()
        set_caps(vm, caps)
        set_params(vm, params)
        vm.qmp.cmd("migrate-incoming", uri="exec:cat " + shlex.quote(os.path.abspath(path)))
        r = wait_status(vm, ("completed",), timeout)
        st = r.get("status")
        if st == "completed":
            res = {"status": "completed"}
            if expect_pages:
                res["ram_check"] = check_pages(vm, expect_pages)
            vm.quit()
            res["exit_code"] = vm.exit_code
            res["message"] = _failure_message(vm.stderr_text())
        elif st == "timeout":
            vm.kill()
            res = {"status": "timeout", "exit_code": vm.exit_code,
                   "message": "destination still waiting after %ss; killed" % timeout}
        else:
            # 7.2 exits with status 1 after a failed incoming migration
            vm.wait_exit(15)
            vm.kill()
            res = {"status": "failed", "exit_code": vm.exit_code,
                   "message": _failure_message(vm.stderr_text())}
    except QMPError as e:
        vm.wait_exit(15)
        vm.kill()
        res = {"status": "failed", "exit_code": vm.exit_code,
               "message": _failure_message(vm.stderr_text()) or str(e)}
    finally:
        vm.kill()
        if own:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return res


def check_pages(vm, expect_pages):
    bad = []
    for p in expect_pages:
        got = hashlib.sha256(vm.qt.read(p["addr"], PAGE)).hexdigest()
        if got != p["sha256"]:
            bad.append("0x%x" % p["addr"])
    return "ok (%d pages)" % len(expect_pages) if not bad else "MISMATCH at " + ",".join(bad)


# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------

class Ctx:
    def __init__(self, out, tmp, version):
        self.out = out
        self.tmp = tmp
        self.version = version

    def public(self, args):
        """Recorded args: temp dir replaced by $TMP."""
        return [a.replace(self.tmp, TMP_TOKEN) for a in args]


def meta_name(fname):
    base = fname[:-4] if fname.endswith(".mig") else fname
    return base + ".meta.json"


def write_meta(ctx, fname, meta):
    path = os.path.join(ctx.out, fname)
    with open(path, "rb") as f:
        data = f.read()
    m = {"file": fname, "made_by": MADE_BY, "qemu_version": ctx.version}
    m.update(meta)
    m["size"] = len(data)
    m["sha256"] = hashlib.sha256(data).hexdigest()
    with open(os.path.join(ctx.out, meta_name(fname)), "w") as f:
        json.dump(m, f, indent=2, sort_keys=False)
        f.write("\n")
    return m


TINY_BIOS = "tiny-bios.bin"
TINY_BIOS_ARGS = ["-bios", os.path.join(TMP_TOKEN, TINY_BIOS)]


def make_aux_files(tmpdir, aux):
    """Create the auxiliary files a configuration refers to as $TMP/NAME.

    aux: {name: {"kind": "tiny-bios"|"zero", "size": N}}.  tiny-bios is a
    64 KiB firmware image that is all zero except `hlt; jmp $-1` at the reset
    vector: it keeps pc.bios down to one non-zero page (guests never run).
    """
    for name, a in (aux or {}).items():
        with open(os.path.join(tmpdir, name), "wb") as f:
            if a["kind"] == "tiny-bios":
                img = bytearray(a["size"])
                img[a["size"] - 16:a["size"] - 13] = b"\xf4\xeb\xfd"
                f.write(img)
            else:
                f.truncate(a["size"])


def aux_of(args):
    aux = {}
    for a in args:
        if TMP_TOKEN + "/" + TINY_BIOS in a:
            aux[TINY_BIOS] = {"kind": "tiny-bios", "size": 65536}
        m = re.search(r"mem-path=\$TMP/([^,]+)", a)
        if m:
            sz = re.search(r"size=(\d+)M", a)
            aux[m.group(1)] = {"kind": "zero", "size": (int(sz.group(1)) if sz else 16) << 20}
    return aux


def slim(meta, main_file):
    """Meta for a companion file: the guest memory description lives only in
    the main stream's meta."""
    m = {k: v for k, v in meta.items()
         if k not in ("guest_writes", "guest_writes_during_migration", "expected_pages")}
    m["guest_writes_see"] = meta_name(main_file)
    return m


def machine_args(machine, extra=()):
    return ["-machine", machine] + BASE_ARGS + list(extra)


# ---------------------------------------------------------------------------
# Stream recipes
# ---------------------------------------------------------------------------

def make_file_stream(ctx, spec):
    """Precopy of a qtest guest to a file via `migrate exec:cat > FILE`."""
    name = spec["name"]
    machine = spec["machine"]
    extra = spec.get("extra", [])
    caps = spec.get("caps", [])
    params = spec.get("params", {})
    dest_params = spec.get("dest_params", {})
    writes = spec.get("writes", std_writes())
    fname = name + ".mig"
    tmpfile = os.path.join(ctx.tmp, fname)
    args = machine_args(machine, [a.replace(TMP_TOKEN, ctx.tmp) for a in extra]) + ["-S"]
    make_aux_files(ctx.tmp, aux_of(extra))
    log("%s: source %s caps=%s" % (name, machine, caps))
    dirt_log = []
    with Vm("src-" + name, args, ctx.tmp).start() as vm:
        for q in spec.get("qmp_setup", []):
            vm.qmp.cmd(q[0], **q[1])
        for w in writes:
            apply_write(vm.qt, w)
        set_caps(vm, caps)
        set_params(vm, params)
        vm.qmp.cmd("migrate", uri="exec:cat > " + shlex.quote(tmpfile))
        dirtier = spec.get("dirtier")
        if dirtier:
            dirt_log = dirtier(vm)
        r = wait_status(vm, ("completed",), 120)
        if r.get("status") != "completed":
            raise RuntimeError("%s: source migration %s: %s" % (
                name, r.get("status"), r.get("error-desc", vm.stderr_text())))
        src_info = {k: r.get(k) for k in ("ram", "xbzrle-cache", "compression") if k in r}
        full_args = vm.full_args()
    # the exec child may still be flushing
    time.sleep(0.2)
    shutil.copyfile(tmpfile, os.path.join(ctx.out, fname))
    all_writes = writes + dirt_log
    expect = model_of(all_writes).expected()
    exp_check = [p for p in expect if p["addr"] not in spec.get("not_in_stream", [])]
    dest_caps = spec.get("dest_caps", caps)
    v = verdict(os.path.join(ctx.out, fname), machine, extra, dest_caps, dest_params,
                expect_pages=exp_check, tmpdir=ctx.tmp)
    log("%s: verdict %s %s" % (name, v["status"], v.get("ram_check", "")))
    sc = Scan(open(os.path.join(ctx.out, fname), "rb").read(),
              footers=spec.get("footers")).run()
    for req in spec.get("require", []):
        req(sc)
    meta = {
        "kind": spec.get("kind", "precopy"),
        "description": spec["description"],
        "machine": machine,
        "qemu_args": ctx.public(full_args) + ["(QMP) migrate exec:cat > FILE"],
        "config_args": ctx.public(extra),
        "dest_args": ctx.public(machine_args(machine, extra) + ["-S", "-incoming", "defer"]),
        "aux_files": aux_of(extra),
        "capabilities": caps,
        "dest_capabilities": dest_caps,
        "parameters": params,
        "dest_parameters": dest_params,
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt_log),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": p in exp_check} for p in expect],
        "qmp_setup": spec.get("qmp_setup", []),
        "source_stats": src_info,
        "deterministic": spec.get("deterministic", True),
        "companions": [],
        "scan": sc.summary(),
        "qemu_verdict": v,
    }
    if spec.get("notes"):
        meta["notes"] = spec["notes"]
    write_meta(ctx, fname, meta)
    if v["status"] != "completed" and spec.get("expect_verdict", "completed") == "completed":
        raise RuntimeError("%s: destination did not complete: %s" % (name, v))
    return [fname]


def req_ram(kind, minimum=1):
    def check(sc):
        if sc.ram.get(kind, 0) < minimum:
            raise RuntimeError("stream has %d %s records (want >= %d)" % (
                sc.ram.get(kind, 0), kind, minimum))
    return check


def req_item(pattern):
    def check(sc):
        if not any(re.search(pattern, x) for x in sc.items):
            raise RuntimeError("stream walk lacks %r" % pattern)
    return check


def req_config(sub):
    def check(sc):
        if sub not in sc.config_subsections:
            raise RuntimeError("configuration lacks subsection %s" % sub)
    return check


def req_described_twice(name, instance_id):
    """The VMDESCRIPTION lists the device instance (name, instance_id) more
    than once, as QEMU writes it for devices registered with a fixed
    instance id on a bus without device paths."""
    def check(sc):
        trailer = sc.vmdesc_trailer()
        if trailer is None:
            raise RuntimeError("stream has no VMDESCRIPTION")
        start = trailer["offset"] + 5
        desc = json.loads(sc.d[start:start + trailer["json_len"]])
        n = sum(1 for d in desc["devices"]
                if d["name"] == name and d["instance_id"] == instance_id)
        if n < 2:
            raise RuntimeError("VMDESCRIPTION lists %s #%d %d time(s), want >= 2" % (
                name, instance_id, n))
    return check


def rewrite_dirtier(base, npages, rounds, period):
    """Dirtier for a source with pause-before-switchover: while the migration
    is active, rewrite one qword in each of `npages` pages every `period`
    seconds (at most `rounds` times), then once more while it waits in
    pre-switchover (the completion pass syncs the dirty bitmap after that
    pause, so every write is in the stream; no race with convergence)."""
    def one_round(vm, r, done):
        for p in range(npages):
            w = w_writeq(base + p * PAGE + (r % 64) * 64, 0x1000000 * (r + 1) + p)
            apply_write(vm.qt, w)
            done.append(w)

    def run(vm):
        done = []
        r = 0
        deadline = time.time() + 60
        while time.time() < deadline:
            st = vm.qmp.cmd("query-migrate").get("status")
            if st == "active" and r < rounds:
                one_round(vm, r, done)
                r += 1
                if r == rounds:   # allow convergence from now on
                    vm.qmp.cmd("migrate-set-parameters", **{"downtime-limit": 300})
            elif st == "pre-switchover":
                one_round(vm, r, done)
                vm.qmp.cmd("migrate-continue", state="pre-switchover")
                break
            elif st not in ("active", "setup"):
                raise RuntimeError("migration %s while dirtying" % st)
            time.sleep(period)
        return done
    return run


# -- live migrations through a recording proxy -------------------------------

class Conn:
    def __init__(self, idx, csock, ssock):
        self.idx = idx
        self.c = csock
        self.s = ssock
        self.fwd = bytearray()   # client (source) -> server (destination)
        self.rev = bytearray()   # server -> client
        self.threads = []
        self.closed = False


class Proxy:
    """TCP proxy on 127.0.0.1 that records both directions of every
    connection it forwards."""

    def __init__(self, target_port):
        self.target = target_port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._accept_loop, daemon=True)
        self.t.start()

    def _accept_loop(self):
        self.ls.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            try:
                s = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                s.settimeout(None)
            except OSError as e:
                log("  proxy: cannot reach destination port %d: %s" % (self.target, e))
                c.close()
                continue
            with self.lock:
                conn = Conn(len(self.conns), c, s)
                self.conns.append(conn)
            for src, dst, buf in ((c, s, conn.fwd), (s, c, conn.rev)):
                t = threading.Thread(target=self._pump, args=(conn, src, dst, buf), daemon=True)
                t.start()
                conn.threads.append(t)

    def _pump(self, conn, src, dst, buf):
        while True:
            try:
                b = src.recv(65536)
            except OSError:
                b = b""
            if not b or conn.closed:
                break
            buf += b
            try:
                dst.sendall(b)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self):
        """Cut every open connection (both sockets)."""
        with self.lock:
            for conn in self.conns:
                conn.closed = True
                for s in (conn.c, conn.s):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()

    def close(self, wait=5):
        self.stop = True
        for conn in self.conns:
            for t in conn.threads:
                t.join(wait)
        try:
            self.ls.close()
        except OSError:
            pass
        for conn in self.conns:
            for s in (conn.c, conn.s):
                try:
                    s.close()
                except OSError:
                    pass


def dest_listen(vm, caps, params):
    set_caps(vm, caps)
    set_params(vm, params)
    vm.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:0")
    r = vm.qmp.cmd("query-migrate")
    for sa in r.get("socket-address", []):
        if sa.get("port"):
            return int(sa["port"])
    raise RuntimeError("destination did not report its port: %r" % r)


def live_pair(ctx, name, machine, extra, src_caps, src_params, dest_caps, dest_params,
              writes):
    make_aux_files(ctx.tmp, aux_of(extra))
    extra = [a.replace(TMP_TOKEN, ctx.tmp) for a in extra]
    src_args = machine_args(machine, extra) + ["-S"]
    # the live destination runs (no -S) so that postcopy RUN starts it
    dst_args = machine_args(machine, extra) + ["-incoming", "defer"]
    src = Vm("src-" + name, src_args, ctx.tmp).start()
    dst = Vm("dst-" + name, dst_args, ctx.tmp).start()
    for w in writes:
        apply_write(src.qt, w)
    set_caps(src, src_caps)
    set_params(src, src_params)
    port = dest_listen(dst, dest_caps, dest_params)
    return src, dst, port


def postcopy_writes():
    ws = std_writes()
    # 32 distinct pages at 8 MiB: precopy is throttled, so many of them are
    # still unsent when postcopy starts and are pushed or requested later
    for n in range(32):
        ws.append(w_pattern(0x800000 + n * PAGE, "postcopy", n))
    return ws


def _finish_live(src, dst, proxy, writes, dirt, events):
    """Waits for both sides of a live migration to complete, checks the
    destination's pages, and shuts everything down. Returns the expected
    pages, both command lines and the destination's verdict."""
    rs = wait_status(src, ("completed",), 90)
    rd = wait_status(dst, ("completed",), 30)
    events.append("source %s, destination %s" % (rs.get("status"), rd.get("status")))
    expect = model_of(writes + dirt).expected()
    ram_check = check_pages(dst, expect) if rd.get("status") == "completed" else None
    src_full, dst_full = src.full_args(), dst.full_args()
    src.quit()
    dst.quit()
    proxy.close()
    dst_verdict = {"status": rd.get("status"), "exit_code": dst.exit_code,
                   "message": _failure_message(dst.stderr_text()) or rd.get("error-desc", "")}
    if ram_check:
        dst_verdict["ram_check"] = ram_check
    return expect, src_full, dst_full, dst_verdict


def make_postcopy(ctx, spec):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    extra = list(TINY_BIOS_ARGS)
    caps = ["postcopy-ram"]
    params = {"max-bandwidth": 64 * 1024, "max-postcopy-bandwidth": 64 * 1024,
              "downtime-limit": 1}
    writes = postcopy_writes()
    recover = spec.get("recover", False)
    log("%s: live postcopy %s through recording proxy" % (name, machine))
    src, dst, dport = live_pair(ctx, name, machine, extra, caps, params, caps, {}, writes)
    proxy = Proxy(dport)
    dirt = []
    events = []
    try:
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        # keep dirtying already-sent low pages so precopy has real iterations
        t0 = time.time()
        r = 0
        while time.time() - t0 < 1.0:
            st = src.qmp.cmd("query-migrate")
            if st.get("status") not in ("setup", "active"):
                raise RuntimeError("%s: source status %s before postcopy: %s" % (
                    name, st.get("status"), st.get("error-desc")))
            w = w_writeq(0x100000 + (r % 4) * PAGE + 0x800, 0x7700 + r)
            apply_write(src.qt, w)
            dirt.append(w)
            r += 1
            time.sleep(0.1)
        src.qmp.cmd("migrate-start-postcopy")
        events.append("migrate-start-postcopy at %.1fs" % (time.time() - t0))
        # wait for the destination to run in postcopy, then touch pages that
        # have not arrived yet: the destination faults and sends REQ_PAGES
        st = wait_status(dst, ("postcopy-active", "completed"), 30)
        events.append("destination %s" % st.get("status"))
        touched = []
        if st.get("status") == "postcopy-active":
            for n in (31, 24, 17):
                a = 0x800000 + n * PAGE
                t1 = time.time()
                dst.qt.read(a, 8)
                touched.append({"addr": "0x%x" % a, "seconds": round(time.time() - t1, 3)})
            events.append("destination read (faults) %s" % touched)
        if recover:
            return _postcopy_recover(ctx, spec, src, dst, proxy, caps, params, writes, dirt,
                                     events, t0)
        expect, src_full, dst_full, dst_verdict = _finish_live(src, dst, proxy, writes, dirt,
                                                               events)
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    conn = proxy.conns[0]
    open(os.path.join(ctx.out, name + ".mig"), "wb").write(conn.fwd)
    open(os.path.join(ctx.out, name + ".rp"), "wb").write(conn.rev)
    sc = Scan(bytes(conn.fwd)).run()
    rp = scan_rp(bytes(conn.rev))
    seq = " ".join(sc.items)
    missing = [k for k in ("PACKAGED", "LISTEN", "RUN", "RAM_DISCARD") if k not in seq]
    if missing:
        raise RuntimeError("%s: stream lacks %s" % (name, missing))
    if not any(x.startswith("PONG") for x in rp):
        raise RuntimeError("%s: return path has no PONG" % name)
    if not any(x.startswith("REQ_PAGES") for x in rp):
        log("%s: WARNING: no REQ_PAGES on the return path this time" % name)
    # file verdict too: the whole postcopy stream fed through exec:cat
    fv = verdict(os.path.join(ctx.out, name + ".mig"), machine, extra, caps, {},
                 tmpdir=ctx.tmp, expect_pages=expect)
    log("%s: live destination %s %s; file verdict %s" % (
        name, dst_verdict["status"], dst_verdict.get("ram_check", ""), fv["status"]))
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:127.0.0.1:PROXY",
                                             "(QMP) migrate-start-postcopy"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0"],
        "config_args": extra, "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": {},
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False,
        "events": events,
    }
    m = dict(common, kind="postcopy-main", description=spec["description"],
             companions=[name + ".rp"], scan=sc.summary(80), qemu_verdict=dst_verdict,
             qemu_verdict_source="live destination",
             file_verdict=fv)
    write_meta(ctx, name + ".mig", m)
    r = dict(slim(common, name + ".mig"), kind="return-path",
             description="Return path (destination -> source) of %s.mig" % name,
             companions=[name + ".mig"], messages=rp, qemu_verdict=dst_verdict,
             qemu_verdict_source="live destination (the stream pair as a whole)")
    write_meta(ctx, name + ".rp", r)
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return [name + ".mig", name + ".rp"]


def _postcopy_recover(ctx, spec, src, dst, proxy, caps, params, writes, dirt, events, t0):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    try:
        time.sleep(0.5)
        proxy.cut()
        events.append("proxy cut both sockets at %.1fs" % (time.time() - t0))
        rs = wait_status(src, ("postcopy-paused",), 30)
        rd = wait_status(dst, ("postcopy-paused",), 30)
        events.append("after cut: source %s, destination %s" % (rs.get("status"), rd.get("status")))
        if rs.get("status") != "postcopy-paused" or rd.get("status") != "postcopy-paused":
            raise RuntimeError("%s: not paused: %s / %s" % (name, rs.get("status"), rd.get("status")))
        rport = free_port()
        dst.qmp.cmd("migrate-recover", uri="tcp:127.0.0.1:%d" % rport)
        proxy.target = rport
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port, resume=True)
        events.append("migrate-recover / migrate resume=true")
        expect, src_full, dst_full, dst_verdict = _finish_live(src, dst, proxy, writes, dirt,
                                                               events)
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    if len(proxy.conns) < 2:
        raise RuntimeError("%s: no resumed connection recorded" % name)
    files = []
    first, second = proxy.conns[0], proxy.conns[-1]
    parts = [(name + ".mig", first.fwd, "postcopy-main (cut)"),
             (name + ".rp", first.rev, "return-path"),
             (name + ".resume.mig", second.fwd, "postcopy-resume-main"),
             (name + ".resume.rp", second.rev, "return-path")]
    for fn, data, _ in parts:
        open(os.path.join(ctx.out, fn), "wb").write(data)
        files.append(fn)
    sc1 = Scan(bytes(first.fwd)).run()
    sc2 = Scan(bytes(second.fwd), headerless=True, sections=sc1.sections).run()
    if not any("RECV_BITMAP" in x for x in sc2.items):
        raise RuntimeError("%s: resumed stream lacks RECV_BITMAP" % name)
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:PROXY", "(QMP) migrate-start-postcopy",
                                             "(proxy cuts)", "(QMP) migrate tcp:PROXY resume=true"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0",
                                             "(QMP) migrate-recover tcp:127.0.0.1:PORT"],
        "config_args": list(TINY_BIOS_ARGS), "aux_files": aux_of(TINY_BIOS_ARGS),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": {},
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False, "events": events,
        "companions": files, "qemu_verdict": dst_verdict,
        "qemu_verdict_source": "live destination (whole recovered migration)",
    }
    descs = {
        name + ".mig": ("postcopy-main", "First connection of a postcopy migration, cut by the "
                        "proxy during postcopy (ends abruptly, no EOF)", sc1.summary(80)),
        name + ".rp": ("return-path", "Return path of the first (cut) connection", None),
        name + ".resume.mig": ("postcopy-resume", "Second connection after migrate-recover / "
                               "resume=true: no header, starts with RECV_BITMAP commands",
                               sc2.summary(80)),
        name + ".resume.rp": ("return-path", "Return path of the resumed connection "
                              "(RECV_BITMAP replies with bitmaps, RESUME_ACK, ...)", None),
    }
    for fn in files:
        kind, desc, summ = descs[fn]
        m = dict(common if fn == name + ".mig" else slim(common, name + ".mig"),
                 kind=kind, description=desc)
        if summ:
            m["scan"] = summ
        else:
            m["messages"] = scan_rp(open(os.path.join(ctx.out, fn), "rb").read())
        write_meta(ctx, fn, m)
    log("%s: live destination %s %s" % (name, dst_verdict["status"],
                                         dst_verdict.get("ram_check", "")))
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return files


def make_multifd(ctx, spec):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    caps = ["multifd"]
    params = {"multifd-channels": 2}
    writes = std_writes() + [w_pattern(0x800000 + n * PAGE, "multifd", n)
                             for n in range(16)]
    log("%s: live multifd migration through recording proxy" % name)
    extra = list(TINY_BIOS_ARGS)
    src, dst, dport = live_pair(ctx, name, machine, extra, caps, params, caps, params, writes)
    proxy = Proxy(dport)
    try:
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        rs = wait_status(src, ("completed",), 60)
        rd = wait_status(dst, ("completed",), 30)
        expect = model_of(writes).expected()
        ram_check = check_pages(dst, expect) if rd.get("status") == "completed" else None
        src_full, dst_full = src.full_args(), dst.full_args()
        src.quit()
        dst.quit()
        proxy.close()
        dst_verdict = {"status": rd.get("status"), "exit_code": dst.exit_code,
                       "message": _failure_message(dst.stderr_text()) or rd.get("error-desc", "")}
        if ram_check:
            dst_verdict["ram_check"] = ram_check
        log("%s: source %s, destination %s %s" % (name, rs.get("status"), rd.get("status"),
                                                 ram_check or ""))
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    main, chans = None, []
    for conn in proxy.conns:
        if conn.fwd[:4] == b"QEVM":
            main = conn
        elif conn.fwd[:4] == b"\x11\x22\x33\x44":
            chans.append(conn)
    if main is None or len(chans) != 2:
        raise RuntimeError("%s: expected 1 main + 2 multifd connections, got %d" % (
            name, len(proxy.conns)))
    files = [name + ".mig"]
    open(os.path.join(ctx.out, name + ".mig"), "wb").write(main.fwd)
    chinfo = []
    for conn in chans:
        cid = conn.fwd[24]
        fn = "%s.ch%d.bin" % (name, cid)
        open(os.path.join(ctx.out, fn), "wb").write(conn.fwd)
        files.append(fn)
        chinfo.append((fn, conn))
    order = ["main" if c is main else "ch%d" % c.fwd[24] for c in proxy.conns]
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:127.0.0.1:PROXY"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0"],
        "config_args": extra, "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": params,
        "guest_writes": hexify_writes(writes),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False, "connection_order": order,
        "qemu_verdict": dst_verdict, "qemu_verdict_source": "live destination",
    }
    sc = Scan(bytes(main.fwd)).run()
    write_meta(ctx, name + ".mig", dict(
        common, kind="multifd-main",
        description="Main channel of a 2-channel multifd migration (zero pages, EOS, devices)",
        companions=files[1:], scan=sc.summary(),
        reverse_bytes=len(main.rev)))
    for fn, conn in chinfo:
        write_meta(ctx, fn, dict(
            slim(common, name + ".mig"), kind="multifd-channel",
            description="multifd channel %d of %s.mig (64-byte init + packets)" % (
                conn.fwd[24], name),
            companions=[f for f in files if f != fn], channel=scan_multifd_channel(bytes(conn.fwd)),
            reverse_bytes=len(conn.rev)))
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return files


# ---------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------

DIMM_BASE = 0x100000000     # first pc-dimm on pc machines with < 4 GiB RAM
UUID = "5145564d-716d-6967-8000-000000000001"


def specs():
    s = []

    def add(**kw):
        kw.setdefault("make", make_file_stream)
        s.append(kw)

    add(name="pc-i440fx-7.2", machine="pc-i440fx-7.2",
        description="Precopy of a never-started pc-i440fx-7.2 guest with written patterns: "
                    "CONFIGURATION, section footers, VMDESCRIPTION JSON trailer.",
        require=[req_item("CONFIGURATION"), req_item(r"\+footer")])
    add(name="pc-i440fx-7.2-changed", machine="pc-i440fx-7.2",
        writes=std_writes() + [
            w_writeq(0x100000, 0x1122334455667788),       # changes a page pc-i440fx-7.2 has
            w_memset(0x700000, 2 * PAGE, 0x5a),            # two pages that are zero there
        ],
        description="The pc-i440fx-7.2 guest with three pages changed (0x100000, 0x700000, "
                    "0x701000): the pair `qmig diff` is tested on.",
        require=[req_item("CONFIGURATION")])
    add(name="pc-q35-7.2", machine="pc-q35-7.2",
        description="Same as pc-i440fx-7.2 on the q35 machine.",
        require=[req_item("CONFIGURATION"), req_item(r"\+footer")])
    add(name="pc-i440fx-2.3", machine="pc-i440fx-2.3", footers=False, extra=TINY_BIOS_ARGS,
        description="Old machine type: no CONFIGURATION, no section footers, no globalstate; "
                    "VMDESCRIPTION present.")
    add(name="pc-i440fx-2.2", machine="pc-i440fx-2.2", footers=False, extra=TINY_BIOS_ARGS,
        description="Old machine type: no CONFIGURATION, no footers and suppress-vmdesc=on "
                    "(no JSON trailer).")
    add(name="no-footer", machine="pc-i440fx-7.2", footers=False,
        extra=TINY_BIOS_ARGS + ["-global", "migration.send-section-footer=off"],
        description="pc-i440fx-7.2 with -global migration.send-section-footer=off.")
    add(name="no-config", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-global", "migration.send-configuration=off"],
        description="pc-i440fx-7.2 with -global migration.send-configuration=off.")
    add(name="xbzrle", machine="pc-i440fx-7.2", extra=TINY_BIOS_ARGS,
        caps=["xbzrle", "pause-before-switchover"],
        dest_caps=["xbzrle"],
        params={"max-bandwidth": 512 * 1024, "downtime-limit": 1,
                "xbzrle-cache-size": 1024 * 1024},
        dirtier=rewrite_dirtier(0x900000, 8, 8, 0.1),
        writes=std_writes() + [w_pattern(0x900000 + n * PAGE, "xbzrle", n)
                               for n in range(8)],
        deterministic=False,
        require=[req_ram("XBZRLE")],
        description="xbzrle capability; 8 pages at 0x900000 are rewritten via qtest while "
                    "the migration runs (and once more in pre-switchover, source-only "
                    "capability pause-before-switchover), so later iterations and the "
                    "completion pass carry XBZRLE (0x40) records.")
    add(name="compress", machine="pc-i440fx-7.2", extra=TINY_BIOS_ARGS,
        caps=["compress"],
        params={"compress-threads": 1, "compress-level": 1},
        dest_params={"decompress-threads": 1},
        require=[req_ram("COMPRESS_PAGE")],
        deterministic=False,
        description="compress capability (1 thread, level 1): non-zero pages as "
                    "COMPRESS_PAGE (0x100) zlib records; the first page of each block is a "
                    "plain PAGE.")
    add(name="multi-block", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-m", "16,slots=2,maxmem=64M",
               "-object", "memory-backend-ram,id=mem1,size=2M",
               "-object", "memory-backend-ram,id=mem2,size=4M",
               "-device", "pc-dimm,id=dimm1,memdev=mem1,addr=0x%x" % DIMM_BASE,
               "-device", "pc-dimm,id=dimm2,memdev=mem2,addr=0x%x" % (DIMM_BASE + 0x200000)],
        writes=std_writes() + [
            w_writeq(DIMM_BASE, 0x4d4d4944314d454d),
            w_pattern(DIMM_BASE + 0x1000, "dimm1", 0),
            w_memset(DIMM_BASE + 0x200000, 2 * PAGE, 0x5a),
            w_writeq(DIMM_BASE + 0x5ffff8, 0x4d4d4944324d454d)],
        require=[req_item("MEM_SIZE")],
        description="Two pc-dimm devices backed by memory-backend-ram (RAMBlocks mem1 2 MiB "
                    "at 4 GiB, mem2 4 MiB at 4 GiB+2 MiB) with patterns.")
    shared = os.path.join(TMP_TOKEN, "shared-ram")
    add(name="ignore-shared", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-object", "memory-backend-file,id=ram0,size=16M,share=on,mem-path=" + shared,
               "-machine", "memory-backend=ram0",
               "-m", "16,slots=1,maxmem=32M",
               "-object", "memory-backend-ram,id=mem1,size=2M",
               "-device", "pc-dimm,id=dimm1,memdev=mem1,addr=0x%x" % DIMM_BASE],
        caps=["x-ignore-shared"],
        writes=std_writes() + [w_pattern(DIMM_BASE, "private", 0)],
        not_in_stream=[p["addr"] for p in model_of(std_writes()).expected()],
        require=[req_config("configuration/capabilities")],
        notes="Main RAM (pc.ram backed by the shared file ram0) is skipped by x-ignore-shared: "
              "its pages are not in the stream. The verdict destination maps the same file, so "
              "those pages read back from the file, not from the stream. A destination started "
              "later with a fresh file still loads the stream. Only dimm1 (private) pages are "
              "checked against the stream.",
        description="x-ignore-shared with main RAM on a share=on memory-backend-file: "
                    "configuration/capabilities subsection, MEM_SIZE entries with a GPA, "
                    "no pages for the shared block; a private pc-dimm block is migrated.")
    add(name="dirty-bitmaps", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-blockdev", "driver=null-co,node-name=disk0,size=4194304"],
        caps=["dirty-bitmaps"],
        # without a bandwidth limit 7.2 spins through ~80000 empty PART
        # iterations (ram + dirty-bitmap) during the first 100 ms, before
        # its first bandwidth estimate: 1.8 MB of 22-byte records
        params={"max-bandwidth": 256 * 1024},
        qmp_setup=[["block-dirty-bitmap-add", {"node": "disk0", "name": "bitmap0",
                                               "granularity": 65536}],
                   ["human-monitor-command",
                    {"command-line": "qemu-io disk0 \"write 0 64k\""}],
                   ["human-monitor-command",
                    {"command-line": "qemu-io disk0 \"write 1M 192k\""}]],
        require=[req_item(r"POSTCOPY_ADVISE\(len 0\)"), req_item("dirty-bitmap")],
        deterministic=False,
        description="dirty-bitmaps capability: POSTCOPY_ADVISE with len 0 in plain precopy and "
                    "a dirty-bitmap iterable section carrying non-persistent bitmap "
                    "'bitmap0' of null-co node disk0 (bits set for 0-64K and 1M-1M+192K).")
    add(name="isa-ide-twice", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-device", "isa-ide,iobase=0x1e8,iobase2=0x3ee,irq=11",
                                "-device", "isa-ide,iobase=0x168,iobase2=0x36e,irq=10"],
        require=[req_described_twice("isa-ide", 0)],
        description="Two isa-ide controllers: ISA devices have no device path and isa-ide "
                    "registers its vmstate with instance id 0, so two FULL 'isa-ide' #0 "
                    "sections (different section ids) and two identical (name, instance_id) "
                    "entries in the VMDESCRIPTION, in the same order.")
    add(name="uuid", machine="pc-i440fx-7.2",
        extra=TINY_BIOS_ARGS + ["-uuid", UUID],
        caps=["validate-uuid"],
        require=[req_config("configuration/uuid")],
        description="validate-uuid with -uuid %s: configuration/uuid subsection." % UUID)
    s.append({"name": "postcopy", "make": make_postcopy,
              "description": "Live postcopy pc-i440fx-7.2 -> pc-i440fx-7.2 over loopback TCP, "
                             "recorded by a proxy: main stream (.mig) and return path (.rp). "
                             "Throttled precopy while the source keeps dirtying 4 pages, "
                             "migrate-start-postcopy, then the destination reads 3 unsent "
                             "pages via qtest so it sends REQ_PAGES."})
    s.append({"name": "multifd", "make": make_multifd,
              "description": "Live 2-channel multifd migration through a recording proxy."})
    s.append({"name": "postcopy-recover", "make": make_postcopy, "recover": True,
              "description": "Postcopy cut by the proxy during the postcopy phase, then "
                             "migrate-recover + migrate resume=true through a new proxied "
                             "connection."})
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--verdict", metavar="FILE", help="load FILE into a destination and "
                    "print the verdict JSON")
    ap.add_argument("--machine", default="pc-i440fx-7.2")
    ap.add_argument("--caps", default="", help="comma-separated capabilities (--verdict)")
    ap.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="migration parameter for the destination (--verdict)")
    ap.add_argument("--meta", help="take machine, config args, capabilities and parameters "
                    "from this NAME.meta.json (--verdict)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("extra", nargs="*", help="extra QEMU args (after --) for --verdict")
    a = ap.parse_args()
    all_specs = specs()
    if a.list:
        for s in all_specs:
            print(s["name"])
        return 0
    if a.verdict:
        machine, extra, caps, params = a.machine, list(a.extra), \
            [c for c in a.caps.split(",") if c], {}
        if a.meta:
            m = json.load(open(a.meta))
            machine = m["machine"]
            extra = m.get("config_args", []) + extra
            caps = m.get("dest_capabilities", m.get("capabilities", [])) + caps
            params.update(m.get("dest_parameters", {}))
        for kv in a.param:
            k, v = kv.split("=", 1)
            params[k] = int(v) if re.fullmatch(r"-?\d+", v) else \
                {"true": True, "false": False}.get(v, v)
        tmp = tempfile.mkdtemp(prefix="qmig-verdict-")
        try:
            make_aux_files(tmp, aux_of(extra))
            v = verdict(a.verdict, machine, extra, caps, params, timeout=a.timeout, tmpdir=tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps(v, indent=2))
        return 0
    names = [s["name"] for s in all_specs]
    if a.only:
        bad = [n for n in a.only if n not in names]
        if bad:
            ap.error("unknown stream(s) %s; known: %s" % (bad, names))
    todo = [s for s in all_specs if not a.only or s["name"] in a.only]
    os.makedirs(a.out, exist_ok=True)
    version = qemu_version()
    log("QEMU: %s; output: %s" % (version, a.out))
    failures, made = [], []
    for s in todo:
        tmp = tempfile.mkdtemp(prefix="qmig-corpus-")
        ctx = Ctx(a.out, tmp, version)
        t0 = time.time()
        try:
            files = s["make"](ctx, s)
            made += files
            log("%s: done in %.1fs: %s" % (s["name"], time.time() - t0, ", ".join(files)))
        except Exception as e:
            failures.append((s["name"], str(e)))
            log("%s: FAILED: %s" % (s["name"], e))
        finally:
            _kill_all()
            shutil.rmtree(tmp, ignore_errors=True)
    for fn in made:
        log("  %-32s %8d bytes" % (fn, os.path.getsize(os.path.join(a.out, fn))))
    if failures:
        for n, e in failures:
            log("FAILED %s: %s" % (n, e))
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
