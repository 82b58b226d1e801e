"""What a real QEMU destination says about a stream.

A destination is started with `-S -incoming defer` and the stream is fed to
it in one of three ways ("load" in a .meta.json; exec by default):

  exec  `migrate-incoming exec:cat FILE`: a single-channel stream
  file  `migrate-incoming file:FILE`: a mapped-ram file, read in place
  tcp   `migrate-incoming tcp:127.0.0.1:0`, then the main stream and each
        multifd or postcopy-preempt channel on its own connection, in the
        order given, all kept open until the verdict (as a source keeps
        them); the return path is read and kept

The verdict is {"status": "completed"|"failed"|"timeout", "exit_code",
"message"[, "ram_check"]}: failed with a negative exit code is a crash;
timeout is a destination still waiting (killed), and "qmp_unresponsive"
says that it had also stopped answering QMP.
"""

import os
import shlex
import shutil
import socket
import tempfile
import threading
import time

from .guest import check_pages
from .qemu import (BASE_ARGS, TMP_TOKEN, QMPError, Vm, aux_of, chrooted, make_aux_files,
                   set_caps, set_params, wait_status)

QMP_ANSWER_S = 10       # a destination that does not answer QMP for this long hangs


def outcome(v):
    """A verdict in one word or phrase: accepted, rejected, crashed (signal
    N), hangs."""
    st = v.get("status")
    if st == "completed":
        return "accepted"
    if st == "timeout":
        return "hangs (stops answering QMP)" if v.get("qmp_unresponsive") else "hangs"
    if (v.get("exit_code") or 0) < 0:
        return "crashed (signal %d)" % -v["exit_code"]
    return "rejected"


