#!/usr/bin/env python3
"""A real QEMU 7.2 source migrates into `qmig listen` over loopback TCP.

Precopy (with and without the return path) and postcopy (migrate-start-postcopy
while precopy runs, guest threads faulting on qmig's side): the source must
reach `completed`, qmig must find no error, and the memory qmig received must
equal the source's, page for page (`pmemsave` on the paused source).

Needs qemu-system-x86 (installed by tools/setup); fails loudly without it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from qemu_testing import QMIG, ROOT, require_qemu

sys.path.insert(0, os.path.join(ROOT, "tools", "corpus"))
import make_corpus as mc  # noqa: E402

RAM = 16 << 20


def migrate(name, work, caps, params, postcopy, guest):
    port = mc.free_port()
    dump = os.path.join(work, name + ".qmig.ram")
    qmig = subprocess.Popen(
        [QMIG, "listen", "tcp:127.0.0.1:%d" % port, "--dump_memory=" + dump, "--guest=" + guest,
         "--accept_timeout_s=60", "--stall_timeout_s=30", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    src = mc.Vm("src-" + name, mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    try:
        for write in mc.std_writes():
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
    if not os.path.exists(dump):
        problems.append("qmig wrote no memory dump")
    elif source_state == "completed":
        a, b = open(memory, "rb").read(), open(dump, "rb").read()
        # 0xa0000-0xfffff shows VGA/ROM aliases in the guest's address
        # space, not pc.ram, so pmemsave cannot stand for the block there.
        differing = [i for i in range(0, RAM, 4096)
                     if not 0xa0000 <= i < 0x100000 and a[i:i + 4096] != b[i:i + 4096]]
        if differing:
            problems.append("%d pages differ from the source's, first at 0x%x" % (
                len(differing), differing[0]))
    return problems


CASES = [
    ("precopy", [], {}, False, "none"),
    ("precopy-return-path", ["return-path"], {}, False, "none"),
    ("postcopy", ["postcopy-ram"], {"max-bandwidth": 256 * 1024}, True,
     "random,threads=2,touches=2000,block=pc.ram"),
    ("multifd", ["multifd"], {"multifd-channels": 2}, False, "none"),
]


def source_killed_mid_postcopy(work):
    """The source dies during postcopy: qmig must say so and exit in bounded
    time, releasing any guest thread that waits for a page."""
    port = mc.free_port()
    qmig = subprocess.Popen(
        [QMIG, "listen", "tcp:127.0.0.1:%d" % port, "--json", "--accept_timeout_s=60",
         "--stall_timeout_s=20", "--guest=sequential,threads=2,touches=4096,block=pc.ram"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    src = mc.Vm("src-killed", mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    try:
        for write in mc.std_writes():
            mc.apply_write(src.qt, write)
        mc.set_caps(src, ["postcopy-ram"])
        mc.set_params(src, {"max-bandwidth": 64 * 1024, "max-postcopy-bandwidth": 64 * 1024})
        time.sleep(0.2)
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        time.sleep(0.5)
        src.qmp.cmd("migrate-start-postcopy")
        time.sleep(0.3)
    finally:
        src.kill()
    start = time.time()
    try:
        out, _ = qmig.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        qmig.kill()
        return ["qmig did not exit within 90 s of the source dying"]
    problems = []
    report = json.loads(out)
    codes = {f["code"] for f in report["findings"] if f["severity"] == "error"}
    if qmig.returncode != 1:
        problems.append("qmig exited %d" % qmig.returncode)
    if not codes & {"stream.truncated", "input.io_error"}:
        problems.append("no truncation reported: %s" % sorted(codes))
    print("  source killed: qmig exited %d after %.1f s with %s" % (
        qmig.returncode, time.time() - start, sorted(codes)))
    return problems


def main():
    if not require_qemu():
        return 1
    work = tempfile.mkdtemp(prefix="qmig-listen-", dir="/tmp")
    failures = 0
    try:
        for name, caps, params, postcopy, guest in CASES:
            problems = migrate(name, work, caps, params, postcopy, guest)
            print("%-22s %s" % (name, "ok" if not problems else "FAIL " + "; ".join(problems)))
            failures += bool(problems)
        problems = source_killed_mid_postcopy(work)
        print("%-22s %s" % ("source-killed", "ok" if not problems else "FAIL " + "; ".join(problems)))
        failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d cases passed (migrations into qmig with identical memory, and a source "
          "killed mid-postcopy)" % (len(CASES) + 1 - failures, len(CASES) + 1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
