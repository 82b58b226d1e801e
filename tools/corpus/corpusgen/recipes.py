"""How each kind of stream is made, checked and described in its .meta.json."""

import hashlib
import json
import os
import re
import shlex
import shutil
import time

from .guest import (apply_write, check_pages, hexify_writes, model_of, std_writes, w_pattern,
                    w_writeq)
from .proxy import Proxy
from . import qemu
from .qemu import (PAGE, TINY_BIOS_ARGS, TMP_TOKEN, Vm, aux_of, dest_listen, free_port, log,
                   machine_args, make_aux_files, set_caps, set_params, wait_status)
from .scan import Scan, scan_multifd_channel, scan_rp
from .verdict import _failure_message, outcome, verdict

MADE_BY = "tools/corpus/make_corpus.py"


class Ctx:
    def __init__(self, out, tmp, version):
        self.out = out
        self.tmp = tmp
        self.version = version

    def public(self, args):
        """Recorded args: temp dir replaced by $TMP; a chrooted QEMU's wrapper
        by the qemu-system-x86_64 it runs (the meta's qemu_binary says which)."""
        return [qemu.recorded_binary() if a == qemu.QEMU else
                a.replace(self.tmp, TMP_TOKEN) for a in args]


def meta_name(fname):
    base = fname[:-4] if fname.endswith(".mig") else fname
    return base + ".meta.json"


def write_meta(ctx, fname, meta):
    path = os.path.join(ctx.out, fname)
    with open(path, "rb") as f:
        data = f.read()
    m = {"file": fname, "made_by": MADE_BY, "qemu_version": ctx.version}
    if qemu.QEMU_FROM:
        m["qemu_binary"] = qemu.QEMU_FROM
    m.update(meta)
    if qemu.QEMU_FROM and "qemu_verdict" in m and "qemu_outcome" not in m:
        m["qemu_outcome"] = outcome(m["qemu_verdict"])
    m["size"] = len(data)
    m["sha256"] = hashlib.sha256(data).hexdigest()
    with open(os.path.join(ctx.out, meta_name(fname)), "w") as f:
        json.dump(m, f, indent=2, sort_keys=False)
        f.write("\n")
    return m


def slim(meta, main_file):
    """Meta for a companion file: the guest memory description lives only in
    the main stream's meta."""
    m = {k: v for k, v in meta.items()
         if k not in ("guest_writes", "guest_writes_during_migration", "expected_pages")}
    m["guest_writes_see"] = meta_name(main_file)
    return m


# ---------------------------------------------------------------------------
# Stream recipes
# ---------------------------------------------------------------------------

def make_file_stream(ctx, spec):
    """Precopy of a qtest guest to a file via `migrate exec:cat > FILE`."""
    name = spec["name"]
    machine = spec["machine"]
    extra = spec.get("extra", [])
    caps = spec.get("caps", [])
    params = spec.get("params", {})
    dest_params = spec.get("dest_params", {})
    writes = spec.get("writes", std_writes())
    fname = name + ".mig"
    tmpfile = os.path.join(ctx.tmp, fname)
    # a never-started guest (-S) unless the spec wants it "running" (under
    # qtest a running guest executes nothing either)
    args = machine_args(machine, [a.replace(TMP_TOKEN, ctx.tmp) for a in extra]) + \
        ([] if spec.get("running") else ["-S"])
    make_aux_files(ctx.tmp, aux_of(extra))
    log("%s: source %s caps=%s" % (name, machine, caps))
    dirt_log = []
    with Vm("src-" + name, args, ctx.tmp).start() as vm:
        for q in spec.get("qmp_setup", []):
            vm.qmp.cmd(q[0], **q[1])
        for w in writes:
            apply_write(vm.qt, w)
        set_caps(vm, caps)
        set_params(vm, params)
        vm.qmp.cmd("migrate", uri="exec:cat > " + shlex.quote(tmpfile))
        dirtier = spec.get("dirtier")
        if dirtier:
            dirt_log = dirtier(vm)
        r = wait_status(vm, ("completed",), 120)
        if r.get("status") != "completed":
            raise RuntimeError("%s: source migration %s: %s" % (
                name, r.get("status"), r.get("error-desc", vm.stderr_text())))
        src_info = {k: r.get(k) for k in ("ram", "xbzrle-cache", "compression") if k in r}
        full_args = vm.full_args()
    # the exec child may still be flushing
    time.sleep(0.2)
    shutil.copyfile(tmpfile, os.path.join(ctx.out, fname))
    all_writes = writes + dirt_log
    expect = model_of(all_writes).expected()
    exp_check = [p for p in expect if p["addr"] not in spec.get("not_in_stream", [])]
    dest_caps = spec.get("dest_caps", caps)
    v = verdict(os.path.join(ctx.out, fname), machine, extra, dest_caps, dest_params,
                expect_pages=exp_check, tmpdir=ctx.tmp)
    log("%s: verdict %s %s" % (name, v["status"], v.get("ram_check", "")))
    sc = Scan(open(os.path.join(ctx.out, fname), "rb").read(),
              footers=spec.get("footers")).run()
    for req in spec.get("require", []):
        try:
            req(sc)
        except RuntimeError:
            log("%s: walk: %s" % (name, sc.items))
            raise
    meta = {
        "kind": spec.get("kind", "precopy"),
        "description": spec["description"],
        "machine": machine,
        "qemu_args": ctx.public(full_args) + ["(QMP) migrate exec:cat > FILE"],
        "config_args": ctx.public(extra),
        "dest_args": ctx.public(machine_args(machine, extra) + ["-S", "-incoming", "defer"]),
        "aux_files": aux_of(extra),
        "capabilities": caps,
        "dest_capabilities": dest_caps,
        "parameters": params,
        "dest_parameters": dest_params,
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt_log),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": p in exp_check} for p in expect],
        "qmp_setup": spec.get("qmp_setup", []),
        "source_stats": src_info,
        "deterministic": spec.get("deterministic", True),
        "companions": [],
        "scan": sc.summary(),
        "qemu_verdict": v,
    }
    if spec.get("notes"):
        meta["notes"] = spec["notes"]
    write_meta(ctx, fname, meta)
    if v["status"] != "completed" and spec.get("expect_verdict", "completed") == "completed":
        raise RuntimeError("%s: destination did not complete: %s" % (name, v))
    return [fname]


