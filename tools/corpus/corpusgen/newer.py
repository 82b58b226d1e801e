"""Recipes for the streams of QEMU 10.0 and later (corpus/qemu-10.0,
corpus/qemu-11.1): a running guest, live migrations with any mix of return
path, multifd channels, postcopy and its preempt channel, mapped-ram files,
and broken variants of all of these, each loaded into a real destination of
the same version."""

import glob
import hashlib
import json
import os
import shlex
import shutil
import struct
import time

from . import qemu
from .guest import apply_write, hexify_writes, model_of, std_writes, w_writeq
from .proxy import Proxy
from .qemu import (PAGE, TMP_TOKEN, Vm, aux_of, log, machine_args, make_aux_files, set_caps,
                   set_params, wait_status)
from .recipes import _finish_live, live_pair, make_file_stream, meta_name, slim, write_meta
from .scan import Scan, qs, scan_multifd_channel, scan_preempt_channel, scan_rp
from .verdict import outcome, verdict

MULTIFD_MAGIC = b"\x11\x22\x33\x44"
BROKEN_TIMEOUT_S = 20    # how long a destination may take over a broken stream
BROKEN_RUNS = 3          # QEMU's reaction to some defects is racy: each is tried this often


def _rewrite_meta(ctx, fname, **extra):
    """Adds keys to a meta written by write_meta (its file did not change)."""
    path = os.path.join(ctx.out, meta_name(fname))
    with open(path) as f:
        m = json.load(f)
    m.update(extra)
    with open(path, "w") as f:
        json.dump(m, f, indent=2, sort_keys=False)
        f.write("\n")
    return m


def _verdict_with(version, *args, **kw):
    """A verdict by another QEMU version than this run's."""
    saved = (qemu.QEMU, qemu.QEMU_KEY, qemu.QEMU_FROM, qemu.QEMU_LABELLED)
    try:
        qemu.use_qemu(version)
        v = verdict(*args, **kw)
        v["qemu_version"] = qemu.qemu_version()
        return v
    finally:
        qemu.QEMU, qemu.QEMU_KEY, qemu.QEMU_FROM, qemu.QEMU_LABELLED = saved


def make_precopy(ctx, spec):
    """make_file_stream, then the verdicts of other QEMU versions
    (spec["cross"]) on the same file."""
    files = make_file_stream(ctx, spec)
    if spec.get("cross"):
        extra = spec.get("extra", [])
        cross = {}
        for ver in spec["cross"]:
            v = _verdict_with(ver, os.path.join(ctx.out, files[0]), spec["machine"], extra,
                              spec.get("dest_caps", spec.get("caps", [])),
                              spec.get("dest_params", {}), tmpdir=ctx.tmp)
            log("%s: QEMU %s's verdict %s" % (spec["name"], ver, v["status"]))
            cross[ver] = v
        _rewrite_meta(ctx, files[0], cross_verdicts=cross)
    return files


def sync_dirtier(base, npages, syncs, period):
    """Dirtier for a source with pause-before-switchover, for xbzrle: a page
    is cached on its first send after the first complete round and encoded
    with XBZRLE on the next one, so the pages must stay dirty across rounds.
    While the migration is active, rewrite one qword in each of `npages`
    pages every `period` seconds until the source has synced its dirty
    bitmap `syncs` times (with downtime-limit 1 it cannot converge while
    pages keep changing), then allow convergence and rewrite them once more
    in pre-switchover."""
    def one_round(vm, r, done):
        for p in range(npages):
            w = w_writeq(base + p * PAGE + (r % 64) * 64, 0x1000000 * (r + 1) + p)
            apply_write(vm.qt, w)
            done.append(w)

    def run(vm):
        done, r, relaxed = [], 0, False
        deadline = time.time() + 60
        while time.time() < deadline:
            q = vm.qmp.cmd("query-migrate")
            st = q.get("status")
            if st == "active" and not relaxed:
                one_round(vm, r, done)
                r += 1
                if q.get("ram", {}).get("dirty-sync-count", 0) >= syncs:
                    vm.qmp.cmd("migrate-set-parameters", **{"downtime-limit": 300})
                    relaxed = True
            elif st == "pre-switchover":
                one_round(vm, r, done)
                vm.qmp.cmd("migrate-continue", state="pre-switchover")
                break
            elif st not in ("active", "setup"):
                raise RuntimeError("migration %s while dirtying" % st)
            time.sleep(period)
        return done
    return run


