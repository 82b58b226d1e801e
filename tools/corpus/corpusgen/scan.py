"""The generator's walk of the streams it makes: enough to check that the
wanted records exist and to summarise each stream in its .meta.json.

Byte reading and RAM records come from fuzz/qemu_stream.py (Cursor,
walk_ram, locate_trailer); what it does not cover is here: the
configuration's subsections, commands with their payloads, PACKAGED
contents, MEM_SIZE block lists (with x-ignore-shared addresses and
mapped-ram headers), dirty-bitmap sections, return paths and multifd
channels. Device sections are not parsed (that needs their vmstate
description): the walk stops at the first one ("stopped_at").
"""

import json
import os
import struct
import sys

from .qemu import PAGE, REPO_ROOT

try:
    import qemu_stream as qs
except ImportError:
    sys.path.insert(0, os.path.join(REPO_ROOT, "fuzz"))
    import qemu_stream as qs  # noqa: E402

F_MEM_SIZE = qs.RAM_MEM_SIZE
CMD_NAMES = {1: "OPEN_RETURN_PATH", 2: "PING", 3: "POSTCOPY_ADVISE", 4: "LISTEN",
             5: "RUN", 6: "RAM_DISCARD", 7: "PACKAGED", 8: "ENABLE_COLO",
             9: "POSTCOPY_RESUME", 10: "RECV_BITMAP", 11: "SWITCHOVER_START"}
RP_NAMES = {1: "SHUT", 2: "PONG", 3: "REQ_PAGES_ID", 4: "REQ_PAGES",
            5: "RECV_BITMAP", 6: "RESUME_ACK", 7: "SWITCHOVER_ACK"}
# qemu_stream's record kinds as counted in scan summaries
_RAM_KIND = {"COMPRESS": "COMPRESS_PAGE"}
_FLAG_KIND = {qs.RAM_MULTIFD_FLUSH: "MULTIFD_FLUSH", qs.RAM_HOOK: "HOOK"}
MULTIFD_MAGIC = 0x11223344
MULTIFD_PAGES = 128          # offsets per packet: 512 KiB / 4 KiB, in every version


