#!/usr/bin/env python3
"""Timing helper for the benchmarks (python3 stdlib).

  measure.py run LABEL -- CMD...          time CMD (stdout to /dev/null)
  measure.py pipe LABEL FILE -- CMD...    time `cat FILE | CMD` (CMD's stdout to /dev/null)
  measure.py summary RESULTS [OPTIONS] [KEY=VALUE...]
                                          medians, ratios, targets, markdown tables

`run`/`pipe` print one result line:
  LABEL wall_s=<wall time> rss_kb=<peak RSS of CMD> cpu_s=<CMD user+sys>
        minflt=<CMD's minor page faults> rc=<CMD status>
The wall time runs from just before the first fork to the exit of the last
process (time.monotonic_ns). CMD runs under GNU time (/usr/bin/time -f "%M %R"),
which reports CMD's own peak RSS (wait4 ru_maxrss) and page faults. CMD is not
started from this script directly because a child forked from Python inherits
Python's RSS high-water mark (about 15 MiB) across exec, which would put a floor
under small figures; GNU time's own floor is about 1.5 MiB. The CPU time is that
of time + CMD (wait4), CMD's stderr is passed through; the feeding cat of `pipe`
is in neither figure.

`summary` reads the result lines of a run (every label measured the same
number of rounds, in a rotating order) and prints one row per label, then the
targets. What it prints is given by options, so that any benchmark can use it:
  --row LABEL=TEXT          a row of the command table (in this order; default:
                            every label, as itself)
  --ratio A/B<=LIMIT        a wall-time target: median of A / median of B
  --ratio A/B               the same, for information only
  --rss LABEL<=MIB          a peak RSS target
KEY=VALUE pairs are printed below as "- KEY: VALUE" (machine, date, ...).
Exit status of `summary`: 0 when every target is met, 3 otherwise.
"""

import os
import statistics
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
    import subprocess
    if not os.access(TIME, os.X_OK):
        sys.stderr.write("measure.py: %s is missing (apt-get install time)\n" % TIME)
        return 2
    fd, stats_file = tempfile.mkstemp(prefix="qmig-bench-rss-")
    os.close(fd)
    cmd = [TIME, "-q", "-f", "%M %R", "-o", stats_file] + list(cmd)
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
        with open(stats_file) as f:
            rss_kb, minflt = (int(x) for x in f.read().split()[-2:])
    except (OSError, ValueError):
        rss_kb, minflt = -1, -1
    os.unlink(stats_file)
    print("%s wall_s=%.6f rss_kb=%d cpu_s=%.6f minflt=%d rc=%d" % (
        label, (t1 - t0) / 1e9, rss_kb, ru.ru_utime + ru.ru_stime, minflt, rc), flush=True)
    return rc


# --- summary

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


def summary(path, rows, ratios, rss_targets, meta):
    data = load(path)
    for label in [l for l, _ in rows] + [x for r in ratios for x in r[:2]] + [l for l, _ in rss_targets]:
        if label not in data:
            sys.stderr.write("measure.py: no results for %s\n" % label)
            return 2
    if not rows:
        rows = [(label, label) for label in data]
    lines = []
    p = lines.append
    p("| label | command | runs | median wall (s) | min..max (s) | peak RSS (MiB, max) | CPU of command (s, median) | page faults (median) |")
    p("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, text in rows:
        rs = data[label]
        walls = [r["wall_s"] for r in rs]
        faults = [r["minflt"] for r in rs if "minflt" in r]
        p("| %s | %s | %d | %.3f | %.3f..%.3f | %.1f | %.3f | %s |" % (
            label, text, len(rs), statistics.median(walls), min(walls), max(walls),
            max(r["rss_kb"] for r in rs) / 1024.0, med(data, label, "cpu_s"),
            "%d" % statistics.median(faults) if faults else "-"))
    ok = lambda b: "**met**" if b else "**NOT met**"
    met = True
    p("")
    p("| target | measured (wall: ratio of medians) | median of per-round ratios (min..max) | limit | result |")
    p("|---|---:|---:|---:|---|")
    for a, b, limit in ratios:
        value = med(data, a, "wall_s") / med(data, b, "wall_s")
        # The same ratio taken within each round, then the median: less
        # sensitive to the machine getting slower or faster during the run.
        per_round = sorted(x["wall_s"] / y["wall_s"] for x, y in zip(data[a], data[b]))
        name = "%s / %s (wall)" % (a, b)
        spread = "%.2f (%.2f..%.2f)" % (statistics.median(per_round), per_round[0], per_round[-1])
        if limit is None:
            p("| (info) %s | %.2f | %s | - | - |" % (name, value, spread))
        else:
            p("| %s | %.2f | %s | %.1f | %s |" % (name, value, spread, limit, ok(value <= limit)))
            met = met and value <= limit
    for label, limit_mib in rss_targets:
        rss = max(r["rss_kb"] for r in data[label]) / 1024.0
        p("| %s: peak RSS | %.1f MiB | - | %g MiB | %s |" % (label, rss, limit_mib,
                                                              ok(rss <= limit_mib)))
        met = met and rss <= limit_mib
    p("")
    for k, v in meta:
        p("- %s: %s" % (k, v))
    print("\n".join(lines))
    return 0 if met else 3


def parse_summary_args(args):
    rows, ratios, rss, meta = [], [], [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--row", "--ratio", "--rss") and i + 1 < len(args):
            value = args[i + 1]
            i += 2
            if arg == "--row":
                label, text = value.split("=", 1)
                rows.append((label, text))
            elif arg == "--ratio":
                pair, _, limit = value.partition("<=")
                a, b = pair.split("/", 1)
                ratios.append((a, b, float(limit) if limit else None))
            else:
                label, limit = value.split("<=", 1)
                rss.append((label, float(limit)))
            continue
        meta.append(tuple(arg.split("=", 1)))
        i += 1
    return rows, ratios, rss, meta


def main(argv):
    if len(argv) >= 3 and argv[1] == "summary":
        rows, ratios, rss, meta = parse_summary_args(argv[3:])
        return summary(argv[2], rows, ratios, rss, meta)
    if len(argv) >= 4 and argv[1] == "run" and argv[3] == "--":
        return measure(argv[2], argv[4:])
    if len(argv) >= 5 and argv[1] == "pipe" and argv[4] == "--":
        return measure(argv[2], argv[5:], pipe_from=argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
