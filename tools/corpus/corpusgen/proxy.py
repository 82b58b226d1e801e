"""A TCP proxy on 127.0.0.1 that records both directions of every connection
it forwards: live migrations (main stream, return path, multifd and preempt
channels) are captured this way."""

import socket
import threading

from .qemu import log


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
