#!/usr/bin/env python3
"""Regenerates the seed corpora in fuzz/corpus/<target>_fuzzer/ from the real corpora.

Seeds are small cuts of real QEMU 7.2, 8.2, 10.0 and 11.1 streams (8.2's
compress records, block section and multifd packets without zero pages;
SWITCHOVER_START, the 10.0+ multifd packets, mapped-ram's header), shaped like each fuzz target's
input (see the contract comment on top of each fuzz/<target>.cc): a mutator
starting from real records reaches deep states far sooner than one starting
from nothing, and small seeds keep executions fast. Every seed stays a few KiB;
RAM pages are the only bulky records, so only a few seeds carry one.

Usage: fuzz/make_seeds.py [--corpus DIR]... [--out fuzz/corpus]
The output is deterministic; the old seed directories are replaced.
"""

import argparse
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_stream as qs  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = tuple(t + "_fuzzer" for t in (
    "stream", "package", "ram", "config", "vmstate", "description", "return_path", "multifd",
    "pipe", "compat"))
# pipe_fuzzer's first byte: FdSource window 16 << (b & 15), writes cut at most
# 32 << ((b >> 4) & 3) bytes, and with b >> 6 == 1 or 3 the trailer probe
# keeps only a window's worth in memory (and with 3, in its temporary file
# too) (fuzz/pipe_fuzzer.cc). Tiny windows and cuts; a window of 1 KiB with
# cuts up to 128 bytes; the same window with the rest spilled to a file; a
# window of 256 bytes where a longer rest is undecidable.
PIPE_SHAPES = (0x00, 0x26, 0x46, 0xc4)
# The stream whose VMDESCRIPTION the vmstate fuzzer embeds (fuzz/BUILD).
SCHEMA_STREAM = "pc-i440fx-7.2.mig"
# Pages of a multifd packet's offset table (512 KiB of 4 KiB pages).
MULTIFD_PAGES_PER_PACKET = 128
# The corpora seeds are drawn from; names from all but the first get the
# corpus's name as a prefix. 9.2's streams are left out: 8.2 and 10.0 between
# them carry every record 9.2 sends.
CORPORA = ("qemu-7.2", "qemu-8.2", "qemu-10.0", "qemu-11.1")
# Largest VMDESCRIPTION JSON put into one seed.
MAX_SEED_JSON = 6 * 1024


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def trim_ram(data, rec, keep_pages):
    """A RAM section record with its payload cut to a few records of each
    kind (MEM_SIZE always kept) plus EOS. PAGE records (4 KiB each) only
    when `keep_pages`."""
    out = bytearray(data[rec.start:rec.info["body"]])
    kept = {}
    last_named = None
    for r in rec.info["ram"]:
        if r.kind == "EOS":
            break
        limit = {"MEM_SIZE": 1, "ZERO": 2, "PAGE": 1 if keep_pages else 0, "XBZRLE": 2,
                 "COMPRESS": 2, "FLAG": 1}[r.kind]
        if kept.get(r.kind, 0) >= limit:
            continue
        kept[r.kind] = kept.get(r.kind, 0) + 1
        record = data[r.start:r.end]
        # A CONTINUE record needs its block named by the record before it:
        # name it where the cut dropped that record.
        if r.info.get("flags", 0) & qs.RAM_CONTINUE and last_named != r.info["resolved"]:
            word = struct.unpack(">Q", record[:8])[0] & ~qs.RAM_CONTINUE
            name = r.info["resolved"].encode("latin-1")
            record = struct.pack(">Q", word) + bytes([len(name)]) + name + record[8:]
        if "resolved" in r.info:
            last_named = r.info["resolved"]
        out += record
    out += struct.pack(">Q", qs.RAM_EOS)
    out += data[rec.info["body_end"]:rec.end]  # the footer, if any
    return bytes(out)


def ram_payload(data, rec, keep_pages):
    whole = trim_ram(data, rec, keep_pages)
    head = rec.info["body"] - rec.start
    tail = rec.end - rec.info["body_end"]
    return whole[head:len(whole) - tail]


