"""A minimal walker of QEMU 7.2 migration streams, for cutting fuzz seeds.

It only has to understand the real corpus in corpus/qemu-7.2 (which it is run
on), not hostile input: it knows the framing well enough to list records and
their byte ranges, and delimits device sections by their footers.
"""

import struct

EOF, START, PART, END, FULL, SUBSECTION, VMDESC, CONFIG, COMMAND, FOOTER = (
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x7E)
CMD_ADVISE, CMD_PACKAGED = 3, 7
RAM_ZERO, RAM_MEM_SIZE, RAM_PAGE, RAM_EOS, RAM_CONTINUE = 0x2, 0x4, 0x8, 0x10, 0x20
RAM_XBZRLE, RAM_HOOK, RAM_COMPRESS, RAM_MULTIFD_FLUSH = 0x40, 0x80, 0x100, 0x200
PAGE = 4096


class Record:
    def __init__(self, kind, start, end, **info):
        self.kind, self.start, self.end, self.info = kind, start, end, info

    def __repr__(self):
        return f"{self.kind}[{self.start:#x},{self.end:#x}) {self.info}"


class Cursor:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def take(self, n):
        if self.pos + n > len(self.data):
            raise EOFError(f"truncated at {self.pos:#x}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self):
        return self.take(1)[0]

    def be16(self):
        return struct.unpack(">H", self.take(2))[0]

    def be32(self):
        return struct.unpack(">I", self.take(4))[0]

    def be64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def counted(self):
        return self.take(self.u8()).decode("latin-1")

    def peek(self, n=1):
        return self.data[self.pos:self.pos + n]


def walk_ram(cur, advise_with_ram=False, ignore_shared=False, last=None):
    """RAM records of one RAM section payload, up to and including EOS. Page
    records carry info["resolved"], their block name even under CONTINUE;
    `last` (a dict) carries the last named block from section to section."""
    last = {} if last is None else last
    records = []
    while True:
        start = cur.pos
        word = cur.be64()
        flags = word & 0xFFF
        primary = flags & ~RAM_CONTINUE
        info = {"flags": flags}
        if primary == RAM_EOS:
            records.append(Record("EOS", start, cur.pos))
            return records
        if primary == RAM_MEM_SIZE:
            total, done = word & ~0xFFF, 0
            while done < total:
                cur.counted()
                done += cur.be64()
                nxt = cur.peek(8)
                if advise_with_ram and len(nxt) == 8:
                    value = struct.unpack(">Q", nxt)[0]
                    if value > PAGE and value & (value - 1) == 0 and value <= 1 << 30:
                        cur.take(8)
                if ignore_shared:
                    cur.be64()
            records.append(Record("MEM_SIZE", start, cur.pos))
            continue
        if primary in (RAM_HOOK, RAM_MULTIFD_FLUSH):
            records.append(Record("FLAG", start, cur.pos, **info))
            continue
        if not flags & RAM_CONTINUE:
            info["block"] = last["block"] = cur.counted()
        info["resolved"] = last.get("block")
        if primary == RAM_ZERO:
            cur.take(1)
            kind = "ZERO"
        elif primary == RAM_PAGE:
            cur.take(PAGE)
            kind = "PAGE"
        elif primary == RAM_XBZRLE:
            cur.u8()
            cur.take(cur.be16())
            kind = "XBZRLE"
        elif primary == RAM_COMPRESS:
            cur.take(cur.be32())
            kind = "COMPRESS"
        else:
            raise ValueError(f"RAM flags {flags:#x} at {start:#x}")
        records.append(Record(kind, start, cur.pos, **info))


def _plausible_record_start(byte):
    return byte in (EOF, START, PART, END, FULL, COMMAND)


def _scan_footer(data, pos, section_id):
    marker = bytes([FOOTER]) + struct.pack(">I", section_id)
    while True:
        at = data.find(marker, pos)
        if at < 0:
            raise ValueError(f"no footer for section {section_id} after {pos:#x}")
        if at + 5 == len(data) or _plausible_record_start(data[at + 5]):
            return at
        pos = at + 1


def walk_stream(data, limit=None):
    """Top-level records of a main stream, as far as they can be delimited: a
    stream without footers stops at its first device section, a cut one at
    its last whole record."""
    records = []
    try:
        _walk(data, limit, records)
    except (EOFError, ValueError):
        pass
    return records


def _walk(data, limit, records):
    cur = Cursor(data)
    end = len(data) if limit is None else limit
    sections = {}
    advise_with_ram = False
    ignore_shared = b"x-ignore-shared" in data[:512]
    headerless = data[:1] == bytes([COMMAND])
    last_block = {}
    if data[:4] == b"QEVM":
        cur.take(8)
        records.append(Record("HEADER", 0, 8))
        if cur.peek() == bytes([CONFIG]):
            start = cur.pos
            cur.u8()
            name = cur.take(cur.be32()).decode()
            while cur.peek() == bytes([SUBSECTION]):
                cur.u8()
                sub = cur.counted()
                cur.be32()
                if sub.endswith("target-page-bits"):
                    cur.be32()
                elif sub.endswith("capabilities"):
                    for _ in range(cur.be32()):
                        cur.counted()
                elif sub.endswith("uuid"):
                    cur.take(16)
            records.append(Record("CONFIG", start, cur.pos, machine=name))
    footers = None
    while cur.pos < end:
        start = cur.pos
        kind = cur.u8()
        if kind == EOF:
            records.append(Record("EOF", start, cur.pos))
            if cur.peek() == bytes([VMDESC]):
                vstart = cur.pos
                cur.u8()
                json_text = cur.take(cur.be32())
                records.append(Record("VMDESC", vstart, cur.pos, json=json_text))
            break
        if kind in (START, FULL):
            sid = cur.be32()
            idstr = cur.counted()
            instance = cur.be32()
            version = cur.be32()
            sections[sid] = idstr
            body = cur.pos
            if idstr == "ram":
                ram = walk_ram(cur, advise_with_ram, ignore_shared, last_block)
            else:
                ram = None
                cur.pos = _scan_footer(data, cur.pos, sid)
            rec = Record("START" if kind == START else "FULL", start, 0, id=sid, idstr=idstr,
                         instance=instance, version=version, body=body, body_end=cur.pos, ram=ram)
        elif kind in (PART, END):
            sid = cur.be32()
            body = cur.pos
            # A recovery connection continues sections opened on an earlier
            # one; only RAM continues after postcopy starts.
            if sections.get(sid, None if headerless else "") in ("ram", None):
                ram = walk_ram(cur, advise_with_ram, ignore_shared, last_block)
            else:
                ram = None
                cur.pos = _scan_footer(data, cur.pos, sid)
            rec = Record("PART" if kind == PART else "END", start, 0, id=sid,
                         idstr=sections.get(sid), body=body, body_end=cur.pos, ram=ram)
        elif kind == COMMAND:
            number, length = cur.be16(), cur.be16()
            if number == CMD_PACKAGED:
                blob_length = cur.be32()
                blob = cur.pos
                cur.take(blob_length)
                records.append(Record("PACKAGED", start, cur.pos, blob=blob, length=blob_length))
            else:
                if number == CMD_ADVISE and length == 16:
                    advise_with_ram = True
                cur.take(length)
                records.append(Record("COMMAND", start, cur.pos, number=number))
            continue
        else:
            raise ValueError(f"record type {kind:#x} at {start:#x}")
        if footers is None:
            footers = cur.peek() == bytes([FOOTER])
        if footers:
            cur.take(5)
        rec.end = cur.pos
        records.append(rec)


def locate_trailer(data):
    """The VMDESCRIPTION JSON at the end of a stream, or None."""
    for p in range(len(data) - 7, 0, -1):
        if data[p] == VMDESC and data[p - 1] == EOF and data[p + 5:p + 6] == b"{":
            if struct.unpack(">I", data[p + 1:p + 5])[0] == len(data) - p - 5:
                return data[p + 5:]
    return None
