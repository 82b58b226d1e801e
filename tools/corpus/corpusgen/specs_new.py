"""The streams of corpus/qemu-8.2, 9.2, 10.0 and 11.1 (and of any QEMU given
by path): the same list for every version, on its latest machine types unless
a stream says otherwise, less what a version does not have yet."""

import os

from . import newer as n
from .guest import model_of, std_writes, w_memset, w_pattern, w_writeq
from .qemu import LOOP_KERNEL_ARGS, PAGE, TINY_BIOS_ARGS, TMP_TOKEN, version_at_least
from .recipes import req_config, req_item, req_ram
from .specs import DIMM_BASE, UUID

SWITCHOVER = r"CMD SWITCHOVER_START\(len 0\)"

# Devices beyond the bare machine, for the "devices" stream: no backends
# that need the host (null-co disks, null chardev, an unconnected NIC), no
# option ROMs (64 pages each). Each virtio device saves about 45 KB (state of
# all 1024 possible queues) and an e1000 about 200 KB (its full register
# file), so the list stays short.
DEVICE_ARGS = [
    "-blockdev", "driver=null-co,node-name=disk0,size=1048576",
    "-blockdev", "driver=null-co,node-name=disk1,size=1048576",
    "-chardev", "null,id=ser0",
    "-device", "isa-serial,chardev=ser0",
    "-device", "virtio-net-pci,mac=52:54:00:12:34:57,romfile=",
    "-device", "virtio-blk-pci,drive=disk0",
    "-device", "ich9-ahci,id=ahci",
    "-device", "ide-hd,drive=disk1,bus=ahci.0",
    "-device", "qemu-xhci,id=xhci",
    "-device", "usb-tablet,bus=xhci.0",
]

# mapped-ram files keep every RAMBlock at a 1 MiB-aligned offset, so the
# file is at least 1 MiB per block plus the last block's size whatever the
# guest holds: a microvm without ACPI (two blocks: RAM and BIOS; its ACPI
# tables would add three) with 512 KiB of RAM.
MAPPED_RAM_MACHINE = "microvm"
MAPPED_RAM_ARGS = TINY_BIOS_ARGS + ["-machine", "acpi=off", "-m", "512K"]
MAPPED_RAM_WRITES = [
    w_writeq(0x10000, 0x5145564d716d6967),
    w_writeq(0x10008, 0x0123456789abcdef),
    w_memset(0x20000, 3 * PAGE, 0xa5),
    w_pattern(0x30000, "mapped-ram", 0),
    w_pattern(0x31000, "mapped-ram", 1),
    w_writeq(0x7fff8, 0xdeadbeefcafef00d),
]