def stream_skeleton(data, records, keep_pages, with_devices=False):
    """The stream's records with RAM sections trimmed, at most two RAM
    PARTs, device sections dropped unless asked, then EOF."""
    out = bytearray()
    parts = 0
    for rec in records:
        if rec.kind in ("EOF", "VMDESC"):
            break
        if rec.info.get("ram") is not None:
            if rec.kind == "PART":
                parts += 1
                if parts > 2:
                    continue
            out += trim_ram(data, rec, keep_pages)
        elif rec.kind == "FULL" and not with_devices:
            continue
        else:
            out += data[rec.start:rec.end]
    out.append(qs.EOF)
    return bytes(out)


def device_groups(devices, size_of):
    """Consecutive runs of devices whose JSON fits in MAX_SEED_JSON."""
    groups, current, size = [], [], 0
    for device in devices:
        n = size_of(device)
        if n > MAX_SEED_JSON:
            continue
        if current and size + n > MAX_SEED_JSON:
            groups.append(current)
            current, size = [], 0
        current.append(device)
        size += n
    if current:
        groups.append(current)
    return groups


VMSTATE_DUMPS = os.path.join(TOP, "tests", "data", "vmstate")


def compat_seeds(out, stream_groups):
    """Dumps of a few device types each, from QEMU 7.2's and 11.1's real
    -dump-vmstate; and for each group of a stream's devices, the dump entries
    with their vmsds followed by the group's description."""
    for version in ("7.2", "11.1"):
        path = os.path.join(VMSTATE_DUMPS, "qemu-%s-pc-i440fx-7.2.json.gz" % version)
        dump = json.load(gzip.open(path))
        by_vmsd = {}
        for key, entry in dump.items():
            if key != "vmschkmachine":
                by_vmsd.setdefault(entry["Description"]["name"], []).append(key)

        def subset(types):
            part = {"vmschkmachine": dump["vmschkmachine"]}
            part.update((t, dump[t]) for t in types)
            return compact(part)

        for label, text, group in stream_groups:
            types = []
            for r in group:
                for vmsd in (r.info["idstr"], r.info["idstr"].rsplit("/", 1)[-1]):
                    types += by_vmsd.get(vmsd, [])[:1]
            if types:
                seed = subset(types)
                if len(seed) <= MAX_SEED_JSON:
                    out[f"dump{version}.{label}.json"] = seed
                out[f"dump{version}+stream.{label}.json"] = seed + b"\n--\n" + text