# ---------------------------------------------------------------------------
# A running guest
# ---------------------------------------------------------------------------

def make_booted(ctx, spec):
    """A guest that runs under TCG: SeaBIOS boots a multiboot -kernel that
    keeps rewriting one dword in each of 8 pages at 2 MiB with a counter;
    migrated to a file while it runs."""
    name = spec["name"]
    machine = spec["machine"]
    extra = spec["extra"]
    fname = name + ".mig"
    tmpfile = os.path.join(ctx.tmp, fname)
    make_aux_files(ctx.tmp, aux_of(extra))
    args = machine_args(machine, [a.replace(TMP_TOKEN, ctx.tmp) for a in extra])
    log("%s: running %s guest under TCG" % (name, machine))
    events = []
    with Vm("src-" + name, args, ctx.tmp, qtest=False).start() as vm:
        time.sleep(spec.get("run_s", 2.0))
        st = vm.qmp.cmd("query-status")
        events.append("guest %s after %ss" % (st.get("status"), spec.get("run_s", 2.0)))
        vm.qmp.cmd("migrate", uri="exec:cat > " + shlex.quote(tmpfile))
        r = wait_status(vm, ("completed",), 120)
        if r.get("status") != "completed":
            raise RuntimeError("%s: source migration %s: %s" % (
                name, r.get("status"), r.get("error-desc", vm.stderr_text())))
        src_info = {k: r.get(k) for k in ("ram",) if k in r}
        full_args = vm.full_args()
    time.sleep(0.2)
    shutil.copyfile(tmpfile, os.path.join(ctx.out, fname))
    v = verdict(os.path.join(ctx.out, fname), machine, extra, [], {}, tmpdir=ctx.tmp)
    log("%s: verdict %s" % (name, v["status"]))
    sc = Scan(open(os.path.join(ctx.out, fname), "rb").read()).run()
    if sc.ram.get("PAGE", 0) < 64:       # SeaBIOS alone writes more
        raise RuntimeError("%s: only %d PAGE records; did the guest run?" % (
            name, sc.ram.get("PAGE", 0)))
    write_meta(ctx, fname, {
        "kind": "precopy",
        "description": spec["description"],
        "machine": machine,
        "qemu_args": ctx.public(full_args) + ["(QMP) migrate exec:cat > FILE"],
        "config_args": ctx.public(extra),
        "dest_args": ctx.public(machine_args(machine, extra) + ["-S", "-incoming", "defer"]),
        "aux_files": aux_of(extra),
        "capabilities": [], "dest_capabilities": [], "parameters": {}, "dest_parameters": {},
        "guest_writes": [], "guest_writes_during_migration": [],
        "expected_pages": [],
        "source_stats": src_info,
        "deterministic": False,
        "events": events,
        "companions": [],
        "scan": sc.summary(),
        "qemu_verdict": v,
    })
    if v["status"] != "completed":
        raise RuntimeError("%s: destination did not complete: %s" % (name, v))
    return [fname]


# ---------------------------------------------------------------------------
# Live migrations through the recording proxy
# ---------------------------------------------------------------------------

def _roles(conns):
    """Names each recorded connection: main, chN (multifd, N from its init)
    or preempt (postcopy preempt: no magic of its own)."""
    out = []
    for conn in conns:
        head = bytes(conn.fwd[:4])
        if head == b"QEVM":
            out.append("main")
        elif head == MULTIFD_MAGIC and len(conn.fwd) >= 64:
            out.append("ch%d" % conn.fwd[24])
        else:
            out.append("preempt")
    return out