def req_ram(kind, minimum=1):
    def check(sc):
        if sc.ram.get(kind, 0) < minimum:
            raise RuntimeError("stream has %d %s records (want >= %d)" % (
                sc.ram.get(kind, 0), kind, minimum))
    return check


def req_item(pattern):
    def check(sc):
        if not any(re.search(pattern, x) for x in sc.items):
            raise RuntimeError("stream walk lacks %r" % pattern)
    return check


def req_config(sub):
    def check(sc):
        if sub not in sc.config_subsections:
            raise RuntimeError("configuration lacks subsection %s" % sub)
    return check


def req_described_twice(name, instance_id):
    """The VMDESCRIPTION lists the device instance (name, instance_id) more
    than once, as QEMU writes it for devices registered with a fixed
    instance id on a bus without device paths."""
    def check(sc):
        trailer = sc.vmdesc_trailer()
        if trailer is None:
            raise RuntimeError("stream has no VMDESCRIPTION")
        start = trailer["offset"] + 5
        desc = json.loads(sc.d[start:start + trailer["json_len"]])
        n = sum(1 for d in desc["devices"]
                if d["name"] == name and d["instance_id"] == instance_id)
        if n < 2:
            raise RuntimeError("VMDESCRIPTION lists %s #%d %d time(s), want >= 2" % (
                name, instance_id, n))
    return check


def rewrite_dirtier(base, npages, rounds, period):
    """Dirtier for a source with pause-before-switchover: while the migration
    is active, rewrite one qword in each of `npages` pages every `period`
    seconds (at most `rounds` times), then once more while it waits in
    pre-switchover (the completion pass syncs the dirty bitmap after that
    pause, so every write is in the stream; no race with convergence)."""
    def one_round(vm, r, done):
        for p in range(npages):
            w = w_writeq(base + p * PAGE + (r % 64) * 64, 0x1000000 * (r + 1) + p)
            apply_write(vm.qt, w)
            done.append(w)

    def run(vm):
        done = []
        r = 0
        deadline = time.time() + 60
        while time.time() < deadline:
            st = vm.qmp.cmd("query-migrate").get("status")
            if st == "active" and r < rounds:
                one_round(vm, r, done)
                r += 1
                if r == rounds:   # allow convergence from now on
                    vm.qmp.cmd("migrate-set-parameters", **{"downtime-limit": 300})
            elif st == "pre-switchover":
                one_round(vm, r, done)
                vm.qmp.cmd("migrate-continue", state="pre-switchover")
                break
            elif st not in ("active", "setup"):
                raise RuntimeError("migration %s while dirtying" % st)
            time.sleep(period)
        return done
    return run


