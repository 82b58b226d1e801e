"""QMP and qtest clients over connected unix sockets."""

import json
import socket
import threading


class QMPError(Exception):
    pass


class QMPTimeout(QMPError):
    """QEMU did not answer a QMP command in time (it stopped serving QMP)."""


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
        except socket.timeout:
            raise QMPTimeout("no QMP answer in %ss" % self.sock.gettimeout())
        except (ConnectionError, OSError) as e:
            # QEMU exits by itself after a failed incoming migration.
            raise QMPError("QMP connection lost: %s" % e)
        if not line:
            raise QMPError("QMP connection closed")
        return json.loads(line)

    def cmd_raw(self, _name, _timeout=None, **args):
        """Sends one command and returns its answer. With _timeout (seconds)
        a QEMU that does not answer raises QMPTimeout; the connection is then
        unusable."""
        msg = {"execute": _name}
        if args:
            msg["arguments"] = args
        self.sock.settimeout(_timeout)
        try:
            self.f.write((json.dumps(msg) + "\n").encode())
            self.f.flush()
        except socket.timeout:
            raise QMPTimeout("QMP command not taken in %ss" % _timeout)
        except (ConnectionError, OSError) as e:
            raise QMPError("QMP connection lost: %s" % e)
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if _timeout is not None:
                self.sock.settimeout(None)
            return r

    def cmd(self, _name, _timeout=None, **args):
        r = self.cmd_raw(_name, _timeout, **args)
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
