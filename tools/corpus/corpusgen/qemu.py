"""Which QEMU runs, its processes, and the migration helpers around them.

The QEMU is chosen once per run with use_qemu(): "7.2" is the system's
qemu-system-x86_64 (or $QEMU), "10.0" and "11.1" are Debian's, run from
the chroots of tools/qemu-versions, and anything else is a path to a
qemu-system-x86_64. A chrooted QEMU sees the host's /tmp only, so every
file and socket it is given lives under /tmp.
"""

import atexit
import os
import re
import socket
import struct
import subprocess
import threading
import time

from .qmp import QMP, QMPError, QMPTimeout, QTest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
QEMU_VERSIONS_TOOL = os.path.join(REPO_ROOT, "tools", "qemu-versions")
KNOWN_VERSIONS = ("7.2", "10.0", "11.1")

QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
QEMU_KEY = "7.2"          # "7.2", "10.0", "11.1", or a path's version ("X.Y")
QEMU_FROM = None          # how a non-system QEMU was found, for the metas
QEMU_LABELLED = False     # QEMU_FROM is a label given with the path, not the path
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


def use_qemu(which, label=None):
    """Selects the QEMU of this run: "7.2", "10.0", "11.1" or a path. For a
    path, `label` says in the metas where that QEMU came from instead of the
    path, which means nothing on another machine."""
    global QEMU, QEMU_KEY, QEMU_FROM, QEMU_LABELLED
    QEMU_LABELLED = False
    if which in (None, "", "7.2"):
        QEMU, QEMU_KEY, QEMU_FROM = os.environ.get("QEMU", "qemu-system-x86_64"), "7.2", None
        return QEMU
    if which in KNOWN_VERSIONS:
        out = subprocess.run([QEMU_VERSIONS_TOOL, "binary", which], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise SystemExit("QEMU %s is not available: %s(run tools/qemu-versions ensure %s)"
                             % (which, out.stderr, which))
        QEMU, QEMU_KEY = out.stdout.strip(), which
        QEMU_FROM = "tools/qemu-versions binary %s" % which
        return QEMU
    if not os.access(which, os.X_OK):
        raise SystemExit("--qemu: %s is neither 7.2, 10.0, 11.1 nor an executable" % which)
    QEMU = os.path.abspath(which)
    QEMU_FROM = label or QEMU
    QEMU_LABELLED = bool(label)
    m = re.search(r"version (\d+)\.(\d+)", qemu_version())
    QEMU_KEY = "%s.%s" % m.groups() if m else "unknown"
    return QEMU


def qemu_version():
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def version_at_least(version, major, minor=0):
    """Whether "X.Y" is at least major.minor; False for anything else."""
    m = re.fullmatch(r"(\d+)\.(\d+)", version)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (major, minor)


def qemu_at_least(major, minor=0):
    return version_at_least(QEMU_KEY, major, minor)


def chrooted():
    """True unless QEMU is the system's: tools/qemu-versions runs it in a
    chroot that sees only the host's /tmp, and a QEMU given by path may be
    such a wrapper too."""
    return QEMU_FROM is not None


def recorded_binary():
    """The QEMU binary as recorded in the metas' command lines: the
    qemu-system-x86_64 a tools/qemu-versions wrapper runs in its chroot."""
    if QEMU_LABELLED or (QEMU_FROM or "").startswith("tools/"):
        return "qemu-system-x86_64"
    return QEMU


# ---------------------------------------------------------------------------
# The QEMU process wrapper
# ---------------------------------------------------------------------------

def _listen_unix(path):
    if os.path.exists(path):      # left by an earlier VM of the same name
        os.unlink(path)
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
                self.qmp.cmd_raw("quit", 10)
            except Exception:
                pass
            self.wait_exit(10)
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()


# ---------------------------------------------------------------------------
# Migration helpers
# ---------------------------------------------------------------------------

def set_caps(vm, caps):
    if caps:
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": c, "state": True} for c in caps])


def set_params(vm, params):
    if params:
        vm.qmp.cmd("migrate-set-parameters", **params)


def wait_status(vm, want, timeout, poll=0.05, during=None, qmp_timeout=None):
    """Poll query-migrate until the status is in `want` (or failed).

    With qmp_timeout, a QEMU that stops answering QMP for that long gives
    {"status": "timeout", "qmp_unresponsive": True}. A timeout carries the
    last status QEMU reported as "last_status"."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if not vm.alive():
            return {"status": "exited"}
        try:
            r = vm.qmp.cmd("query-migrate", qmp_timeout)
        except QMPTimeout:
            return {"status": "timeout", "qmp_unresponsive": True, "last_status": last}
        st = r.get("status")
        last = st
        if st in want or st == "failed":
            return r
        if during:
            during(r)
        time.sleep(poll)
    return {"status": "timeout", "last_status": last}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def dest_listen(vm, caps, params):
    set_caps(vm, caps)
    set_params(vm, params)
    vm.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:0")
    r = vm.qmp.cmd("query-migrate")
    for sa in r.get("socket-address", []):
        if sa.get("port"):
            return int(sa["port"])
    raise RuntimeError("destination did not report its port: %r" % r)


def machine_args(machine, extra=()):
    return ["-machine", machine] + BASE_ARGS + list(extra)


# ---------------------------------------------------------------------------
# Auxiliary files a configuration refers to as $TMP/NAME
# ---------------------------------------------------------------------------

TINY_BIOS = "tiny-bios.bin"
TINY_BIOS_ARGS = ["-bios", os.path.join(TMP_TOKEN, TINY_BIOS)]
LOOP_KERNEL = "loop-kernel.bin"
LOOP_KERNEL_ARGS = ["-kernel", os.path.join(TMP_TOKEN, LOOP_KERNEL)]


def loop_kernel_image():
    """A multiboot kernel (loaded at 1 MiB, entered in 32-bit protected mode)
    that loops forever: it increments a counter at 0x101000 and stores it into
    the first dword of each of the 8 pages at 0x200000..0x207000 in turn."""
    magic, flags = 0x1BADB002, 0x00010000          # flags: address fields valid
    header = struct.pack("<8I", magic, flags, (-(magic + flags)) & 0xFFFFFFFF,
                         0x100000, 0x100000, 0, 0, 0x100020)
    code = bytes.fromhex(
        "bf00002000"        # 0x100020 mov edi, 0x200000
        "ff0500101000"      # 0x100025 inc dword [0x101000]
        "a100101000"        # 0x10002b mov eax, [0x101000]
        "8907"              # 0x100030 mov [edi], eax
        "81c700100000"      # 0x100032 add edi, 0x1000
        "81ff00802000"      # 0x100038 cmp edi, 0x208000
        "72e5"              # 0x10003e jb 0x100025
        "ebde")             # 0x100040 jmp 0x100020
    return header + code


def make_aux_files(tmpdir, aux):
    """Create the auxiliary files a configuration refers to as $TMP/NAME.

    aux: {name: {"kind": "tiny-bios"|"loop-kernel"|"zero", "size": N}}.
    tiny-bios is a 64 KiB firmware image that is all zero except `hlt; jmp
    $-1` at the reset vector: it keeps pc.bios down to one non-zero page
    (guests never run). loop-kernel is loop_kernel_image().
    """
    for name, a in (aux or {}).items():
        with open(os.path.join(tmpdir, name), "wb") as f:
            if a["kind"] == "tiny-bios":
                img = bytearray(a["size"])
                img[a["size"] - 16:a["size"] - 13] = b"\xf4\xeb\xfd"
                f.write(img)
            elif a["kind"] == "loop-kernel":
                f.write(loop_kernel_image())
            else:
                f.truncate(a["size"])


def aux_of(args):
    aux = {}
    for a in args:
        if TMP_TOKEN + "/" + TINY_BIOS in a:
            aux[TINY_BIOS] = {"kind": "tiny-bios", "size": 65536}
        if TMP_TOKEN + "/" + LOOP_KERNEL in a:
            aux[LOOP_KERNEL] = {"kind": "loop-kernel", "size": len(loop_kernel_image())}
        m = re.search(r"mem-path=\$TMP/([^,]+)", a)
        if m:
            sz = re.search(r"size=(\d+)M", a)
            aux[m.group(1)] = {"kind": "zero", "size": (int(sz.group(1)) if sz else 16) << 20}
    return aux
