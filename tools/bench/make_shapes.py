#!/usr/bin/env python3
"""Writes migration streams of a hostile shape and a given size, for
tools/bench/bench_scaling: each shape grows one thing that a command could
handle worse than linearly, or keep in memory.

  make_shapes.py SHAPE SIZE_BYTES OUT

Shapes (every stream is well framed; most are valid):
  sections   FULL sections of one described device, each with its own id
  ids        FULL sections of an undescribed device, each with its own id
  fields     devices with many distinct field names (the description grows)
  arrays     one device whose fields are long arrays of uint8
  findings   FULL sections of a device no description names (a warning
             each), cut short at the end (an error after all the warnings)
  ranges     pages of alternating kinds across many RAM blocks
  zerofill   zero pages with a non-zero fill byte over one large block (what
             `replay` makes resident)
"""
import json
import struct
import sys

PAGE = 4096
MACHINE = b"pc-i440fx-7.2"
# Fields per device in the "fields" shape, and the bytes of JSON a field
# takes there: the description is capped at 16 MiB.
FIELDS_PER_DEVICE = 4096
MAX_ARRAY = 1 << 24  # kMaxDescribedArrayLength


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def header():
    return b"QEVM" + be32(3) + b"\x07" + be32(len(MACHINE)) + MACHINE


def full(section_id, name, body, instance=0, version=1):
    return (b"\x04" + be32(section_id) + bytes([len(name)]) + name + be32(instance) +
            be32(version) + body + b"\x7e" + be32(section_id))


def trailer(devices):
    text = json.dumps({"page_size": PAGE, "devices": devices}, separators=(",", ":")).encode()
    return b"\x00\x06" + be32(len(text)) + text


def device(name, fields):
    return {"name": name, "instance_id": 0, "vmsd_name": name, "version": 1, "fields": fields}


def ram_start(blocks, section_id=1):
    total = sum(length for _, length in blocks)
    out = b"\x01" + be32(section_id) + b"\x03ram" + be32(0) + be32(4) + be64(total | 0x04)
    for name, length in blocks:
        out += bytes([len(name)]) + name + be64(length)
    return out + be64(0x10) + b"\x7e" + be32(section_id)


def many_full_sections(size, out, name, described=True):
    out.write(header())
    one = len(full(0, name, b"\x01"))
    chunk = bytearray()
    for i in range(max(1, (size - 128) // one)):
        chunk += full(i, name, b"\x01")
        if len(chunk) >= 1 << 20:
            out.write(chunk)
            chunk = bytearray()
    out.write(chunk)
    if described:
        out.write(trailer([device("d", [{"name": "a", "type": "uint8", "size": 1}])]))
    else:
        out.write(full(1 << 30, name, b"\x01")[:-3])  # cut inside the last footer


def shape_sections(size, out):
    many_full_sections(size, out, b"d")


def shape_ids(size, out):
    many_full_sections(size, out, b"u")


def shape_fields(size, out):
    # Each field costs ~45 bytes of description and 1 byte of state.
    fields = max(1, size // 46)
    devices, section_id = [], 0
    out.write(header())
    while fields > 0:
        count = min(fields, FIELDS_PER_DEVICE)
        name = b"dev%d" % section_id
        devices.append(device(name.decode(), [
            {"name": "field_%d_%d" % (section_id, i), "type": "uint8", "size": 1}
            for i in range(count)]))
        out.write(full(section_id, name, b"\x5a" * count))
        section_id += 1
        fields -= count
    out.write(trailer(devices))


def shape_arrays(size, out):
    out.write(header())
    fields, body_len, left = [], 0, max(1, size - 256)
    while left > 0:
        count = min(left, MAX_ARRAY)
        fields.append({"name": "a%d" % len(fields), "array_len": count, "type": "uint8",
                       "size": 1})
        body_len += count
        left -= count
    body = bytes(i & 0xff for i in range(256)) * (body_len // 256) + b"\x07" * (body_len % 256)
    out.write(full(0, b"big", body))
    out.write(trailer([device("big", fields)]))


def shape_zerofill(size, out):
    block = b"pc.ram"
    pages = max(1, (size - 128) // 10)
    out.write(header())
    out.write(ram_start([(block, pages * PAGE)]))
    out.write(b"\x02" + be32(1))
    out.write(be64(0x02) + bytes([len(block)]) + block + b"\x01")
    record = bytearray()
    for page in range(1, pages):
        record += be64(page * PAGE | 0x22) + b"\x01"
        if len(record) >= 1 << 20:
            out.write(record)
            record = bytearray()
    out.write(record)
    out.write(be64(0x10) + b"\x7e" + be32(1))
    out.write(b"\x03" + be32(1) + be64(0x10) + b"\x7e" + be32(1))
    out.write(b"\x00")


def shape_findings(size, out):
    many_full_sections(size, out, b"u", described=False)


def shape_ranges(size, out):
    # 4096 blocks of 1 MiB; pages alternate zero / normal inside each, so
    # every page starts a range. Normal pages are few: most records are zero.
    blocks = [(b"b%d" % i, 1 << 20) for i in range(4096)]
    out.write(header())
    out.write(ram_start(blocks))
    out.write(b"\x02" + be32(1))
    written, page = 0, 0
    budget = size - 64 * 4096
    chunk = bytearray()
    while written < budget:
        name, length = blocks[page % len(blocks)]
        offset = (page // len(blocks)) * PAGE % length
        if page % 64 == 63:
            rec = be64(offset | 0x08) + bytes([len(name)]) + name + bytes([page & 0xff]) * PAGE
        else:
            rec = be64(offset | 0x02) + bytes([len(name)]) + name + b"\x00"
        chunk += rec
        written += len(rec)
        page += 1
        if len(chunk) >= 1 << 20:
            out.write(chunk)
            chunk = bytearray()
    out.write(chunk)
    out.write(be64(0x10) + b"\x7e" + be32(1))
    out.write(b"\x03" + be32(1) + be64(0x10) + b"\x7e" + be32(1))
    out.write(b"\x00")


SHAPES = {
    "sections": shape_sections,
    "ids": shape_ids,
    "fields": shape_fields,
    "arrays": shape_arrays,
    "findings": shape_findings,
    "ranges": shape_ranges,
    "zerofill": shape_zerofill,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in SHAPES:
        sys.exit(__doc__)
    with open(sys.argv[3], "wb") as out:
        SHAPES[sys.argv[1]](int(sys.argv[2]), out)


if __name__ == "__main__":
    main()