def compact_mapped_ram(data):
    """A real mapped-ram file made small: each block of the RAM START keeps its
    real MEM_SIZE entry and header, shrunk to at most two written pages (the
    first ones of the real bitmap, with their real contents) and a page
    region right after its bitmap instead of at QEMU's 1 MiB alignment; the
    rest of the stream follows unchanged. None if `data` is not one."""
    start = data.find(b"\x01\x00\x00\x00\x01\x03ram\x00\x00\x00\x00\x00\x00\x00\x04")
    if start < 0:
        return None
    pos = start + 17
    word = struct.unpack(">Q", data[pos:pos + 8])[0]
    if word & 0xfff != qs.RAM_MEM_SIZE:
        return None
    remaining, pos = word & ~0xfff, pos + 8
    blocks = []
    while remaining > 0:
        name = data[pos:pos + 1 + data[pos]]
        pos += len(name)
        length = struct.unpack(">Q", data[pos:pos + 8])[0]
        version, page_size, bitmap_at, pages_at = struct.unpack(">IQQQ", data[pos + 8:pos + 36])
        if version != 1 or page_size != 4096 or length == 0 or length > remaining:
            return None
        pages = length // 4096
        bitmap = data[bitmap_at:bitmap_at + (pages + 63) // 64 * 8]
        written = [w * 64 + b for w in range(len(bitmap) // 8)
                   for b in range(64) if struct.unpack("<Q", bitmap[w * 8:w * 8 + 8])[0] >> b & 1]
        blocks.append((name, [data[pages_at + p * 4096:pages_at + (p + 1) * 4096]
                              for p in written[:2]]))
        remaining -= length
        pos = pages_at + length
    out = bytearray(data[:start + 17])
    out += struct.pack(">Q", sum(max(1, len(kept)) for _, kept in blocks) * 4096 | qs.RAM_MEM_SIZE)
    for name, kept in blocks:
        length = max(1, len(kept)) * 4096
        out += name + struct.pack(">Q", length)
        bitmap_at = len(out) + 28
        pages_at = (bitmap_at + 8 + 4095) // 4096 * 4096
        out += struct.pack(">IQQQ", 1, 4096, bitmap_at, pages_at)
        out += struct.pack("<Q", (1 << len(kept)) - 1)
        out += bytes(pages_at - len(out))
        out += b"".join(kept) + bytes(length - 4096 * len(kept))
    return bytes(out + data[pos:])


def seeds_for(corpus):
    seeds = {t: {} for t in TARGETS}
    streams = {}
    for path in sorted(glob.glob(os.path.join(corpus, "*.mig"))):
        data = open(path, "rb").read()
        streams[os.path.basename(path)[:-4]] = (data, qs.walk_stream(data))

    # mapped-ram files, which the record walker cannot follow past the
    # configuration: shrunk whole.
    for path in sorted(glob.glob(os.path.join(corpus, "mapped-ram*.mig"))):
        small = compact_mapped_ram(open(path, "rb").read())
        if small is not None:
            seeds["stream_fuzzer"][os.path.basename(path)[:-4] + ".compact"] = small

    configs = {}
    for name, (data, records) in streams.items():
        keep_pages = name in ("pc-i440fx-7.2", "postcopy")
        # stream: the real skeleton of every stream.
        seeds["stream_fuzzer"][f"{name}.skeleton"] = stream_skeleton(data, records, keep_pages)
        for rec in records:
            if rec.kind == "CONFIG":
                # config: what follows the 0x07 byte, then EOF.
                configs.setdefault(data[rec.start + 1:rec.end], name)
            if rec.kind == "PACKAGED":
                blob = data[rec.info["blob"]:rec.info["blob"] + rec.info["length"]]
                seeds["package_fuzzer"][f"{name}.package"] = blob
        # ram: the first RAM PART (and any with XBZRLE/COMPRESS records).
        done = set()
        for rec in records:
            if rec.kind not in ("PART", "END") or rec.info.get("ram") is None:
                continue
            kinds = frozenset(r.kind for r in rec.info["ram"]) - {"EOS"}
            if not kinds or kinds <= done:
                continue
            done |= kinds
            seeds["ram_fuzzer"][f"{name}.part@{rec.start:x}"] = ram_payload(data, rec, keep_pages)
    for config, name in configs.items():
        seeds["config_fuzzer"][f"{name}.config"] = config + bytes([qs.EOF])

    # A postcopy package cut to its commands only, and one with a device.
    data, records = streams["postcopy"]
    package = [r for r in records if r.kind == "PACKAGED"][0]
    inner_data = b"QEVM\0\0\0\3" + data[package.info["blob"]:package.end]
    skeleton = b"".join(inner_data[r.start:r.end] for r in qs.walk_stream(inner_data)
                        if r.kind == "COMMAND")
    seeds["package_fuzzer"]["postcopy.package-commands"] = skeleton

    # Device state with its description: schema stream devices, in groups
    # small enough for a seed, each with a trailer describing just them.
    data, records = streams[SCHEMA_STREAM[:-4]]
    description = json.loads(qs.locate_trailer(data))
    by_key = {(d["name"], d["instance_id"]): d for d in description["devices"]}
    fulls = [r for r in records if r.kind == "FULL"]
    head = b"".join(data[r.start:r.end] for r in records if r.kind in ("HEADER", "CONFIG"))
    compat_stream_groups = []
    groups = device_groups(fulls, lambda r: len(compact(
        by_key[(r.info["idstr"], r.info["instance"])])))
    for group in groups:
        body = head + b"".join(data[r.start:r.end] for r in group) + bytes([qs.EOF])
        described = dict(description)
        described["devices"] = [by_key[(r.info["idstr"], r.info["instance"])] for r in group]
        text = compact(described)
        trailer = bytes([qs.VMDESC]) + struct.pack(">I", len(text)) + text
        label = f"{group[0].info['idstr']}..{group[-1].info['idstr']}".replace("/", "_")
        seeds["stream_fuzzer"][f"devices.{label}"] = body + trailer
        seeds["description_fuzzer"][f"devices.{label}.json"] = text
        compat_stream_groups.append((label, text, group))
        inside = b"".join(data[r.start:r.end] for r in group[:3])
        commands = seeds["package_fuzzer"]["postcopy.package-commands"]
        # LISTEN first, devices, then the PING and RUN that end the package.
        listen = commands[:5]
        seeds["package_fuzzer"][f"devices.{label}"] = listen + inside + commands[5:]
    # compat: real -dump-vmstate entries (tests/data/vmstate/), alone and with
    # the description of the same devices in a real stream after "\n--\n".
    compat_seeds(seeds["compat_fuzzer"], compat_stream_groups)

    # Devices whose description is too big for a seed: unverified on purpose.
    big = [r for r in fulls if len(compact(by_key[(r.info["idstr"], r.info["instance"])]))
           > MAX_SEED_JSON and r.info["body_end"] - r.info["body"] < 4096]
    if big:
        seeds["stream_fuzzer"]["devices.undescribed"] = head + b"".join(
            data[r.start:r.end] for r in big) + bytes([qs.EOF])

    # vmstate: [device index in the embedded description] + the body.
    index = {(d["name"], d["instance_id"]): i for i, d in enumerate(description["devices"])}
    for r in fulls:
        key = (r.info["idstr"], r.info["instance"])
        body = data[r.info["body"]:r.info["body_end"]]
        if key in index and len(body) <= 8192:
            seeds["vmstate_fuzzer"][f"{index[key]:02d}.{key[0]}.{key[1]}".replace("/", "_")] = (
                bytes([index[key]]) + body)

    # pipe: each stream seed behind each transport shape.
    for name, stream in list(seeds["stream_fuzzer"].items()):
        for shape in PIPE_SHAPES:
            seeds["pipe_fuzzer"][f"{name}.{shape:02x}"] = bytes([shape]) + stream

    # Return paths as recorded.
    for path in sorted(glob.glob(os.path.join(corpus, "*.rp"))):
        seeds["return_path_fuzzer"][os.path.basename(path)] = open(path, "rb").read()

    # multifd: MultiFDInit plus the first packet, and plus a one-page packet.
    for path in sorted(glob.glob(os.path.join(corpus, "multifd.ch*.bin"))):
        data = open(path, "rb").read()
        name = os.path.basename(path)[:-4]
        pos, packets = 64, []
        while pos + 32 <= len(data):
            _, _, _, alloc, normal = struct.unpack(">IIIII", data[pos:pos + 20])
            # The offset table has room for a full packet (128 pages)
            # whatever the packet holds; a 9.0+ sync packet allocates none.
            size = 320 + 8 * MULTIFD_PAGES_PER_PACKET + 4096 * normal
            packets.append((pos, size, normal))
            pos += size
        seeds["multifd_fuzzer"][f"{name}.sync"] = data[:packets[0][0] + packets[0][1]]
        for pos, size, normal in packets:
            if normal == 1:
                seeds["multifd_fuzzer"][f"{name}.one-page"] = data[:64] + data[pos:pos + size]
                break
    return seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="append",
                        help="a corpus directory (repeatable; default: %s)" % ", ".join(CORPORA))
    parser.add_argument("--out", default=os.path.join(TOP, "fuzz", "corpus"))
    args = parser.parse_args()
    corpora = args.corpus or [os.path.join(TOP, "corpus", c) for c in CORPORA]
    seeds = {t: {} for t in TARGETS}
    for i, corpus in enumerate(corpora):
        prefix = "" if i == 0 else os.path.basename(os.path.normpath(corpus)) + "."
        for target, files in seeds_for(corpus).items():
            for name, content in files.items():
                seeds[target][prefix + name] = content
    total = 0
    for target, files in seeds.items():
        directory = os.path.join(args.out, target)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        unique, size = {}, 0
        for name, content in sorted(files.items()):
            name = re.sub(r"[^A-Za-z0-9._@-]", "_", name)
            digest = hashlib.sha1(content).hexdigest()
            if digest in unique:
                continue
            unique[digest] = name
            size += len(content)
            with open(os.path.join(directory, name), "wb") as f:
                f.write(content)
        total += size
        print(f"{target}: {len(unique)} seeds, {size} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