def _failure_message(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    return "\n".join(lines[-6:])


def _visible(path, tmpdir):
    """A path the QEMU can open: a chrooted QEMU sees only /tmp, so other
    files are copied into the run's temp dir first."""
    path = os.path.abspath(path)
    if not chrooted() or path.startswith("/tmp/"):
        return path
    dst = os.path.join(tmpdir, "in-" + os.path.basename(path))
    shutil.copyfile(path, dst)
    return dst


class _Feeder:
    """One connection of a replay: sends its bytes, keeps reading what the
    destination writes back (the return path), stays open until closed."""

    def __init__(self, port, data, name):
        self.name = name
        self.rev = bytearray()
        self.sent = 0
        self.error = None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.threads = [threading.Thread(target=self._send, args=(bytes(data),), daemon=True),
                        threading.Thread(target=self._recv, daemon=True)]
        for t in self.threads:
            t.start()

    def _send(self, data):
        try:
            view = memoryview(data)
            while self.sent < len(data):
                self.sent += self.sock.send(view[self.sent:self.sent + 65536])
        except OSError as e:
            self.error = str(e)

    def _recv(self):
        while True:
            try:
                b = self.sock.recv(65536)
            except OSError:
                return
            if not b:
                return
            self.rev += b

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for t in self.threads:
            t.join(2)


def _replay(vm, load, tmpdir):
    vm.qmp.cmd("migrate-incoming", uri="tcp:127.0.0.1:0")
    r = vm.qmp.cmd("query-migrate")
    port = next(int(sa["port"]) for sa in r.get("socket-address", []) if sa.get("port"))
    feeders = []
    for role, path in [("main", load["main"])] + [("channel", p) for p in load.get("channels", [])]:
        with open(path, "rb") as f:
            feeders.append(_Feeder(port, f.read(), role + ":" + os.path.basename(path)))
        # the source opens the main channel first; give the destination time
        # to take it as the main one
        time.sleep(load.get("gap_s", 0.3))
    return feeders


def verdict(path, machine, extra_args=(), caps=(), params=None, timeout=60,
            expect_pages=None, tmpdir=None, load=None):
    """Load `path` into a fresh `-S -incoming defer` destination.

    Returns {"status": "completed"|"failed"|"timeout", "exit_code", "message"}.
    With expect_pages ([{addr, sha256}]) guest pages are read back via qtest
    after a successful load and the result is added as "ram_check".
    load: {"transport": "exec"|"file"|"tcp"[, "channels": [PATH...]]}; for
    tcp `path` is the main stream and the channels follow it.
    """
    transport = (load or {}).get("transport", "exec")
    own = tmpdir is None
    if own:
        tmpdir = tempfile.mkdtemp(prefix="qmig-verdict-", dir="/tmp")
    args = ["-machine", machine] + BASE_ARGS + list(extra_args) + ["-S", "-incoming", "defer"]
    args = [a.replace(TMP_TOKEN, tmpdir) for a in args]
    vm = Vm("verdict", args, tmpdir, qtest=True, timeout=timeout + 30)
    res = {}
    feeders = []
    try:
        vm.start()
        set_caps(vm, caps)
        set_params(vm, params)
        if transport == "exec":
            vm.qmp.cmd("migrate-incoming", uri="exec:cat " + shlex.quote(_visible(path, tmpdir)))
        elif transport == "file":
            vm.qmp.cmd("migrate-incoming", uri="file:" + _visible(path, tmpdir))
        elif transport == "tcp":
            feeders = _replay(vm, dict(load, main=path), tmpdir)
        else:
            raise ValueError("unknown transport %r" % transport)
        r = wait_status(vm, ("completed",), timeout, qmp_timeout=QMP_ANSWER_S)
        st = r.get("status")
        if st == "completed":
            res = {"status": "completed"}
            if expect_pages:
                res["ram_check"] = check_pages(vm, expect_pages)
            vm.quit()
            res["exit_code"] = vm.exit_code
            res["message"] = _failure_message(vm.stderr_text())
        elif st == "timeout" and r.get("qmp_unresponsive"):
            vm.kill()
            res = {"status": "timeout", "exit_code": vm.exit_code,
                   "message": _failure_message(vm.stderr_text()) +
                   ("\n" if vm.stderr_text().strip() else "") +
                   "destination stopped answering QMP (no reply in %ss); killed" % QMP_ANSWER_S,
                   "qmp_unresponsive": True}
        elif st == "timeout":
            vm.kill()
            stderr = _failure_message(vm.stderr_text())
            res = {"status": "timeout", "exit_code": vm.exit_code,
                   "message": stderr + ("\n" if stderr else "") +
                   "destination still waiting (migration status %s) after %ss; killed"
                   % (r.get("last_status") or "none", timeout)}
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
        for f in feeders:
            f.close()
        if feeders:
            res["return_path_bytes"] = len(feeders[0].rev)
        if own:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return res


def verdict_for_meta(path, meta=None, meta_dir=None, machine=None, extra=(), caps=(),
                     params=None, timeout=30.0):
    """The verdict on `path` of a destination configured as `meta` (a
    .meta.json: machine, config_args, dest_capabilities, dest_parameters,
    aux_files, and "load" for file and multi-channel streams), with the
    command line's machine, extra args, capabilities and parameters added.
    `path` stands for the meta's own file; the other files of a multi-channel
    load are taken from meta_dir."""
    machine = machine or "pc-i440fx-7.2"
    extra, caps, params = list(extra), list(caps), dict(params or {})
    load = None
    if meta:
        machine = meta["machine"]
        extra = meta.get("config_args", []) + extra
        caps = meta.get("dest_capabilities", meta.get("capabilities", [])) + caps
        params = dict(meta.get("dest_parameters", {}), **params)
        load = meta.get("load")
    if load and load.get("transport") == "tcp":
        own = meta.get("file")
        files = [load["main"]] + list(load.get("channels", []))
        paths = [path if f == own else os.path.join(meta_dir, f) for f in files]
        if own not in files:
            paths[0] = path
        path, load = paths[0], dict(load, channels=paths[1:])
    tmp = tempfile.mkdtemp(prefix="qmig-verdict-", dir="/tmp")
    try:
        make_aux_files(tmp, aux_of(extra))
        return verdict(path, machine, extra, caps, params, timeout=timeout, tmpdir=tmp,
                       load=load)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