def make_live(ctx, spec):
    """A live migration QEMU -> QEMU through the recording proxy.

    spec: machine, extra, caps (both sides), params (source), dest_params,
    writes, postcopy (start postcopy after precopy_s seconds of dirtying, then
    read fault_pages on the destination), channels (the connections wanted
    besides main: "ch0", "preempt", ...), rp (keep the return path)."""
    name = spec["name"]
    machine = spec["machine"]
    extra = list(spec.get("extra", []))
    caps = spec["caps"]
    params = spec.get("params", {})
    dest_params = spec.get("dest_params", {})
    writes = spec.get("writes", std_writes())
    postcopy = spec.get("postcopy", False)
    log("%s: live %s migration of %s through recording proxy" % (name, "+".join(caps), machine))
    src, dst, dport = live_pair(ctx, name, machine, extra, caps, params, caps, dest_params,
                                writes)
    proxy = Proxy(dport)
    dirt, events = [], []
    try:
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        t0 = time.time()
        if postcopy:
            r = 0
            while time.time() - t0 < spec.get("precopy_s", 1.0):
                st = src.qmp.cmd("query-migrate")
                if st.get("status") not in ("setup", "active"):
                    raise RuntimeError("%s: source status %s before postcopy: %s" % (
                        name, st.get("status"), st.get("error-desc")))
                w = w_writeq(0x100000 + (r % 4) * PAGE + 0x800, 0x7700 + r)
                apply_write(src.qt, w)
                dirt.append(w)
                r += 1
                time.sleep(0.1)
            src.qmp.cmd("migrate-start-postcopy")
            events.append("migrate-start-postcopy at %.1fs" % (time.time() - t0))
            st = wait_status(dst, ("postcopy-active", "completed"), 30)
            events.append("destination %s" % st.get("status"))
            if st.get("status") == "postcopy-active":
                touched = []
                for a in spec.get("fault_pages", []):
                    t1 = time.time()
                    dst.qt.read(a, 8)
                    touched.append({"addr": "0x%x" % a, "seconds": round(time.time() - t1, 3)})
                events.append("destination read (faults) %s" % touched)
        expect, src_full, dst_full, dst_verdict = _finish_live(src, dst, proxy, writes, dirt,
                                                               events)
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    roles = _roles(proxy.conns)
    events.append("connections in order: %s" % ", ".join(roles))
    if roles.count("main") != 1:
        raise RuntimeError("%s: %d main connections (%s)" % (name, roles.count("main"), roles))
    missing = [c for c in spec.get("channels", []) if c not in roles]
    if missing:
        raise RuntimeError("%s: no %s connection (got %s)" % (name, missing, roles))
    files, chan_files = [name + ".mig"], []
    byrole = dict(zip(roles, proxy.conns))
    main = byrole["main"]
    with open(os.path.join(ctx.out, name + ".mig"), "wb") as f:
        f.write(main.fwd)
    if spec.get("rp"):
        files.append(name + ".rp")
        with open(os.path.join(ctx.out, name + ".rp"), "wb") as f:
            f.write(main.rev)
    for role, conn in zip(roles, proxy.conns):
        if role == "main":
            continue
        fn = "%s.%s.bin" % (name, role)
        with open(os.path.join(ctx.out, fn), "wb") as f:
            f.write(conn.fwd)
        files.append(fn)
        chan_files.append((fn, role, conn))
    sc = Scan(bytes(main.fwd)).run()
    for req in spec.get("require", []):
        req(sc)
    rp = scan_rp(bytes(main.rev)) if spec.get("rp") else None
    for req in spec.get("require_rp", []):
        req(rp)
    load = {"transport": "tcp" if chan_files else "exec", "main": name + ".mig"}
    if chan_files:
        load["channels"] = [fn for fn, _, _ in chan_files]
    fv = verdict(os.path.join(ctx.out, name + ".mig"), machine, extra, caps, dest_params,
                 tmpdir=ctx.tmp, expect_pages=expect,
                 load=dict(load, channels=[os.path.join(ctx.out, fn) for fn, _, _ in chan_files]))
    log("%s: live destination %s %s; replayed files %s %s" % (
        name, dst_verdict["status"], dst_verdict.get("ram_check", ""), fv["status"],
        fv.get("ram_check", "")))
    extra_pub = ctx.public([a.replace(TMP_TOKEN, ctx.tmp) for a in extra])
    cmds = ["(QMP) migrate tcp:127.0.0.1:PROXY"] + \
        (["(QMP) migrate-start-postcopy"] if postcopy else [])
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + cmds,
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0"],
        "config_args": extra_pub, "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": dest_params,
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False,
        "events": events,
        "connection_order": roles,
        "load": load,
        "qemu_verdict": dst_verdict,
        "qemu_verdict_source": "live destination",
        "file_verdict": fv,
        "file_verdict_source": "a fresh destination fed the recorded files (load)",
    }
    write_meta(ctx, name + ".mig", dict(
        common, kind=spec.get("kind", "live-main"), description=spec["description"],
        companions=files[1:], scan=sc.summary(80)))
    if spec.get("rp"):
        write_meta(ctx, name + ".rp", dict(
            slim(common, name + ".mig"), kind="return-path",
            description="Return path (destination -> source) of %s.mig" % name,
            companions=[f for f in files if f != name + ".rp"], messages=rp))
    zero_pages = qemu.qemu_at_least(9, 0)
    for fn, role, conn in chan_files:
        if role == "preempt":
            m = dict(slim(common, name + ".mig"), kind="preempt-channel",
                     description="Postcopy preempt channel of %s.mig: bare RAM records, "
                                 "no header" % name,
                     companions=[f for f in files if f != fn],
                     channel=scan_preempt_channel(bytes(conn.fwd)))
        else:
            m = dict(slim(common, name + ".mig"), kind="multifd-channel",
                     description="multifd channel %d of %s.mig (64-byte init + packets)" % (
                         conn.fwd[24], name),
                     companions=[f for f in files if f != fn],
                     channel=scan_multifd_channel(bytes(conn.fwd), zero_pages=zero_pages))
        m["reverse_bytes"] = len(conn.rev)
        write_meta(ctx, fn, m)
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    if fv["status"] != "completed":
        log("%s: WARNING: the recorded files did not load: %s" % (name, fv))
    return files


