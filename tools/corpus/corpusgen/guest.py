"""Deterministic guest memory: qtest writes, pseudo-random page patterns, a
model of the pages they produce, and reading pages back from a destination."""

import hashlib
import struct

from .qemu import PAGE


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


def check_pages(vm, expect_pages):
    bad = []
    for p in expect_pages:
        got = hashlib.sha256(vm.qt.read(p["addr"], PAGE)).hexdigest()
        if got != p["sha256"]:
            bad.append("0x%x" % p["addr"])
    return "ok (%d pages)" % len(expect_pages) if not bad else "MISMATCH at " + ",".join(bad)