class Scan:
    """Walks header, configuration, commands and RAM sections.

    Device (FULL) sections and non-RAM iterable sections cannot be parsed
    without their vmstate description; the walk stops there ("stopped_at").
    """

    def __init__(self, data, headerless=False, footers=None, sections=None):
        self.d = data
        self.cur = qs.Cursor(data)
        self.headerless = headerless
        self.footers = footers
        self.ignore_shared = False
        self.mapped_ram = False
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
        self._last_block = {}

    @property
    def i(self):
        return self.cur.pos

    def run(self):
        try:
            self._run()
        except (EOFError, IndexError, struct.error) as e:
            self.stopped_at = "truncated at %d (%s)" % (self.i, e)
        except ValueError as e:
            self.stopped_at = "malformed at %d (%s)" % (self.i, e)
        return self

    def _run(self):
        c = self.cur
        if not self.headerless:
            magic, ver = c.be32(), c.be32()
            if magic != 0x5145564D:
                self.stopped_at = "bad magic"
                return
            self.items.append("HEADER v%d" % ver)
            if self.d[c.pos] == qs.CONFIG:
                c.u8()
                self.machine = c.take(c.be32()).decode()
                while self.d[c.pos] == qs.SUBSECTION:
                    c.u8()
                    name = c.counted()
                    c.be32()
                    self.config_subsections.append(name)
                    if name.endswith("target-page-bits"):
                        c.be32()
                    elif name.endswith("capabilities"):
                        for _ in range(c.be32()):
                            self.caps.append(c.counted())
                    elif name.endswith("uuid"):
                        c.take(16)
                    else:
                        self.stopped_at = "unknown config subsection " + name
                        return
                self.ignore_shared = "x-ignore-shared" in self.caps
                self.mapped_ram = "mapped-ram" in self.caps
                self.items.append("CONFIGURATION(%s%s)" % (
                    self.machine, "".join("," + s for s in self.config_subsections)))
        self._loop(len(self.d), top=True)
        if self.stopped_at is None and (not self.items or self.items[-1] != "EOF") \
                and self.has_vmdesc is None:
            self.items.append("(end of data, no EOF)")

    def _loop(self, end, top):
        c = self.cur
        while c.pos < end:
            t = c.u8()
            if t == qs.EOF:
                self.items.append("EOF")
                if top:
                    if c.peek() == bytes([qs.VMDESC]):
                        c.u8()
                        n = c.be32()
                        self.has_vmdesc = True
                        self.items.append("VMDESCRIPTION(%d bytes JSON)" % n)
                        c.pos += n
                    else:
                        self.has_vmdesc = False
                    if c.pos != len(self.d):
                        self.items.append("TRAILING %d bytes" % (len(self.d) - c.pos))
                return
            if t == qs.COMMAND:
                self._command()
                continue
            if t in (qs.START, qs.FULL):
                sid = c.be32()
                idstr = c.counted()
                c.be32()         # instance id
                ver = c.be32()
                self.sections[sid] = idstr
                kind = "START" if t == qs.START else "FULL"
                if idstr == "dirty-bitmap":
                    self._dbm(kind, sid)
                    continue
                if idstr != "ram":
                    self.items.append("%s %s id=%d v%d" % (kind, idstr, sid, ver))
                    self.stopped_at = "%s %s (not parsed)" % (kind, idstr)
                    return
                self._ram(kind, sid)
                continue
            if t in (qs.PART, qs.END):
                sid = c.be32()
                idstr = self.sections.get(sid, "?")
                kind = "PART" if t == qs.PART else "END"
                if idstr == "dirty-bitmap":
                    self._dbm(kind, sid)
                    continue
                if idstr != "ram":
                    self.items.append("%s %s id=%d" % (kind, idstr, sid))
                    self.stopped_at = "%s %s (not parsed)" % (kind, idstr)
                    return
                self._ram(kind, sid)
                continue
            self.stopped_at = "unexpected byte 0x%02x at %d" % (t, c.pos - 1)
            return

    def _command(self):
        c = self.cur
        cmd, ln = c.be16(), c.be16()
        name = CMD_NAMES.get(cmd, "CMD%d" % cmd)
        if cmd == qs.CMD_PACKAGED:
            size = c.be32()
            start = c.pos
            self.items.append("CMD PACKAGED(%d) {" % size)
            sub = Scan(self.d[start:start + size], headerless=True, footers=self.footers)
            sub._pkg_loop()
            self.package = sub.items
            self.items.extend("  " + x for x in sub.items)
            self.items.append("}")
            c.pos = start + size
            return
        payload = c.take(ln)
        if cmd == 2:
            self.items.append("CMD PING(%d)" % struct.unpack(">I", payload)[0])
        elif cmd == qs.CMD_ADVISE:
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

    def _pkg_loop(self):
        """Package contents: commands are walked; FULL sections are skipped
        by searching for the trailing PING/RUN commands."""
        c = self.cur
        end = len(self.d)
        while c.pos < end:
            t = self.d[c.pos]
            if t == qs.COMMAND:
                c.u8()
                cmd, ln = c.be16(), c.be16()
                payload = c.take(ln)
                if cmd == 2:
                    self.items.append("CMD PING(%d)" % struct.unpack(">I", payload)[0])
                else:
                    self.items.append("CMD %s(len %d)" % (CMD_NAMES.get(cmd, cmd), ln))
                if cmd == 5:
                    if c.pos != end:
                        self.items.append("(%d bytes after RUN)" % (end - c.pos))
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
            if cand <= c.pos:
                self.items.append("(unparsed package tail)")
                return
            self.items.append("<device FULL sections, %d bytes>" % (cand - c.pos))
            c.pos = cand

    def _footer(self, sid):
        c = self.cur
        if c.peek() == bytes([qs.FOOTER]) and self.footers is not False:
            c.u8()
            if c.be32() != sid:
                raise ValueError("footer id mismatch")
            return True
        return False

    def _dbm(self, kind, sid):
        """dirty-bitmap section payload: flag bytes, each optionally followed
        by names, START data (be32 granularity, u8 flags) or BITS data."""
        c = self.cur
        parts = []
        while True:
            fl = c.u8()
            if fl & 0x80:
                raise ValueError("dirty-bitmap extra flags not handled")
            if fl & 0x08:
                parts.append("dev=" + c.counted())
            if fl & 0x04:
                parts.append("bitmap=" + c.counted())
            if fl & 0x10:
                gran, bfl = c.be32(), c.u8()
                parts.append("START(gran=%d,flags=0x%x)" % (gran, bfl))
            if fl & 0x40:
                first, nr = c.be64(), c.be32()
                if fl & 0x02:
                    parts.append("ZEROES(%d+%d)" % (first, nr))
                else:
                    n = c.be64()
                    c.take(n)
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

    def _mem_size(self):
        """The MEM_SIZE record: per block its name and used length, then the
        block's GPA (x-ignore-shared) and mapped-ram header (mapped-ram),
        after which the next entry sits at the end of the block's pages."""
        c = self.cur
        total = c.be64() & ~0xFFF
        self._count("MEM_SIZE")
        while total > 0:
            name = c.counted()
            ln = c.be64()
            blk = {"name": name, "used_length": ln}
            if self.ignore_shared:
                blk["addr"] = c.be64()
            if self.mapped_ram:
                ver, psize, bitmap, pages = struct.unpack(">IQQQ", c.take(28))
                blk["mapped_ram"] = {"version": ver, "page_size": psize,
                                     "bitmap_offset": bitmap, "pages_offset": pages}
                if pages:
                    c.pos = pages + ln
            self.blocks.append(blk)
            total -= ln

    def _ram(self, kind, sid):
        cnt0 = dict(self.ram)
        word = self.cur.peek(8)
        if len(word) == 8 and struct.unpack(">Q", word)[0] & F_MEM_SIZE:
            self._mem_size()
        for rec in qs.walk_ram(self.cur, False, self.ignore_shared, self._last_block):
            if rec.kind == "FLAG":
                self._count(_FLAG_KIND.get(rec.info["flags"], "FLAG"))
            else:
                self._count(_RAM_KIND.get(rec.kind, rec.kind))
        foot = self._footer(sid)
        diff = {k: v - cnt0.get(k, 0) for k, v in self.ram.items() if v != cnt0.get(k, 0)}
        self.items.append("%s ram id=%d %s%s" % (
            kind, sid, ",".join("%s:%d" % kv for kv in sorted(diff.items())),
            " +footer" if foot else ""))

    def vmdesc_trailer(self):
        """`06 be32(n) {json}` ending exactly at the end of the data, as
        {offset, json_len}, or None."""
        json_text = qs.locate_trailer(self.d)
        if json_text is None:
            return None
        return {"offset": len(self.d) - len(json_text) - 5, "json_len": len(json_text)}

    def vmdesc(self):
        """The VMDESCRIPTION JSON, parsed, or None."""
        json_text = qs.locate_trailer(self.d)
        return None if json_text is None else json.loads(json_text)

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