# -- live migrations through a recording proxy -------------------------------


def live_pair(ctx, name, machine, extra, src_caps, src_params, dest_caps, dest_params,
              writes):
    make_aux_files(ctx.tmp, aux_of(extra))
    extra = [a.replace(TMP_TOKEN, ctx.tmp) for a in extra]
    src_args = machine_args(machine, extra) + ["-S"]
    # the live destination runs (no -S) so that postcopy RUN starts it
    dst_args = machine_args(machine, extra) + ["-incoming", "defer"]
    src = Vm("src-" + name, src_args, ctx.tmp).start()
    dst = Vm("dst-" + name, dst_args, ctx.tmp).start()
    for w in writes:
        apply_write(src.qt, w)
    set_caps(src, src_caps)
    set_params(src, src_params)
    port = dest_listen(dst, dest_caps, dest_params)
    return src, dst, port


def postcopy_writes():
    ws = std_writes()
    # 32 distinct pages at 8 MiB: precopy is throttled, so many of them are
    # still unsent when postcopy starts and are pushed or requested later
    for n in range(32):
        ws.append(w_pattern(0x800000 + n * PAGE, "postcopy", n))
    return ws


def _finish_live(src, dst, proxy, writes, dirt, events):
    """Waits for both sides of a live migration to complete, checks the
    destination's pages, and shuts everything down. Returns the expected
    pages, both command lines and the destination's verdict."""
    rs = wait_status(src, ("completed",), 90)
    rd = wait_status(dst, ("completed",), 30)
    events.append("source %s, destination %s" % (rs.get("status"), rd.get("status")))
    expect = model_of(writes + dirt).expected()
    ram_check = check_pages(dst, expect) if rd.get("status") == "completed" else None
    src_full, dst_full = src.full_args(), dst.full_args()
    src.quit()
    dst.quit()
    proxy.close()
    dst_verdict = {"status": rd.get("status"), "exit_code": dst.exit_code,
                   "message": _failure_message(dst.stderr_text()) or rd.get("error-desc", "")}
    if ram_check:
        dst_verdict["ram_check"] = ram_check
    return expect, src_full, dst_full, dst_verdict


def make_postcopy(ctx, spec):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    extra = list(TINY_BIOS_ARGS)
    caps = ["postcopy-ram"]
    params = {"max-bandwidth": 64 * 1024, "max-postcopy-bandwidth": 64 * 1024,
              "downtime-limit": 1}
    writes = postcopy_writes()
    recover = spec.get("recover", False)
    log("%s: live postcopy %s through recording proxy" % (name, machine))
    src, dst, dport = live_pair(ctx, name, machine, extra, caps, params, caps, {}, writes)
    proxy = Proxy(dport)
    dirt = []
    events = []
    try:
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        # keep dirtying already-sent low pages so precopy has real iterations
        t0 = time.time()
        r = 0
        while time.time() - t0 < 1.0:
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
        # wait for the destination to run in postcopy, then touch pages that
        # have not arrived yet: the destination faults and sends REQ_PAGES
        st = wait_status(dst, ("postcopy-active", "completed"), 30)
        events.append("destination %s" % st.get("status"))
        touched = []
        if st.get("status") == "postcopy-active":
            for n in (31, 24, 17):
                a = 0x800000 + n * PAGE
                t1 = time.time()
                dst.qt.read(a, 8)
                touched.append({"addr": "0x%x" % a, "seconds": round(time.time() - t1, 3)})
            events.append("destination read (faults) %s" % touched)
        if recover:
            return _postcopy_recover(ctx, spec, src, dst, proxy, caps, params, writes, dirt,
                                     events, t0)
        expect, src_full, dst_full, dst_verdict = _finish_live(src, dst, proxy, writes, dirt,
                                                               events)
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    conn = proxy.conns[0]
    open(os.path.join(ctx.out, name + ".mig"), "wb").write(conn.fwd)
    open(os.path.join(ctx.out, name + ".rp"), "wb").write(conn.rev)
    sc = Scan(bytes(conn.fwd)).run()
    rp = scan_rp(bytes(conn.rev))
    seq = " ".join(sc.items)
    missing = [k for k in ("PACKAGED", "LISTEN", "RUN", "RAM_DISCARD") if k not in seq]
    if missing:
        raise RuntimeError("%s: stream lacks %s" % (name, missing))
    if not any(x.startswith("PONG") for x in rp):
        raise RuntimeError("%s: return path has no PONG" % name)
    if not any(x.startswith("REQ_PAGES") for x in rp):
        log("%s: WARNING: no REQ_PAGES on the return path this time" % name)
    # file verdict too: the whole postcopy stream fed through exec:cat
    fv = verdict(os.path.join(ctx.out, name + ".mig"), machine, extra, caps, {},
                 tmpdir=ctx.tmp, expect_pages=expect)
    log("%s: live destination %s %s; file verdict %s" % (
        name, dst_verdict["status"], dst_verdict.get("ram_check", ""), fv["status"]))
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:127.0.0.1:PROXY",
                                             "(QMP) migrate-start-postcopy"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0"],
        "config_args": extra, "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": {},
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False,
        "events": events,
    }
    m = dict(common, kind="postcopy-main", description=spec["description"],
             companions=[name + ".rp"], scan=sc.summary(80), qemu_verdict=dst_verdict,
             qemu_verdict_source="live destination",
             file_verdict=fv)
    write_meta(ctx, name + ".mig", m)
    r = dict(slim(common, name + ".mig"), kind="return-path",
             description="Return path (destination -> source) of %s.mig" % name,
             companions=[name + ".mig"], messages=rp, qemu_verdict=dst_verdict,
             qemu_verdict_source="live destination (the stream pair as a whole)")
    write_meta(ctx, name + ".rp", r)
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return [name + ".mig", name + ".rp"]


