#!/usr/bin/env python3
"""A real QEMU source (7.2, or 10.0 or 11.1 with --qemu) migrates into `qmig listen`
over loopback TCP.

Precopy (with and without the return path), multifd, and postcopy with and
without the preempt channel (migrate-start-postcopy while precopy runs; guest
threads on qmig's side fault and every page they ask for must come, on the
preempt channel when there is one): the source must
reach `completed`, qmig must find no error, and the memory qmig received must
equal the source's, page for page (`pmemsave` on the paused source). After
each, qmig reports that it holds no more descriptors or threads than before.
The source killed, cut off or stalled mid-postcopy: qmig says so and exits in
bounded time.

Needs qemu-system-x86 (installed by tools/setup); fails loudly without it.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from qemu_testing import QEMU_SELECTOR, QEMU_VERSION, QMIG, ROOT, require_qemu, tool_module

mc = tool_module("tools/corpus/make_corpus.py")

RAM = 16 << 20


# Non-zero guest memory that precopy has not sent yet when postcopy starts
# (bandwidth is capped), so qmig's guest threads fault and request pages.
POSTCOPY_FILL = mc.w_memset(0x800000, 4 << 20, 0x5a)
POSTCOPY_PARAMS = {"max-bandwidth": 256 * 1024, "max-postcopy-bandwidth": 2 << 20}


def compare_memory(source_ram, qmig_ram):
    """The source's pmemsave against qmig's pc.ram, page for page."""
    a, b = open(source_ram, "rb").read(), open(qmig_ram, "rb").read()
    # 0xa0000-0xfffff shows VGA/ROM aliases in the guest's address space,
    # not pc.ram, so pmemsave cannot stand for the block there.
    differing = [i for i in range(0, RAM, 4096)
                 if not 0xa0000 <= i < 0x100000 and a[i:i + 4096] != b[i:i + 4096]]
    if differing:
        return ["%d pages differ from the source's, first at 0x%x" % (len(differing), differing[0])]
    return []


def migrate(name, work, caps, params, postcopy, guest):
    port = mc.free_port()
    dump = os.path.join(work, name + ".qmig.ram")
    qmig = subprocess.Popen(
        [QMIG, "listen", "tcp:127.0.0.1:%d" % port, "--dump_memory=" + dump, "--guest=" + guest,
         "--accept_timeout_s=60", "--stall_timeout_s=30", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    src = mc.Vm("src-" + name, mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    try:
        for write in mc.std_writes() + ([POSTCOPY_FILL] if postcopy else []):
            mc.apply_write(src.qt, write)
        mc.set_caps(src, caps)
        mc.set_params(src, params)
        time.sleep(0.2)  # qmig is listening once it printed; the port is bound before
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        if postcopy:
            time.sleep(0.5)
            src.qmp.cmd("migrate-start-postcopy")
        status = mc.wait_status(src, ("completed",), 120)
        source_state = status.get("status")
        memory = os.path.join(work, name + ".source.ram")
        src.qmp.cmd("pmemsave", val=0, size=RAM, filename=memory)
        time.sleep(0.2)
    finally:
        src.kill()
    try:
        out, err = qmig.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        qmig.kill()
        return ["qmig did not finish within 60 s of the source"]
    problems = []
    if source_state != "completed":
        problems.append("source ended %s: %s" % (source_state, status.get("error-desc", "")))
    if qmig.returncode != 0:
        problems.append("qmig exited %d: %s %s" % (qmig.returncode, out[-1500:], err[-500:]))
    else:
        report = json.loads(out)
        problems += leaks(report)
        emulator = report["emulator"]
        print("  %s: %s, channels %s" % (name, {k: emulator[k] for k in
                                   ("precopy_pages", "postcopy_pages", "page_requests",
                                    "requests_served")}, report["channels"]))
        if postcopy and not 0 < emulator["page_requests"] == emulator["requests_served"]:
            problems.append("guest threads should fault and every request be answered: %s"
                            % emulator)
        if "postcopy-preempt" in caps:
            preempt = [c for c in report["channels"] if c["name"] == "preempt channel"]
            if not preempt or preempt[0]["pages"] == 0:
                problems.append("no page came on the preempt channel: %s" % report["channels"])
    if not os.path.exists(dump):
        problems.append("qmig wrote no memory dump")
    elif source_state == "completed":
        problems += compare_memory(memory, dump)
    return problems


def leaks(report):
    """What a finished `qmig listen --json` says it still holds."""
    r = report["resources"]
    problems = []
    if r["leaked"] or r["descriptors"][0] != r["descriptors"][1] or r["threads"][0] != r["threads"][1]:
        problems.append("left behind: %s" % r)
    # Threads' malloc arenas may stay mapped; the guest's RAM may not.
    if r["mappings"][1] > r["mappings"][0] + 32:
        problems.append("mappings grew from %d to %d" % tuple(r["mappings"]))
    return problems


CASES = [
    ("precopy", [], {}, False, "none"),
    ("precopy-return-path", ["return-path"], {}, False, "none"),
    ("postcopy", ["postcopy-ram"], POSTCOPY_PARAMS, True,
     "random,threads=2,touches=3000,block=pc.ram"),
    ("multifd", ["multifd"], {"multifd-channels": 2}, False, "none"),
    ("postcopy-preempt", ["postcopy-ram", "postcopy-preempt"], POSTCOPY_PARAMS, True,
     "random,threads=2,touches=3000,block=pc.ram"),
]


def fault_mid_postcopy(work, fault):
    """The source fails during postcopy, with qmig's guest threads waiting for
    pages: `killed` (the process dies), `cut` (the connection breaks, through
    a proxy) or `stalled` (the process is stopped and sends nothing). qmig
    must say what happened and exit in bounded time, releasing every guest
    thread and leaving no descriptor or thread behind."""
    stall_s = 3
    port = mc.free_port()
    qmig = subprocess.Popen(
        [QMIG, "listen", "tcp:127.0.0.1:%d" % port, "--json", "--accept_timeout_s=60",
         "--stall_timeout_s=%d" % stall_s,
         "--guest=sequential,threads=2,touches=4096,block=pc.ram"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proxy = mc.Proxy(port) if fault == "cut" else None
    src = mc.Vm("src-" + fault, mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    try:
        # Memory still to send when the fault comes: without it a newer QEMU
        # ends postcopy before the fault.
        for write in mc.std_writes() + [POSTCOPY_FILL]:
            mc.apply_write(src.qt, write)
        mc.set_caps(src, ["postcopy-ram"])
        mc.set_params(src, {"max-bandwidth": 64 * 1024, "max-postcopy-bandwidth": 64 * 1024})
        time.sleep(0.2)
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % (proxy.port if proxy else port))
        time.sleep(0.5)
        src.qmp.cmd("migrate-start-postcopy")
        time.sleep(0.3)
        start = time.time()
        if fault == "cut":
            proxy.cut()
        elif fault == "stalled":
            os.kill(src.proc.pid, signal.SIGSTOP)
        else:
            src.kill()
        try:
            out, _ = qmig.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            qmig.kill()
            return ["qmig did not exit within 90 s of the source failing"]
        took = time.time() - start
    finally:
        src.kill()  # SIGKILL ends a stopped process too
        if proxy:
            proxy.close()
    problems = []
    report = json.loads(out)
    codes = {f["code"] for f in report["findings"] if f["severity"] == "error"}
    messages = " ".join(f["message"] for f in report["findings"])
    if qmig.returncode != 1:
        problems.append("qmig exited %d" % qmig.returncode)
    if not codes & {"stream.truncated", "input.io_error"}:
        problems.append("no truncation or read error reported: %s" % sorted(codes))
    problems += leaks(report)
    if fault == "stalled" and "stopped sending" not in messages:
        problems.append("the stall is not named: %s" % messages[:300])
    if fault == "stalled" and not stall_s - 0.5 <= took <= stall_s + 10:
        problems.append("qmig took %.1f s to give up on a %d s stall" % (took, stall_s))
    print("  source %s: qmig exited %d after %.1f s with %s; resources %s" % (
        fault, qmig.returncode, took, sorted(codes), report["resources"]))
    return problems


FAULTS = ["killed", "cut", "stalled"]


def postcopy_recovery(work):
    """The connection is cut while postcopy runs and qmig's guest threads wait
    for pages; the source pauses, then resumes on a new connection
    (`migrate ... resume=true`, qmig listening with --recover_timeout_s). qmig
    answers RECV_BITMAP and POSTCOPY_RESUME, asks again for what its guests
    wait for, and ends with the source's memory."""
    port = mc.free_port()
    dump = os.path.join(work, "recovery.qmig.ram")
    qmig = subprocess.Popen(
        [QMIG, "listen", "tcp:127.0.0.1:%d" % port, "--json", "--accept_timeout_s=60",
         "--stall_timeout_s=30", "--recover_timeout_s=30", "--dump_memory=" + dump,
         "--guest=random,threads=2,touches=3000,block=pc.ram"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proxy = mc.Proxy(port)
    src = mc.Vm("src-recovery", mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    problems = []
    try:
        for write in mc.std_writes() + [POSTCOPY_FILL]:
            mc.apply_write(src.qt, write)
        mc.set_caps(src, ["postcopy-ram"])
        mc.set_params(src, {"max-bandwidth": 256 * 1024, "max-postcopy-bandwidth": 512 * 1024})
        time.sleep(0.2)
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % proxy.port)
        time.sleep(0.5)
        src.qmp.cmd("migrate-start-postcopy")
        time.sleep(1.0)
        proxy.cut()
        paused = mc.wait_status(src, ("postcopy-paused",), 30)
        if paused.get("status") != "postcopy-paused":
            problems.append("the source did not pause: %s" % paused.get("status"))
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port, resume=True)
        status = mc.wait_status(src, ("completed",), 120)
        if status.get("status") != "completed":
            problems.append("resumed source ended %s" % status.get("status"))
        memory = os.path.join(work, "recovery.source.ram")
        src.qmp.cmd("pmemsave", val=0, size=RAM, filename=memory)
        time.sleep(0.2)
    finally:
        src.kill()
        proxy.close()
    try:
        out, err = qmig.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        qmig.kill()
        return problems + ["qmig did not finish"]
    if qmig.returncode != 0:
        findings = [(f["severity"], f["code"], f["path"], f["message"][:160]) for f in json.loads(out)["findings"] if f["severity"] != "warning"] if out.startswith("{") else out[-1500:]
        return problems + ["qmig exited %d: %s %s" % (qmig.returncode, findings, err[-500:])]
    report = json.loads(out)
    problems += leaks(report)
    emulator = report["emulator"]
    print("  recovery: %s" % {k: emulator[k] for k in ("recoveries", "page_requests",
                                                       "requests_served", "postcopy_pages")})
    if emulator["recoveries"] != 1:
        problems.append("recoveries %d, not 1" % emulator["recoveries"])
    if emulator["page_requests"] == 0 or emulator["page_requests"] != emulator["requests_served"]:
        problems.append("requests not all served: %s" % emulator)
    if not problems:
        problems += compare_memory(memory, dump)
    return problems


def main():
    if not require_qemu():
        return 1
    mc._qemu.use_qemu(QEMU_SELECTOR)  # the source: 7.2, 10.0 or 11.1, or a given binary
    work = tempfile.mkdtemp(prefix="qmig-listen-", dir="/tmp")
    failures = 0
    try:
        for name, caps, params, postcopy, guest in CASES:
            problems = migrate(name, work, caps, params, postcopy, guest)
            print("%-22s %s" % (name, "ok" if not problems else "FAIL " + "; ".join(problems)))
            failures += bool(problems)
        problems = postcopy_recovery(work)
        print("%-22s %s" % ("postcopy-recovery", "ok" if not problems else "FAIL " + "; ".join(problems)))
        failures += bool(problems)
        for fault in FAULTS:
            problems = fault_mid_postcopy(work, fault)
            print("%-22s %s" % ("source-" + fault,
                                "ok" if not problems else "FAIL " + "; ".join(problems)))
            failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = len(CASES) + len(FAULTS) + 1
    print("%d of %d cases passed (migrations into qmig with identical memory; a source killed, "
          "cut off and stalled mid-postcopy; a postcopy recovered after a cut)" % (total - failures, total))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
