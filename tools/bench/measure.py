#!/usr/bin/env python3
"""Timing helper for bench_check.sh (python3 stdlib).

  measure.py run LABEL -- CMD...          time CMD (stdout to /dev/null)
  measure.py pipe LABEL FILE -- CMD...    time `cat FILE | CMD` (CMD's stdout to /dev/null)
  measure.py summary RESULTS              medians, ratios, targets, markdown table

`run`/`pipe` print one result line:
  LABEL wall_s=<monotonic wall time> rss_kb=<peak RSS of CMD> cpu_s=<CMD user+sys> rc=<CMD status>
The wall time runs from just before the first fork to the exit of the last
process (time.monotonic_ns). CMD runs under GNU time (/usr/bin/time -f %M),
which reports CMD's own peak RSS (wait4 ru_maxrss). CMD is not started from
this script directly because a child forked from Python inherits Python's
RSS high-water mark (about 15 MiB) across exec, which would put a floor
under small figures; GNU time's own floor is about 1.5 MiB. The CPU time is
that of time + CMD (wait4), CMD's stderr is passed through; the feeding cat of
`pipe` is in neither figure.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time


def wait_all(pids):
    """wait4 every pid; returns {pid: (status, rusage)}."""
    out = {}
    while len(out) < len(pids):
        pid, status, ru = os.wait4(-1, 0)
        if pid in pids:
            out[pid] = (status, ru)
    return out


def exit_code(status):
    return os.waitstatus_to_exitcode(status)


TIME = "/usr/bin/time"


def measure(label, cmd, pipe_from=None):
    if not os.access(TIME, os.X_OK):
        sys.stderr.write("measure.py: %s is missing (apt-get install time)\n" % TIME)
        return 2
    fd, rss_file = tempfile.mkstemp(prefix="qmig-bench-rss-")
    os.close(fd)
    cmd = [TIME, "-q", "-f", "%M", "-o", rss_file] + list(cmd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        t0 = time.monotonic_ns()
        if pipe_from is None:
            p = subprocess.Popen(cmd, stdout=devnull, stdin=subprocess.DEVNULL)
            pids = {p.pid}
            cat = None
        else:
            cat = subprocess.Popen(["cat", pipe_from], stdout=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL)
            p = subprocess.Popen(cmd, stdin=cat.stdout, stdout=devnull)
            cat.stdout.close()
            pids = {cat.pid, p.pid}
        res = wait_all(pids)
        t1 = time.monotonic_ns()
    finally:
        os.close(devnull)
    status, ru = res[p.pid]
    rc = exit_code(status)
    if cat is not None and exit_code(res[cat.pid][0]) != 0 and rc == 0:
        rc = 100 + exit_code(res[cat.pid][0])   # the feeding cat failed
    # Popen objects must not wait again for reaped children.
    for proc in (p, cat):
        if proc is not None:
            proc.returncode = 0
    try:
        with open(rss_file) as f:
            rss_kb = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        rss_kb = -1
    os.unlink(rss_file)
    print("%s wall_s=%.6f rss_kb=%d cpu_s=%.6f rc=%d" % (
        label, (t1 - t0) / 1e9, rss_kb, ru.ru_utime + ru.ru_stime, rc), flush=True)
    return rc


# --- summary

TARGET_RATIO = 1.2
TARGET_RSS_KB = 64 * 1024

ROWS = [
    ("cat", "`cat FILE > /dev/null` (baseline)"),
    ("qmig_file", "`qmig check --quiet FILE`"),
    ("qmig_pipe", "`cat FILE \\| qmig check --quiet -`"),
    ("cat_pipe", "`cat FILE \\| cat > /dev/null` (pipe baseline)"),
]


def load(path):
    data = {}
    for line in open(path):
        parts = line.split()
        if not parts or "=" not in line:
            continue
        label = parts[0]
        fields = dict(p.split("=", 1) for p in parts[1:])
        data.setdefault(label, []).append({k: float(v) for k, v in fields.items()})
    return data


def med(data, label, key):
    return statistics.median(r[key] for r in data[label])


def summary(path, meta):
    data = load(path)
    cat = med(data, "cat", "wall_s")
    catp = med(data, "cat_pipe", "wall_s")
    lines = []
    p = lines.append
    p("| Command | runs | median wall (s) | min..max (s) | peak RSS (MiB, max) | CPU of command (s, median) |")
    p("|---|---:|---:|---:|---:|---:|")
    for label, text in ROWS:
        rs = data[label]
        walls = [r["wall_s"] for r in rs]
        p("| %s | %d | %.3f | %.3f..%.3f | %.1f | %.3f |" % (
            text, len(rs), statistics.median(walls), min(walls), max(walls),
            max(r["rss_kb"] for r in rs) / 1024.0, med(data, label, "cpu_s")))
    qf, qp = med(data, "qmig_file", "wall_s"), med(data, "qmig_pipe", "wall_s")
    rss_f = max(r["rss_kb"] for r in data["qmig_file"])
    rss_p = max(r["rss_kb"] for r in data["qmig_pipe"])
    ok = lambda b: "**met**" if b else "**NOT met**"
    p("")
    p("| Target | measured | limit | result |")
    p("|---|---:|---:|---|")
    p("| file: qmig / cat (wall, medians) | %.2f | %.1f | %s |" % (qf / cat, TARGET_RATIO, ok(qf / cat <= TARGET_RATIO)))
    p("| pipe: qmig / cat (wall, medians) | %.2f | %.1f | %s |" % (qp / cat, TARGET_RATIO, ok(qp / cat <= TARGET_RATIO)))
    p("| file: peak RSS of qmig | %.1f MiB | 64 MiB | %s |" % (rss_f / 1024.0, ok(rss_f <= TARGET_RSS_KB)))
    p("| pipe: peak RSS of qmig | %.1f MiB | 64 MiB | %s |" % (rss_p / 1024.0, ok(rss_p <= TARGET_RSS_KB)))
    p("| (info) pipe: qmig / `cat \\| cat` (wall, medians) | %.2f | - | - |" % (qp / catp))
    # The same ratios taken within each round, then the median: less sensitive
    # to the machine getting slower or faster during the run.
    def per_round(label):
        rs = [a["wall_s"] / b["wall_s"] for a, b in zip(data[label], data["cat"])]
        return statistics.median(rs), min(rs), max(rs)
    p("| (info) file: qmig / cat, median of per-round ratios (min..max) | %.2f (%.2f..%.2f) | - | - |"
      % per_round("qmig_file"))
    p("| (info) pipe: qmig / cat, median of per-round ratios (min..max) | %.2f (%.2f..%.2f) | - | - |"
      % per_round("qmig_pipe"))
    p("")
    for k, v in meta:
        p("- %s: %s" % (k, v))
    print("\n".join(lines))
    met = (qf / cat <= TARGET_RATIO and qp / cat <= TARGET_RATIO and rss_f <= TARGET_RSS_KB
           and rss_p <= TARGET_RSS_KB)
    return 0 if met else 3


def main(argv):
    if len(argv) >= 2 and argv[1] == "summary":
        meta = [tuple(a.split("=", 1)) for a in argv[3:]]
        return summary(argv[2], meta)
    if len(argv) >= 4 and argv[1] == "run" and argv[3] == "--":
        return measure(argv[2], argv[4:])
    if len(argv) >= 5 and argv[1] == "pipe" and argv[4] == "--":
        return measure(argv[2], argv[5:], pipe_from=argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