def _postcopy_recover(ctx, spec, src, dst, proxy, caps, params, writes, dirt, events, t0):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    try:
        time.sleep(0.5)
        proxy.cut()
        events.append("proxy cut both sockets at %.1fs" % (time.time() - t0))
        rs = wait_status(src, ("postcopy-paused",), 30)
        rd = wait_status(dst, ("postcopy-paused",), 30)
        events.append("after cut: source %s, destination %s" % (rs.get("status"), rd.get("status")))
        if rs.get("status") != "postcopy-paused" or rd.get("status") != "postcopy-paused":
            raise RuntimeError("%s: not paused: %s / %s" % (name, rs.get("status"), rd.get("status")))
        rport = free_port()
        dst.qmp.cmd("migrate-recover", uri="tcp:127.0.0.1:%d" % rport)
        proxy.target = rport
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port, resume=True)
        events.append("migrate-recover / migrate resume=true")
        expect, src_full, dst_full, dst_verdict = _finish_live(src, dst, proxy, writes, dirt,
                                                               events)
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    if len(proxy.conns) < 2:
        raise RuntimeError("%s: no resumed connection recorded" % name)
    files = []
    first, second = proxy.conns[0], proxy.conns[-1]
    parts = [(name + ".mig", first.fwd, "postcopy-main (cut)"),
             (name + ".rp", first.rev, "return-path"),
             (name + ".resume.mig", second.fwd, "postcopy-resume-main"),
             (name + ".resume.rp", second.rev, "return-path")]
    for fn, data, _ in parts:
        open(os.path.join(ctx.out, fn), "wb").write(data)
        files.append(fn)
    sc1 = Scan(bytes(first.fwd)).run()
    sc2 = Scan(bytes(second.fwd), headerless=True, sections=sc1.sections).run()
    if not any("RECV_BITMAP" in x for x in sc2.items):
        raise RuntimeError("%s: resumed stream lacks RECV_BITMAP" % name)
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:PROXY", "(QMP) migrate-start-postcopy",
                                             "(proxy cuts)", "(QMP) migrate tcp:PROXY resume=true"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0",
                                             "(QMP) migrate-recover tcp:127.0.0.1:PORT"],
        "config_args": list(TINY_BIOS_ARGS), "aux_files": aux_of(TINY_BIOS_ARGS),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": {},
        "guest_writes": hexify_writes(writes),
        "guest_writes_during_migration": hexify_writes(dirt),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False, "events": events,
        "companions": files, "qemu_verdict": dst_verdict,
        "qemu_verdict_source": "live destination (whole recovered migration)",
    }
    descs = {
        name + ".mig": ("postcopy-main", "First connection of a postcopy migration, cut by the "
                        "proxy during postcopy (ends abruptly, no EOF)", sc1.summary(80)),
        name + ".rp": ("return-path", "Return path of the first (cut) connection", None),
        name + ".resume.mig": ("postcopy-resume", "Second connection after migrate-recover / "
                               "resume=true: no header, starts with RECV_BITMAP commands",
                               sc2.summary(80)),
        name + ".resume.rp": ("return-path", "Return path of the resumed connection "
                              "(RECV_BITMAP replies with bitmaps, RESUME_ACK, ...)", None),
    }
    for fn in files:
        kind, desc, summ = descs[fn]
        m = dict(common if fn == name + ".mig" else slim(common, name + ".mig"),
                 kind=kind, description=desc)
        if summ:
            m["scan"] = summ
        else:
            m["messages"] = scan_rp(open(os.path.join(ctx.out, fn), "rb").read())
        write_meta(ctx, fn, m)
    log("%s: live destination %s %s" % (name, dst_verdict["status"],
                                         dst_verdict.get("ram_check", "")))
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return files