def req_rp(pattern, present=True):
    def check(rp):
        found = any(x.startswith(pattern) for x in rp)
        if found != present:
            raise RuntimeError("return path %s %s: %s" % (
                "lacks" if present else "has", pattern, rp))
    return check


# ---------------------------------------------------------------------------
# mapped-ram: migrate to a file: URI with the mapped-ram capability
# ---------------------------------------------------------------------------

def make_mapped_ram(ctx, spec):
    name = spec["name"]
    machine = spec["machine"]
    extra = spec.get("extra", [])
    caps = spec["caps"]
    params = spec.get("params", {})
    writes = spec["writes"]
    fname = name + ".mig"
    tmpfile = os.path.join(ctx.tmp, fname)
    args = machine_args(machine, [a.replace(TMP_TOKEN, ctx.tmp) for a in extra]) + ["-S"]
    make_aux_files(ctx.tmp, aux_of(extra))
    log("%s: source %s caps=%s, migrate file:" % (name, machine, caps))
    with Vm("src-" + name, args, ctx.tmp).start() as vm:
        for w in writes:
            apply_write(vm.qt, w)
        set_caps(vm, caps)
        set_params(vm, params)
        vm.qmp.cmd("migrate", uri="file:" + tmpfile)
        r = wait_status(vm, ("completed",), 120)
        if r.get("status") != "completed":
            raise RuntimeError("%s: source migration %s: %s" % (
                name, r.get("status"), r.get("error-desc", vm.stderr_text())))
        src_info = {k: r.get(k) for k in ("ram",) if k in r}
        full_args = vm.full_args()
    st = os.stat(tmpfile)
    shutil.copyfile(tmpfile, os.path.join(ctx.out, fname))
    expect = model_of(writes).expected()
    load = {"transport": "file"}
    v = verdict(os.path.join(ctx.out, fname), machine, extra, caps, params,
                expect_pages=expect, tmpdir=ctx.tmp, load=load)
    log("%s: verdict %s %s" % (name, v["status"], v.get("ram_check", "")))
    sc = Scan(open(os.path.join(ctx.out, fname), "rb").read()).run()
    if not all("mapped_ram" in b for b in sc.blocks) or not sc.blocks:
        raise RuntimeError("%s: MEM_SIZE without mapped-ram headers: %s" % (name, sc.blocks))
    write_meta(ctx, fname, {
        "kind": "mapped-ram",
        "description": spec["description"],
        "machine": machine,
        "qemu_args": ctx.public(full_args) + ["(QMP) migrate file:FILE"],
        "config_args": ctx.public(extra),
        "dest_args": ctx.public(machine_args(machine, extra) + ["-S", "-incoming", "defer"]) +
        ["(QMP) migrate-incoming file:FILE"],
        "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": params,
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": [],
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "source_stats": src_info,
        "deterministic": spec.get("deterministic", True),
        "sparse_file": {"apparent_size": st.st_size, "allocated_bytes": st.st_blocks * 512},
        "load": load,
        "companions": [],
        "scan": sc.summary(),
        "qemu_verdict": v,
    })
    if v["status"] != "completed":
        raise RuntimeError("%s: destination did not complete: %s" % (name, v))
    return [fname]


