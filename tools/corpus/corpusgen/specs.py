"""The streams of corpus/qemu-7.2, made by QEMU 7.2."""

import os

from .guest import model_of, std_writes, w_memset, w_pattern, w_writeq
from .qemu import PAGE, TINY_BIOS_ARGS, TMP_TOKEN
from .recipes import (make_file_stream, make_multifd, make_postcopy, req_config,
                      req_described_twice, req_item, req_ram, rewrite_dirtier)

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


def specs_for(version):
    """The streams made with QEMU `version` ("7.2", "10.0", "11.1", ...)."""
    if version == "7.2":
        return specs()
    from .specs_new import specs_new
    return specs_new(version)