def specs_new(version):
    pc, q35 = "pc-i440fx-%s" % version, "pc-q35-%s" % version
    # What came when (from QEMU's changelogs): SWITCHOVER_START with 10.0 (and
    # only on its machine types), mapped-ram and zero-page-detection with 9.0;
    # compress went in 9.1.
    switchover = version_at_least(version, 10, 0)
    mapped_ram = version_at_least(version, 9, 0)
    zero_page_detection = version_at_least(version, 9, 0)
    compress = not version_at_least(version, 9, 1)
    with_switchover = [req_item(SWITCHOVER)] if switchover else []
    s = []

    def add(**kw):
        kw.setdefault("make", n.make_precopy)
        kw.setdefault("extra", TINY_BIOS_ARGS)
        s.append(kw)

    def broken(name, base, mutate, description, expect=None, **kw):
        s.append(dict(name=name, base=base, mutate=mutate, description=description,
                      expect=expect, make=n.make_broken, **kw))

    # -- precopy to a file ----------------------------------------------------
    add(name=pc, machine=pc,
        description="Precopy of a never-started %s guest (tiny BIOS) with written patterns: "
                    "CONFIGURATION, section footers, %sVMDESCRIPTION JSON trailer." % (
                        pc, "SWITCHOVER_START before the RAM END section, " if switchover
                        else ""),
        require=[req_item("CONFIGURATION"), req_item(r"\+footer")] + with_switchover)
    add(name=q35, machine=q35,
        description="Same as %s on the q35 machine." % pc,
        require=[req_item("CONFIGURATION"), req_item(r"\+footer")] + with_switchover)
    add(name="pc-i440fx-7.2", machine="pc-i440fx-7.2", cross=["7.2"],
        description="The old machine type pc-i440fx-7.2 made by QEMU %s (tiny BIOS)%s; "
                    "cross_verdicts has QEMU 7.2's verdict on the same file." % (
                        version, ": its compat properties suppress SWITCHOVER_START"
                        if switchover else ""),
        require=[req_item("CONFIGURATION")])
    add(name="booted", machine=pc, make=n.make_booted, extra=LOOP_KERNEL_ARGS,
        description="A running guest (TCG, no -S): SeaBIOS boots a multiboot -kernel that "
                    "keeps writing a counter into one dword of each of 8 pages at 2 MiB; "
                    "migrated to a file after 2 s while it runs. Device state is that of a "
                    "booted machine, and RAM holds what SeaBIOS and the kernel wrote.")
    add(name="devices", machine=pc, extra=TINY_BIOS_ARGS + DEVICE_ARGS,
        description="%s with virtio-net-pci (no option ROM), virtio-blk-pci (null-co), "
                    "ich9-ahci with an ide-hd (null-co), qemu-xhci with a usb-tablet and an "
                    "isa-serial on a null chardev." % pc,
        require=[req_item("CONFIGURATION")])
    add(name="xbzrle", machine=pc,
        caps=["xbzrle", "pause-before-switchover"], dest_caps=["xbzrle"],
        params={"max-bandwidth": 512 * 1024, "downtime-limit": 1,
                "xbzrle-cache-size": 1024 * 1024},
        dirtier=n.sync_dirtier(0x900000, 4, 4, 0.05),
        writes=std_writes() + [w_pattern(0x900000 + i * PAGE, "xbzrle", i) for i in range(4)],
        deterministic=False, require=[req_ram("XBZRLE")],
        description="xbzrle capability; 4 pages at 0x900000 are rewritten via qtest every "
                    "50 ms while the migration runs, until the source has synced its dirty "
                    "bitmap 4 times, and once more in pre-switchover (source-only capability "
                    "pause-before-switchover), so later iterations and the completion pass "
                    "carry XBZRLE (0x40) records.")
    if compress:
        add(name="compress", machine=pc, caps=["compress"],
            params={"compress-threads": 1, "compress-level": 1},
            dest_params={"decompress-threads": 1}, deterministic=False,
            require=[req_ram("COMPRESS_PAGE")],
            description="compress capability (1 thread, level 1; removed in 9.1): non-zero "
                        "pages as COMPRESS_PAGE (0x100) zlib records.")
    add(name="dirty-bitmaps", machine=pc,
        extra=TINY_BIOS_ARGS + ["-blockdev", "driver=null-co,node-name=disk0,size=4194304"],
        caps=["dirty-bitmaps"], params={"max-bandwidth": 256 * 1024},
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
    shared = os.path.join(TMP_TOKEN, "shared-ram")
    add(name="ignore-shared", machine=pc,
        extra=TINY_BIOS_ARGS + [
            "-object", "memory-backend-file,id=ram0,size=16M,share=on,mem-path=" + shared,
            "-machine", "memory-backend=ram0",
            "-m", "16,slots=1,maxmem=32M",
            "-object", "memory-backend-ram,id=mem1,size=2M",
            "-device", "pc-dimm,id=dimm1,memdev=mem1,addr=0x%x" % DIMM_BASE],
        caps=["x-ignore-shared"],
        writes=std_writes() + [w_pattern(DIMM_BASE, "private", 0)],
        not_in_stream=[p["addr"] for p in model_of(std_writes()).expected()],
        require=[req_config("configuration/capabilities")],
        notes="Main RAM (backed by the shared file ram0) is skipped by x-ignore-shared: its "
              "pages are not in the stream. The verdict destination maps the same file, so "
              "those pages read back from the file. Only dimm1 (private) pages are checked "
              "against the stream.",
        description="x-ignore-shared with main RAM on a share=on memory-backend-file: "
                    "configuration/capabilities subsection, MEM_SIZE entries with a GPA, "
                    "no pages for the shared block; a private pc-dimm block is migrated.")
    add(name="uuid", machine=pc, extra=TINY_BIOS_ARGS + ["-uuid", UUID],
        caps=["validate-uuid"], require=[req_config("configuration/uuid")],
        description="validate-uuid with -uuid %s: configuration/uuid subsection." % UUID)
    add(name="background-snapshot", machine=pc, caps=["background-snapshot"],
        dest_caps=[], running=True,
        notes="The source runs (qtest accelerator, so nothing executes): QEMU %s aborts with "
              "'invalid runstate transition: 'prelaunch' -> 'paused'' when a background "
              "snapshot starts from a never-started (-S) guest (7.2 does the same)." % version,
        description="background-snapshot capability (source only): RAM in one pass, "
                    "write-protected with userfaultfd while it is saved; no "
                    "SWITCHOVER_START.")

    # -- live migrations through the recording proxy ----------------------------
    live = dict(make=n.make_live, extra=TINY_BIOS_ARGS)
    mf_writes = std_writes() + [w_pattern(0x800000 + i * PAGE, "multifd", i) for i in range(16)]
    if zero_page_detection:
        s.append(dict(live, name="multifd", machine=pc, kind="multifd-main",
                      caps=["multifd"],
                      params={"multifd-channels": 2, "zero-page-detection": "multifd"},
                      dest_params={"multifd-channels": 2}, writes=mf_writes,
                      channels=["ch0", "ch1"],
                      description="Live 2-channel multifd migration with zero-page-detection="
                                  "multifd (the default): the channels carry the zero pages as "
                                  "zero_pages offsets, the main channel none; every channel is "
                                  "a file (multifd.chN.bin)."))
        s.append(dict(live, name="multifd-zpd-legacy", machine=pc, kind="multifd-main",
                      caps=["multifd"],
                      params={"multifd-channels": 2, "zero-page-detection": "legacy"},
                      dest_params={"multifd-channels": 2}, writes=mf_writes,
                      channels=["ch0", "ch1"], require=[req_ram("ZERO", 100)],
                      description="Live 2-channel multifd migration with zero-page-detection="
                                  "legacy: zero pages as ZERO records on the main channel, "
                                  "only non-zero pages in the channels."))
    else:
        s.append(dict(live, name="multifd", machine=pc, kind="multifd-main",
                      caps=["multifd"], params={"multifd-channels": 2},
                      dest_params={"multifd-channels": 2}, writes=mf_writes,
                      channels=["ch0", "ch1"],
                      require=[req_ram("ZERO", 100), req_ram("MULTIFD_FLUSH")],
                      description="Live 2-channel multifd migration before "
                                  "zero-page-detection (9.0): the main channel sends zero "
                                  "pages as ZERO records and MULTIFD_FLUSH at each sync, the "
                                  "channels the other pages; every channel is a file "
                                  "(multifd.chN.bin)."))
    # QEMU 10.0 and 11.1 count a migration's bytes for its rate limit only when
    # they flush them (up to 64 pages or 32 KiB at a time), so max-bandwidth
    # hardly slows a small precopy: it converges within a few hundred ms,
    # dirtying or not. Postcopy starts right after migrate instead, and the
    # pages the destination faults on sit at the top of RAM, which the
    # background sweep reaches last.
    faults = [0xf00000 + i * PAGE for i in (7, 5, 3)]
    pc_writes = std_writes() + [w_pattern(0xf00000 + i * PAGE, "postcopy-top", i)
                                for i in range(8)]
    pc_params = {"max-bandwidth": 64 * 1024, "max-postcopy-bandwidth": 64 * 1024,
                 "downtime-limit": 1}
    s.append(dict(live, name="postcopy", machine=pc, kind="postcopy-main",
                  caps=["postcopy-ram"], params=pc_params, writes=pc_writes,
                  postcopy=True, precopy_s=0, fault_pages=faults, rp=True,
                  require=[req_item("PACKAGED"), req_item("LISTEN"), req_item("RUN"),
                           req_item("RAM_DISCARD")],
                  require_rp=[n.req_rp("PONG")],
                  description="Live postcopy over loopback TCP recorded by a proxy: main stream "
                              "(.mig) and return path (.rp). migrate-start-postcopy right after "
                              "migrate, then the destination reads 3 pages at the top of RAM "
                              "via qtest, so it requests those not yet sent."))
    s.append(dict(live, name="postcopy-preempt", machine=pc, kind="postcopy-main",
                  caps=["postcopy-ram", "postcopy-preempt"], params=pc_params,
                  writes=pc_writes, postcopy=True, precopy_s=0, fault_pages=faults, rp=True,
                  channels=["preempt"],
                  require=[req_item("PACKAGED"), req_item("RUN")],
                  require_rp=[n.req_rp("PONG")],
                  description="Live postcopy with postcopy-preempt: main stream (.mig), return "
                              "path (.rp) and the preempt channel (.preempt.bin), on which the "
                              "source sends the pages the destination requested."))
    s.append(dict(live, name="switchover-ack", machine=pc, kind="precopy-live",
                  caps=["return-path", "switchover-ack"], rp=True,
                  require=[req_item("OPEN_RETURN_PATH")],
                  description="Live precopy with return-path and switchover-ack: main stream "
                              "(.mig) and return path (.rp; QEMU 8.2 to 10.0 send "
                              "SWITCHOVER_ACK on it, 11.1 none when no device asks for the "
                              "ack)."))

    # -- mapped-ram files (9.0 and later) -------------------------------------
    if mapped_ram:
        s.append(dict(name="mapped-ram", make=n.make_mapped_ram, machine=MAPPED_RAM_MACHINE,
                      extra=MAPPED_RAM_ARGS, caps=["mapped-ram"], writes=MAPPED_RAM_WRITES,
                      description="migrate file: with the mapped-ram capability (microvm without "
                                  "ACPI, 512 KiB RAM, tiny BIOS: two RAMBlocks, about 2 MiB of "
                                  "file): configuration/capabilities lists mapped-ram; "
                                  "each MEM_SIZE entry is followed by a mapped-ram header, and the "
                                  "bitmap and pages sit at 1 MiB-aligned file offsets (the file "
                                  "is mostly holes)."))
        s.append(dict(name="mapped-ram-multifd", make=n.make_mapped_ram,
                      machine=MAPPED_RAM_MACHINE, extra=MAPPED_RAM_ARGS,
                      caps=["mapped-ram", "multifd"], params={"multifd-channels": 2},
                      writes=MAPPED_RAM_WRITES, deterministic=False,
                      description="mapped-ram with multifd (2 channels): the same layout, pages "
                                  "written by the multifd threads into the one file (no channel "
                                  "files, no packets)."))

    # -- broken variants --------------------------------------------------------
    broken("broken-packaged-short", "postcopy.mig", n.mut_packaged(-1),
           "postcopy.mig with the PACKAGED length one byte short: the package ends inside "
           "its RUN command.",
           notes=None if version not in ("10.0", "11.1") else
           "QEMU's reaction is racy. In trial runs while this corpus was made, 10.0 "
                 "printed 'load of migration failed: Input/output error' and then exited 1, "
                 "stopped answering QMP, or aborted (assertions in yank_unregister_instance "
                 "and in qemu_peek_byte); 11.1 failed with 'loadvm failed during postcopy: "
                 "-5: ... Channel error: Input/output error' or stayed in inmigrate.")
    broken("broken-packaged-long", "postcopy.mig", n.mut_packaged(+1),
           "postcopy.mig with the PACKAGED length one byte long: the package swallows the "
           "first byte after it.")
    if switchover:
        broken("broken-switchover-len1", pc + ".mig", n.mut_switchover_len1,
               "%s.mig with SWITCHOVER_START (command 11) of length 1, with one payload "
               "byte 0x00." % pc)
        broken("broken-switchover-twice", pc + ".mig", n.mut_second_switchover,
               "%s.mig with a second SWITCHOVER_START right after the first." % pc)
        broken("broken-cmd12", pc + ".mig", n.mut_cmd12,
               "%s.mig with SWITCHOVER_START's command number 11 changed to 12 (length 0)." % pc)
    else:
        broken("broken-cmd11", pc + ".mig", n.mut_cmd11_inserted,
               "%s.mig with command 11 (SWITCHOVER_START from 10.0 on, length 0) inserted "
               "before the RAM END section: a command QEMU %s does not have." % (pc, version))
    broken("broken-zero-fill", pc + ".mig", n.mut_zero_fill,
           "%s.mig with the fill byte of pc.ram's first ZERO record set to 1." % pc)
    broken("broken-multifd-magic", "multifd.ch*.bin", n.mut_multifd_magic,
           "The smaller channel file of multifd.mig with a bad magic in its first packet "
           "(after the 64-byte init); loaded with multifd.mig and the other channel, all "
           "kept open.")
    broken("broken-multifd-normal", "multifd.ch*.bin", n.mut_multifd_normal,
           "The smaller channel file of multifd.mig with normal_pages above pages_alloc in "
           "its first packet with pages; loaded with multifd.mig and the other channel, all "
           "kept open.")
    if mapped_ram:
        broken("broken-mapped-ram-v2", "mapped-ram.mig", n.mut_mapped_ram_version_cut,
               "mapped-ram.mig with version 2 in its first block's mapped-ram header, cut (to "
               "stay small) right after that block's bitmap as broken-mapped-ram-cut.mig is; "
               "compared_variants has QEMU's verdict on the whole file with only the version "
               "changed.",
               compare={"version-2-whole-file": ("mapped-ram.mig with only the version changed, "
                                                 "full length", n.mut_mapped_ram_version)})
        broken("broken-mapped-ram-cut", "mapped-ram.mig", n.mut_mapped_ram_cut,
               "mapped-ram.mig cut short right after its first block's bitmap: the pages of "
               "the block (and everything after) are missing.")
    return s