# ---------------------------------------------------------------------------
# Broken variants: one defect in a real stream, and what QEMU does with it
# ---------------------------------------------------------------------------

def _smallest_base(ctx, pattern, mutate):
    """The smallest file matching `pattern` (a glob in ctx.out) that
    `mutate` applies to."""
    for path in sorted(glob.glob(os.path.join(ctx.out, pattern)), key=os.path.getsize):
        with open(path, "rb") as f:
            try:
                mutate(bytearray(f.read()))
            except RuntimeError:
                continue
        return os.path.basename(path)
    raise RuntimeError("no file %s that the mutation applies to" % pattern)


def make_broken(ctx, spec):
    """spec: base (a file made earlier in ctx.out, or a glob: the smallest
    match the mutation applies to), mutate(bytearray) -> (bytes, [change...]),
    description. A channel file is loaded with the other files of its
    migration."""
    name = spec["name"]
    base = spec["base"]
    if "*" in base:
        base = _smallest_base(ctx, base, spec["mutate"])
    base_path = os.path.join(ctx.out, base)
    with open(base_path, "rb") as f:
        data = bytearray(f.read())
    with open(os.path.join(ctx.out, meta_name(base))) as f:
        bmeta = json.load(f)
    main_meta = bmeta
    if "guest_writes_see" in bmeta:
        with open(os.path.join(ctx.out, bmeta["guest_writes_see"])) as f:
            main_meta = json.load(f)
    new, changes = spec["mutate"](data)
    # .mig, or a channel's suffix: multifd.ch0.bin -> NAME.ch0.bin
    ext = ".mig" if base.endswith(".mig") else base[len(main_meta["file"]) - len(".mig"):]
    fname = name + ext
    with open(os.path.join(ctx.out, fname), "wb") as f:
        f.write(new)
    load = dict(main_meta.get("load") or {"transport": "exec"})
    files = [load.get("main", main_meta["file"])] + list(load.get("channels", []))
    files = [fname if f == base else f for f in files]
    if load.get("transport") == "tcp":
        load = dict(load, main=files[0], channels=files[1:])
    paths = [os.path.join(ctx.out, f) for f in files]
    machine = main_meta["machine"]
    extra = main_meta["config_args"]
    caps = main_meta["dest_capabilities"]
    params = main_meta["dest_parameters"]
    timeout = spec.get("timeout", BROKEN_TIMEOUT_S)
    make_aux_files(ctx.tmp, aux_of(extra))
    runs = []
    for _ in range(spec.get("runs", BROKEN_RUNS)):
        v = verdict(paths[0], machine, extra, caps, params, timeout=timeout, tmpdir=ctx.tmp,
                    load=dict(load, channels=paths[1:]))
        log("%s: QEMU %s: %s %s" % (name, qemu.QEMU_KEY, outcome(v),
                                    v.get("message", "").splitlines()[-1:]))
        runs.append(v)
    outcomes = sorted(set(outcome(r) for r in runs), key=[outcome(r) for r in runs].index)
    v = runs[0]
    compared = {}
    for label, (what, mutate) in spec.get("compare", {}).items():
        other, _ = mutate(bytearray(data))
        path = os.path.join(ctx.tmp, label + ext)
        with open(path, "wb") as f:
            f.write(other)
        cv = verdict(path, machine, extra, caps, params, timeout=timeout, tmpdir=ctx.tmp,
                     load=dict(load, channels=paths[1:]))
        log("%s: QEMU %s on %s (not kept): %s" % (name, qemu.QEMU_KEY, label, outcome(cv)))
        compared[label] = {"description": what, "size": len(other),
                           "sha256": hashlib.sha256(other).hexdigest(),
                           "qemu_outcome": outcome(cv), "qemu_verdict": cv}
    meta = {
        "kind": "broken-" + bmeta["kind"],
        "description": spec["description"],
        "base": base,
        "base_sha256": hashlib.sha256(data).hexdigest(),
        "changes": changes,
        "machine": machine,
        "config_args": extra,
        "dest_args": main_meta.get("dest_args"),
        "aux_files": main_meta.get("aux_files", {}),
        "dest_capabilities": caps,
        "dest_parameters": params,
        "companions": [f for f in files if f != fname],
        "load": load,
        "timeout_s": timeout,
        "qemu_verdict": v,
        "qemu_verdict_source": "a fresh destination fed the files (load); the first of "
                               "%d runs, all in qemu_verdict_runs" % len(runs),
        "qemu_verdict_runs": runs,
        "qemu_outcome": outcomes[0] if len(outcomes) == 1 else
        "varies from run to run: " + " / ".join(outcomes),
    }
    if compared:
        meta["compared_variants"] = compared
    if spec.get("notes"):
        meta["notes"] = spec["notes"]
    write_meta(ctx, fname, meta)
    want = spec.get("expect")
    if want and any(o.split()[0] not in want for o in outcomes):
        log("%s: NOTE: QEMU's verdicts are %s, the spec expected %s" % (name, outcomes, want))
    return [fname]