def make_multifd(ctx, spec):
    name = spec["name"]
    machine = spec.get("machine", "pc-i440fx-7.2")
    caps = ["multifd"]
    params = {"multifd-channels": 2}
    writes = std_writes() + [w_pattern(0x800000 + n * PAGE, "multifd", n)
                             for n in range(16)]
    log("%s: live multifd migration through recording proxy" % name)
    extra = list(TINY_BIOS_ARGS)
    src, dst, dport = live_pair(ctx, name, machine, extra, caps, params, caps, params, writes)
    proxy = Proxy(dport)
    try:
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        rs = wait_status(src, ("completed",), 60)
        rd = wait_status(dst, ("completed",), 30)
        expect = model_of(writes).expected()
        ram_check = check_pages(dst, expect) if rd.get("status") == "completed" else None
        src_full, dst_full = src.full_args(), dst.full_args()
        src.quit()
        dst.quit()
        proxy.close()
        dst_verdict = {"status": rd.get("status"), "exit_code": dst.exit_code,
                       "message": _failure_message(dst.stderr_text()) or rd.get("error-desc", "")}
        if ram_check:
            dst_verdict["ram_check"] = ram_check
        log("%s: source %s, destination %s %s" % (name, rs.get("status"), rd.get("status"),
                                                 ram_check or ""))
    finally:
        src.kill()
        dst.kill()
        proxy.close(1)
    main, chans = None, []
    for conn in proxy.conns:
        if conn.fwd[:4] == b"QEVM":
            main = conn
        elif conn.fwd[:4] == b"\x11\x22\x33\x44":
            chans.append(conn)
    if main is None or len(chans) != 2:
        raise RuntimeError("%s: expected 1 main + 2 multifd connections, got %d" % (
            name, len(proxy.conns)))
    files = [name + ".mig"]
    open(os.path.join(ctx.out, name + ".mig"), "wb").write(main.fwd)
    chinfo = []
    for conn in chans:
        cid = conn.fwd[24]
        fn = "%s.ch%d.bin" % (name, cid)
        open(os.path.join(ctx.out, fn), "wb").write(conn.fwd)
        files.append(fn)
        chinfo.append((fn, conn))
    order = ["main" if c is main else "ch%d" % c.fwd[24] for c in proxy.conns]
    common = {
        "machine": machine,
        "qemu_args": ctx.public(src_full) + ["(QMP) migrate tcp:127.0.0.1:PROXY"],
        "dest_args": ctx.public(dst_full) + ["(QMP) migrate-incoming tcp:127.0.0.1:0"],
        "config_args": extra, "aux_files": aux_of(extra),
        "capabilities": caps, "dest_capabilities": caps,
        "parameters": params, "dest_parameters": params,
        "guest_writes": hexify_writes(writes),
        "expected_pages": [{"addr": "0x%x" % p["addr"], "sha256": p["sha256"],
                            "in_stream": True} for p in expect],
        "deterministic": False, "connection_order": order,
        "qemu_verdict": dst_verdict, "qemu_verdict_source": "live destination",
    }
    sc = Scan(bytes(main.fwd)).run()
    write_meta(ctx, name + ".mig", dict(
        common, kind="multifd-main",
        description="Main channel of a 2-channel multifd migration (zero pages, EOS, devices)",
        companions=files[1:], scan=sc.summary(),
        reverse_bytes=len(main.rev)))
    for fn, conn in chinfo:
        write_meta(ctx, fn, dict(
            slim(common, name + ".mig"), kind="multifd-channel",
            description="multifd channel %d of %s.mig (64-byte init + packets)" % (
                conn.fwd[24], name),
            companions=[f for f in files if f != fn], channel=scan_multifd_channel(bytes(conn.fwd)),
            reverse_bytes=len(conn.rev)))
    if dst_verdict["status"] != "completed":
        raise RuntimeError("%s: destination %s" % (name, dst_verdict))
    return files
