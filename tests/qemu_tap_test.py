#!/usr/bin/env python3
"""`qmig tap` between two real QEMU processes (7.2, or 10.0 or 11.1 with --qemu): the migration must still
complete (precopy, postcopy, postcopy with the preempt channel), the tap must validate both directions live
with no error, and its recordings must read back as valid with `qmig check`.

Needs qemu-system-x86 (installed by tools/setup); fails loudly without it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from qemu_testing import (QEMU_SELECTOR, QEMU_VERSION, QMIG, ROOT, qmig_check, require_qemu,
                          tool_module)

mc = tool_module("tools/corpus/make_corpus.py")


POSTCOPY_FILL = mc.w_memset(0x800000, 4 << 20, 0x5a)


def migrate_through_tap(name, work, caps, params, postcopy):
    src = mc.Vm("src-" + name, mc.machine_args("pc-i440fx-7.2") + ["-S"], work).start()
    dst = mc.Vm("dst-" + name, mc.machine_args("pc-i440fx-7.2") + ["-incoming", "defer"],
                work).start()
    tap = None
    problems = []
    try:
        # Memory still to send when postcopy starts: a newer QEMU otherwise
        # completes in precopy first.
        for write in mc.std_writes() + ([POSTCOPY_FILL] if postcopy else []):
            mc.apply_write(src.qt, write)
        mc.set_caps(src, caps)
        mc.set_params(src, params)
        dport = mc.dest_listen(dst, caps, {})
        tport = mc.free_port()
        record = os.path.join(work, name)
        tap = subprocess.Popen([QMIG, "tap", "tcp:127.0.0.1:%d" % tport, "tcp:127.0.0.1:%d" % dport,
                                "--record=" + record, "--accept_timeout_s=60", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % tport)
        if postcopy:
            time.sleep(0.5)
            src.qmp.cmd("migrate-start-postcopy")
        rs = mc.wait_status(src, ("completed",), 120)
        rd = mc.wait_status(dst, ("completed",), 60)
        if rs.get("status") != "completed" or rd.get("status") != "completed":
            problems.append("source %s, destination %s" % (rs.get("status"), rd.get("status")))
        src.quit()
        dst.quit()
        out, err = tap.communicate(timeout=60)
        if tap.returncode != 0:
            problems.append("tap exited %d: %s %s" % (tap.returncode, out[-1500:], err[-300:]))
        main = qmig_check(record + ".0.fwd")
        rp = qmig_check(record + ".0.rev", "--kind=return-path")
        if not main["valid"] or not rp["valid"]:
            problems.append("recordings do not check valid")
        if postcopy and main["summary"]["postcopy_state"] != "end":
            problems.append("recorded stream is not a finished postcopy")
        if "postcopy-preempt" in caps and postcopy:
            preempt = qmig_check(record + ".1.fwd", "--kind=preempt")
            if not preempt["valid"] or not preempt["summary"]["eos_seen"]:
                problems.append("the recorded preempt channel does not check valid with its EOS")
    except Exception as e:  # a failed step is a failed case, with what failed
        problems.append("%s: %s" % (type(e).__name__, e))
    finally:
        if tap is not None and tap.poll() is None:
            tap.kill()
        src.kill()
        dst.kill()
    return problems


CASES = [
    ("precopy", [], {}, False),
    ("postcopy", ["postcopy-ram"], {"max-bandwidth": 256 * 1024}, True),
    ("preempt", ["postcopy-ram", "postcopy-preempt"], {"max-bandwidth": 256 * 1024}, True),
    # Postcopy never starts: 10.0 and later open the preempt channel anyway
    # and close it unused, which is no error.
    ("unused-preempt", ["postcopy-ram", "postcopy-preempt"], {}, False),
]


def main():
    if not require_qemu():
        return 1
    mc._qemu.use_qemu(QEMU_SELECTOR)  # source and destination: 7.2, 10.0, 11.1 or a binary
    work = tempfile.mkdtemp(prefix="qmig-tap-", dir="/tmp")
    failures = 0
    try:
        for name, caps, params, postcopy in CASES:
            problems = migrate_through_tap(name, work, caps, params, postcopy)
            print("%-10s %s" % (name, "ok" if not problems else "FAIL " + "; ".join(problems)))
            failures += bool(problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d migrations through qmig tap completed and validated" % (
        len(CASES) - failures, len(CASES)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