def _find(data, needle, start=0, what=None):
    at = bytes(data).find(needle, start)
    if at < 0:
        raise RuntimeError("pattern %s not found" % (what or needle.hex()))
    return at


def _be(n, v):
    return v.to_bytes(n, "big")


def _change(at, old, new, what):
    return {"offset": at, "old": bytes(old).hex(), "new": bytes(new).hex(), "what": what}


SWITCHOVER_START = b"\x08\x00\x0b\x00\x00"


def mut_switchover_len1(d):
    """SWITCHOVER_START with length 1 and a one-byte payload (0x00)."""
    at = _find(d, SWITCHOVER_START, what="SWITCHOVER_START")
    new = d[:at] + b"\x08\x00\x0b\x00\x01\x00" + d[at + 5:]
    return new, [_change(at, d[at:at + 5], new[at:at + 6],
                         "SWITCHOVER_START len 0 -> 1, one payload byte 0x00 inserted")]


def mut_cmd12(d):
    at = _find(d, SWITCHOVER_START, what="SWITCHOVER_START")
    new = bytearray(d)
    new[at + 1:at + 3] = b"\x00\x0c"
    return new, [_change(at, d[at:at + 5], new[at:at + 5], "command 11 -> 12, length 0")]


def mut_second_switchover(d):
    at = _find(d, SWITCHOVER_START, what="SWITCHOVER_START")
    new = d[:at] + SWITCHOVER_START + d[at:]
    return new, [_change(at, b"", SWITCHOVER_START, "a second SWITCHOVER_START inserted")]


def mut_cmd11_inserted(d):
    """SWITCHOVER_START (command 11, length 0) inserted before the RAM END
    section, where 10.0 sends it: a command the stream's QEMU does not have."""
    for rec in qs.walk_stream(bytes(d)):
        if rec.kind == "END" and rec.info.get("idstr") == "ram":
            at = rec.start
            new = d[:at] + SWITCHOVER_START + d[at:]
            return new, [_change(at, b"", SWITCHOVER_START,
                                 "command 11 (length 0) inserted before the RAM END section")]
    raise RuntimeError("no RAM END section")


