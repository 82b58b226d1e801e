#!/usr/bin/env python3
"""Benchmark: total migration time of a real QEMU source (7.2, or 10.0 or 11.1
with --qemu) into `qmig listen` against the same source into a real QEMU
destination of that version, in the same run.

    tools/bench/bench_migration.py [--rounds N] [--mem MiB] [--qmig PATH]

The source guest has --mem MiB (default 256) of non-zero memory and keeps
dirtying it: a thread rewrites a qword in random pages of a 64 MiB working set
(about 10,000 pages a second) for as long as the migration runs. Each round
migrates it four times, in a rotating order: precopy and postcopy
(migrate-start-postcopy once a quarter of the memory is sent), each into QEMU
and into qmig. Precopy bandwidth is not capped, except before a switch to
postcopy (128 MiB/s, QEMU's default, so that there is a precopy phase). The figure is the source's own
`total-time` from query-migrate, the same clock for both destinations.
Prints medians, the ratios qmig / QEMU (also as the median of per-round
ratios) and the machine, as markdown. Needs qemu-system-x86 (tools/setup).
"""
import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "corpus"))
import make_corpus as mc  # noqa: E402

PAGE = 4096
WORKING_SET = 64 << 20
DIRTY_BATCH = 100          # pages per batch
DIRTY_PERIOD = 0.01        # seconds between batches: about 10,000 pages/s
# Precopy alone is not capped. Before postcopy starts, precopy is held to
# QEMU's default 128 MiB/s so that there is a precopy phase to switch from;
# the postcopy phase is not capped.
PARAMS = {"precopy": {"max-bandwidth": 10 << 30},
          "postcopy": {"max-bandwidth": 128 << 20, "max-postcopy-bandwidth": 0}}


class Dirtier(threading.Thread):
    def __init__(self, vm):
        super().__init__(daemon=True)
        self.vm = vm
        self.stop = threading.Event()
        self.pages = 0

    def run(self):
        rng = random.Random(1)
        base = 0x1000000  # above the first 16 MiB, inside the filled range
        while not self.stop.is_set():
            for _ in range(DIRTY_BATCH):
                page = rng.randrange(WORKING_SET // PAGE)
                try:
                    self.vm.qt.cmd("writeq 0x%x 0x%x" % (base + page * PAGE, self.pages + 1))
                except Exception:
                    return  # the source went away
                self.pages += 1
            time.sleep(DIRTY_PERIOD)


def migrate_once(work, qmig, mem, mode, dest):
    # Each QEMU gets fresh monitor socket paths.
    work = tempfile.mkdtemp(dir=work)
    caps = ["postcopy-ram"] if mode == "postcopy" else []
    args = ["-machine", "pc-i440fx-7.2", "-m", str(mem)] + mc.BASE_ARGS[2:]
    src = mc.Vm("src", args + ["-S"], work, timeout=300).start()
    dst = None
    listener = None
    try:
        mc.apply_write(src.qt, mc.w_memset(0, mem << 20, 0x5a))
        mc.set_caps(src, caps)
        mc.set_params(src, PARAMS[mode])
        if dest == "qemu":
            dst = mc.Vm("dst", args + ["-incoming", "defer"], work, timeout=300).start()
            port = mc.dest_listen(dst, caps, {})
        else:
            port = mc.free_port()
            listener = subprocess.Popen(
                [qmig, "listen", "tcp:127.0.0.1:%d" % port, "--json", "--guest=none",
                 "--accept_timeout_s=60", "--stall_timeout_s=60"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)  # bound before it prints; give it the moment to listen
        dirtier = Dirtier(src)
        dirtier.start()
        src.qmp.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        started_postcopy = False
        deadline = time.time() + 240
        while time.time() < deadline:
            info = src.qmp.cmd("query-migrate")
            status = info.get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise RuntimeError("migration %s: %s" % (status, info.get("error-desc")))
            if (mode == "postcopy" and not started_postcopy and status == "active" and
                    info.get("ram", {}).get("transferred", 0) >= (mem << 20) // 4):
                src.qmp.cmd("migrate-start-postcopy")
                started_postcopy = True
            time.sleep(0.01)
        else:
            raise RuntimeError("migration did not complete in time")
        dirtier.stop.set()
        dirtier.join(5)
        total_ms = info.get("total-time") or src.qmp.cmd("query-migrate").get("total-time")
        if not total_ms:
            raise RuntimeError("the source reports no total-time: %s" % info)
        if mode == "postcopy" and info.get("ram", {}).get("postcopy-bytes", 0) == 0:
            raise RuntimeError("postcopy never started")
        if listener is not None:
            out, err = listener.communicate(timeout=60)
            if listener.returncode != 0:
                raise RuntimeError("qmig exited %d: %s" % (listener.returncode, err[-500:]))
            if not json.loads(out)["valid"]:
                raise RuntimeError("qmig found errors in the migration")
        return total_ms, dirtier.pages
    finally:
        if listener is not None and listener.poll() is None:
            listener.kill()
        src.kill()
        if dst is not None:
            dst.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mem", type=int, default=256)
    ap.add_argument("--qmig", default=os.path.join(ROOT, "bazel-bin", "tools", "qmig", "qmig"))
    ap.add_argument("--qemu", default="7.2", choices=("7.2", "10.0", "11.1"),
                    help="the QEMU of the source and of the QEMU destination")
    args = ap.parse_args()
    if args.qemu == "7.2" and shutil.which("qemu-system-x86_64") is None:
        sys.exit("qemu-system-x86_64 is not installed; run tools/setup")
    mc._qemu.use_qemu(args.qemu)  # 10.0 and 11.1: their chroots, which see /tmp only
    runs = [(m, d) for m in ("precopy", "postcopy") for d in ("qemu", "qmig")]
    times = {run: [] for run in runs}
    work = tempfile.mkdtemp(prefix="qmig-bench-migration-", dir="/tmp")
    try:
        for r in range(args.rounds):
            order = runs[r % len(runs):] + runs[:r % len(runs)]
            for mode, dest in order:
                ms, dirtied = migrate_once(work, args.qmig, args.mem, mode, dest)
                times[(mode, dest)].append(ms)
                print("[bench] round %d %s -> %s: %d ms (%d pages dirtied)" %
                      (r + 1, mode, dest, ms, dirtied), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    print("## Migration time: QEMU -> qmig listen vs QEMU -> QEMU\n")
    print("- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("- machine: %d CPUs (%s), kernel %s" % (os.cpu_count(), cpu, platform.release()))
    print("- guest: pc-i440fx-7.2, %d MiB non-zero, ~%d pages/s dirtied in a %d MiB working "
          "set; %d rounds, medians of the source's total-time" %
          (args.mem, DIRTY_BATCH / DIRTY_PERIOD, WORKING_SET >> 20, args.rounds))
    print("- QEMU: %s (source and QEMU destination)" % args.qemu)
    print("- qmig: %s\n" % rev)
    print("| mode | into QEMU | into qmig | qmig / QEMU | per-round ratio, median (min..max) | target |")
    print("|---|---|---|---|---|---|")
    worst = 0
    for mode in ("precopy", "postcopy"):
        q, m = times[(mode, "qemu")], times[(mode, "qmig")]
        ratios = sorted(b / a for a, b in zip(q, m))
        ratio = statistics.median(m) / statistics.median(q)
        worst = max(worst, ratio)
        print("| %s | %d ms | %d ms | %.2f | %.2f (%.2f..%.2f) | <= 1.0 |" % (
            mode, statistics.median(q), statistics.median(m), ratio,
            statistics.median(ratios), ratios[0], ratios[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