def scan_multifd_channel(data, zero_pages=False):
    """A multifd channel: its 64-byte init, then packets of a fixed length
    (320-byte header + 128 offsets) each followed by its normal pages. With
    zero_pages (QEMU 9.0 on) the be32 at packet offset 32 counts zero pages."""
    if len(data) < 64:
        return {"error": "short"}
    magic, ver = struct.unpack_from(">II", data, 0)
    uuid = data[8:24].hex()
    cid = data[24]
    i, packets, pages, syncs, zeros = 64, 0, 0, 0, 0
    while i + 320 <= len(data):
        pm, pv, flags, alloc, normal, nxt, num = struct.unpack_from(">IIIIIIQ", data, i)
        if pm != MULTIFD_MAGIC:
            break
        zeros += struct.unpack_from(">I", data, i + 32)[0]
        i += 320 + MULTIFD_PAGES * 8 + normal * PAGE
        packets += 1
        pages += normal
        syncs += flags & 1
    out = {"magic": "0x%08x" % magic, "version": ver, "uuid": uuid, "channel_id": cid,
           "packets": packets, "pages": pages, "sync_packets": syncs,
           "trailing": len(data) - i}
    if zero_pages:
        out["zero_pages"] = zeros
        out["trailing"] = out.pop("trailing")
    return out


def scan_preempt_channel(data):
    """A postcopy preempt channel: bare RAM records (no header), ending with
    an EOS only when the source behaves like 7.2."""
    # walk_ram returns at an EOS: one more after the data ends the last run
    cur = qs.Cursor(bytes(data) + struct.pack(">Q", qs.RAM_EOS))
    counts, stopped, last = {}, None, {}
    try:
        while cur.pos < len(data):
            for rec in qs.walk_ram(cur, last=last):
                if rec.start < len(data):
                    counts[rec.kind] = counts.get(rec.kind, 0) + 1
    except (EOFError, ValueError) as e:
        stopped = "stopped at %d (%s)" % (cur.pos, e)
    if stopped is None and cur.pos not in (len(data), len(data) + 8):
        stopped = "last record runs past the end (%d bytes)" % len(data)
    return {"ram_records": counts, "ends_with_eos": data[-8:] == struct.pack(">Q", qs.RAM_EOS),
            "walk_stopped_at": stopped}
