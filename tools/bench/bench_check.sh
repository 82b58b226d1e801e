#!/usr/bin/env bash
# Performance benchmark of `qmig check` on a big QEMU 7.2 stream.
#
#   tools/bench/bench_check.sh [--dir DIR] [--mem MiB] [--rounds N]
#                              [--qmig PATH] [--enforce]
#
# Builds qmig (bazel build -c opt //tools/qmig) unless --qmig is given, makes
# (or reuses) the stream of a --mem MiB guest (default 2048) filled with
# non-zero data under DIR (default ${TMPDIR:-/tmp}/qmig-bench, never in the
# repository), warms the page cache, then runs N rounds (default 7), each
# measuring in a rotating order:
#   cat FILE > /dev/null                    (baseline)
#   qmig check --quiet FILE                 (mmap path)
#   cat FILE | qmig check --quiet -         (pipe path, read(2))
#   cat FILE | cat > /dev/null              (pipe baseline)
# Wall time: monotonic clock around the whole command or pipeline. Peak RSS and
# CPU time: the measured command's own (wait4 rusage). Prints medians, the
# ratios qmig/cat, peak RSS, the machine and the date, as markdown.
#
# Exit status: 0 when every qmig run exited 0; 1 when one did not (or on a
# setup failure); with --enforce, 3 when a performance target is missed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

dir="${TMPDIR:-/tmp}/qmig-bench"
mem=2048
rounds=7
qmig=""
enforce=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --qmig) qmig="$2"; shift 2 ;;
    --enforce) enforce=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_check.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench_check.sh: bad --rounds" >&2; exit 1; }

log() { echo "[bench] $*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
  log "note: /usr/bin/time is not installed (apt-get install time); not needed, RSS comes from wait4"
fi

mkdir -p "$dir"
work="$(mktemp -d "$dir/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. qmig, copied so that a rebuild by someone else during the run changes nothing.
if [[ -z "$qmig" ]]; then
  log "building qmig (bazel build -c opt //tools/qmig)"
  (cd "$repo" && bazel build -c opt //tools/qmig >&2)
  qmig="$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)/tools/qmig/qmig"
fi
[[ -x "$qmig" ]] || { log "no qmig binary at $qmig"; exit 1; }
cp "$qmig" "$work/qmig"
Q="$work/qmig"

# 2. The stream.
file="$(python3 "$here/make_big_stream.py" --dir "$dir" --mem "$mem" | tail -1)"
[[ -f "$file" ]] || { log "no stream"; exit 1; }
size=$(stat -c %s "$file")
log "stream $file ($size bytes)"

# A validity check first (full output on failure).
if ! "$Q" check --quiet "$file" >"$work/first.out" 2>&1; then
  log "qmig rejects the stream:"; cat "$work/first.out" >&2; exit 1
fi

# 3. Warm the page cache.
cat "$file" >/dev/null
cat "$file" >/dev/null

# 4. Rounds.
results="$work/results.txt"
: >"$results"
M="$here/measure.py"
failed=0
one() {
  local line rc
  case "$1" in
    cat)       line="$(python3 "$M" run cat -- cat "$file")" ;;
    qmig_file) line="$(python3 "$M" run qmig_file -- "$Q" check --quiet "$file")" ;;
    qmig_pipe) line="$(python3 "$M" pipe qmig_pipe "$file" -- "$Q" check --quiet -)" ;;
    cat_pipe)  line="$(python3 "$M" pipe cat_pipe "$file" -- cat)" ;;
  esac || true
  echo "$line" >>"$results"
  rc="${line##*rc=}"
  if [[ "$rc" != 0 ]]; then
    log "FAILED: $line"
    failed=1
  fi
}
kinds=(cat qmig_file qmig_pipe cat_pipe)
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < 4; k++)); do
    one "${kinds[$(((r + k) % 4))]}"
  done
  log "round $((r + 1))/$rounds: $(tail -4 "$results" | awk '{printf "%s %s  ", $1, $2}')"
done

# 5. Report.
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
memtotal="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
qrev="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$repo" && git status --porcelain -- parser tools/qmig 2>/dev/null)" ]]; then
  qrev="$qrev (+ uncommitted changes)"
fi
echo
echo "## qmig check benchmark"
echo
set +e
python3 "$M" summary "$results" \
  "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "machine=$(nproc) CPUs ($cpu), $memtotal RAM, kernel $(uname -r)" \
  "stream=$(basename "$file"), $size bytes, guest RAM $mem MiB" \
  "rounds=$rounds (medians; order rotated each round; page cache warm)" \
  "qmig=$qrev, built with -c opt"
summary_rc=$?
set -e
echo
echo "Raw results:"
echo '```'
cat "$results"
echo '```'
if [[ $failed -ne 0 ]]; then
  log "a measured run did not exit 0"
  exit 1
fi
if [[ $enforce -eq 1 && $summary_rc -ne 0 ]]; then
  exit 3
fi
exit 0