def mut_zero_fill(d):
    """The fill byte (the record's last byte) of the first ZERO record of
    pc.ram: 0 -> 1."""
    for rec in qs.walk_stream(bytes(d)):
        for r in rec.info.get("ram") or []:
            if r.kind == "ZERO" and r.info.get("resolved") == "pc.ram":
                at = r.end - 1
                new = bytearray(d)
                new[at] = 1
                return new, [_change(at, d[at:at + 1], b"\x01",
                                     "fill byte of the ZERO record at %d (pc.ram) 0 -> 1" %
                                     r.start)]
    raise RuntimeError("no ZERO record of pc.ram")


def _packaged(d):
    at = _find(d, b"\x08\x00\x07\x00\x04", what="PACKAGED")
    return at, struct.unpack(">I", d[at + 5:at + 9])[0]


def mut_packaged(delta):
    def mutate(d):
        at, n = _packaged(d)
        new = bytearray(d)
        new[at + 5:at + 9] = _be(4, n + delta)
        return new, [_change(at + 5, d[at + 5:at + 9], new[at + 5:at + 9],
                             "PACKAGED length %d -> %d" % (n, n + delta))]
    mutate.__doc__ = "PACKAGED length %+d" % delta
    return mutate


def _multifd_packets(d):
    """(offset, header fields) of each packet of a multifd channel."""
    i, out = 64, []
    while i + 320 <= len(d):
        magic, ver, flags, alloc, normal, nxt = struct.unpack_from(">IIIIII", d, i)
        out.append((i, {"flags": flags, "pages_alloc": alloc, "normal_pages": normal}))
        i += 320 + 128 * 8 + normal * PAGE  # the offset table has 128 slots whatever alloc says
    return out


def mut_multifd_magic(d):
    at = _multifd_packets(d)[0][0]
    new = bytearray(d)
    new[at:at + 4] = b"\x11\x22\x33\x45"
    return new, [_change(at, d[at:at + 4], new[at:at + 4],
                         "magic of the first packet (after the 64-byte init) 0x11223344 -> "
                         "0x11223345")]


def mut_multifd_normal(d):
    """normal_pages of the first packet that carries pages: pages_alloc + 1."""
    for at, h in _multifd_packets(d):
        if h["normal_pages"] and h["pages_alloc"]:
            new = bytearray(d)
            new[at + 16:at + 20] = _be(4, h["pages_alloc"] + 1)
            return new, [_change(at + 16, d[at + 16:at + 20], new[at + 16:at + 20],
                                 "normal_pages %d -> %d (pages_alloc %d)" % (
                                     h["normal_pages"], h["pages_alloc"] + 1,
                                     h["pages_alloc"]))]
    raise RuntimeError("no multifd packet with pages")


def mut_mapped_ram_version(d):
    sc = Scan(bytes(d)).run()
    blk = sc.blocks[0]
    hdr = blk["mapped_ram"]["bitmap_offset"] - 28
    new = bytearray(d)
    new[hdr:hdr + 4] = _be(4, 2)
    return new, [_change(hdr, d[hdr:hdr + 4], new[hdr:hdr + 4],
                         "mapped-ram header version 1 -> 2 (block %s)" % blk["name"])]


def mut_mapped_ram_version_cut(d):
    """mut_mapped_ram_version, then mut_mapped_ram_cut: the header QEMU
    rejects is read before anything the cut removes."""
    new, changes = mut_mapped_ram_version(d)
    new, more = mut_mapped_ram_cut(new)
    return new, changes + more


def mut_mapped_ram_cut(d):
    """The file ends right after the first block's bitmap: its pages are
    missing."""
    sc = Scan(bytes(d)).run()
    blk = sc.blocks[0]
    pages = (blk["used_length"] + PAGE - 1) // PAGE
    end = blk["mapped_ram"]["bitmap_offset"] + (pages + 63) // 64 * 8
    return bytearray(d[:end]), [{"offset": end, "what": "file cut at %d bytes (of %d), right "
                                 "after the bitmap of block %s" % (end, len(d), blk["name"])}]


def mut_cut_half(d):
    end = len(d) // 2
    return bytearray(d[:end]), [{"offset": end, "what": "cut at %d of %d bytes" % (end, len(d))}]
