#!/usr/bin/env bash
# Benchmark of `qmig extract` and `qmig dump --json` on a big QEMU 7.2 stream.
#
#   tools/bench/bench_inspect.sh [--dir DIR] [--out DIR] [--mem MiB] [--rounds N]
#                                [--qmig PATH]
#
# Uses the stream of bench_check.sh (a --mem MiB guest, default 2048, filled
# with non-zero data, made by make_big_stream.py under DIR). Each round, in a
# rotating order, measures:
#   cp FILE DIR/copy                  (baseline: the same bytes, file to file)
#   qmig extract --quiet FILE DIR/x   (RAM blocks to sparse files, state, config)
#   qmig dump --json FILE > /dev/null (peak RSS: RAM is summarised, not held)
# Outputs go under --out (default: a directory beside the stream; a tmpfs
# such as /dev/shm takes the disk's writeback out of both figures) and are
# deleted between runs. Prints medians, the ratio extract/cp (also as the
# median of per-round ratios, steadier on a noisy machine) and the peak RSS
# of dump --json, with the machine, as markdown.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${TMPDIR:-/tmp}/qmig-bench"
mem=2048
rounds=5
qmig=""
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --qmig) qmig="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_inspect.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
log() { echo "[bench] $*" >&2; }

mkdir -p "$dir"
work="$(mktemp -d "$dir/inspect.XXXXXX")"
outdir="$(mktemp -d "${out:-$dir}/inspect-out.XXXXXX")"
trap 'rm -rf "$work" "$outdir"' EXIT
if [[ -z "$qmig" ]]; then
  (cd "$repo" && bazel build -c opt //tools/qmig >&2)
  qmig="$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)/tools/qmig/qmig"
fi
cp "$qmig" "$work/qmig"
Q="$work/qmig"
file="$(python3 "$here/make_big_stream.py" --dir "$dir" --mem "$mem" | tail -1)"
size=$(stat -c %s "$file")
log "stream $file ($size bytes)"
cat "$file" >/dev/null
cat "$file" >/dev/null

M="$here/measure.py"
results="$work/results.txt"
: >"$results"
one() {
  case "$1" in
    cp)      python3 "$M" run cp -- cp "$file" "$outdir/copy" >>"$results"; rm -f "$outdir/copy" ;;
    extract) python3 "$M" run extract -- "$Q" extract --quiet "$file" "$outdir/x" >>"$results"
             rm -rf "$outdir/x" ;;
    dump)    python3 "$M" run dump_json -- "$Q" dump --json --quiet "$file" >>"$results" ;;
  esac
  sync
}
kinds=(cp extract dump)
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < 3; k++)); do one "${kinds[$(((r + k) % 3))]}"; done
  log "round $((r + 1))/$rounds: $(tail -3 "$results" | awk '{printf "%s %s  ", $1, $2}')"
done

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
python3 - "$results" <<PY
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, *fields = line.split()
    kv = dict(f.split("=", 1) for f in fields)
    rows.setdefault(label, []).append(kv)
    if kv["rc"] != "0":
        sys.exit("a measured run failed: " + line)
med = lambda label, key: statistics.median(float(r[key]) for r in rows[label])
cp, ex = med("cp", "wall_s"), med("extract", "wall_s")
print("## qmig extract / dump --json benchmark\n")
print("- date: $(date -u '+%Y-%m-%d %H:%M UTC')")
print("- machine: $(nproc) CPUs ($cpu), kernel $(uname -r)")
print("- stream: $(basename "$file"), $size bytes, guest RAM $mem MiB; $rounds rounds, medians")
print("- outputs written to: $(df --output=fstype "$outdir" | tail -1) ($(df --output=target "$outdir" | tail -1))")
print("- qmig: $(cd "$repo" && git rev-parse --short HEAD), -c opt\n")
print("| measure | median | target |")
print("|---|---|---|")
print("| cp FILE (baseline) | %.2f s | - |" % cp)
print("| qmig extract FILE DIR | %.2f s | - |" % ex)
print("| extract / cp (of medians) | %.2f | <= 1.5 |" % (ex / cp))
ratios = sorted(float(e["wall_s"]) / float(c["wall_s"]) for e, c in zip(rows["extract"], rows["cp"]))
print("| extract / cp, median of per-round ratios (min..max) | %.2f (%.2f..%.2f) | <= 1.5 |"
      % (statistics.median(ratios), ratios[0], ratios[-1]))
print("| qmig dump --json wall | %.2f s | - |" % med("dump_json", "wall_s"))
print("| qmig dump --json peak RSS | %.1f MiB | <= 64 MiB |"
      % (max(float(r["rss_kb"]) for r in rows["dump_json"]) / 1024))
PY
