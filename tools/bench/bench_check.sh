#!/usr/bin/env bash
# Performance benchmark of `qmig check` (or another qmig command) on a big
# real QEMU stream.
#
#   tools/bench/bench_check.sh [--dir DIR] [--mem MiB] [--rounds N]
#                              [--qemu=7.2|10.0|11.1] [--mapped-ram]
#                              [--qmig PATH] [--args 'ARGS'] [--extra LABEL=PATH]...
#                              [--enforce]
#
# Builds qmig (bazel build -c opt //tools/qmig) unless --qmig is given, makes
# (or reuses) the stream of a --mem MiB guest (default 2048) filled with
# non-zero data, migrated by QEMU --qemu (default 7.2), as a mapped-ram file
# with --mapped-ram (tools/bench/make_big_stream.py), under DIR (default
# ${TMPDIR:-/tmp}/qmig-bench, never in the repository), warms the page
# cache, says whether page faults are expensive on this host
# (tools/bench/io_probe.c), then runs N rounds (default 7), each
# measuring in a rotating order:
#   cat FILE > /dev/null                    (baseline)
#   io_probe pread FILE                     (read-only baseline: a pread loop of 1 MiB)
#   qmig ARGS FILE                          (regular file, pread)
#   cat FILE | qmig ARGS -                  (pipe path, read(2))
#   cat FILE | cat > /dev/null              (pipe baseline)
#   PATH ARGS FILE                          (each --extra binary: a candidate build)
# ARGS defaults to 'check --quiet {input}'; {input} is FILE, or - on a pipe, and
# {out} a fresh directory for each run (e.g. --args 'extract --quiet {input} {out}').
# Wall time: monotonic clock around the whole command or pipeline. Peak RSS,
# CPU time and page faults: the measured command's own (wait4 rusage). Prints
# medians, the ratios against the targets, peak RSS, the machine and the date,
# as markdown.
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
args='check --quiet {input}'
extras=()
enforce=0
qemu=7.2
mapped_ram=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --qmig) qmig="$2"; shift 2 ;;
    --args) args="$2"; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    --enforce) enforce=1; shift ;;
    --qemu) qemu="$2"; shift 2 ;;
    --qemu=*) qemu="${1#--qemu=}"; shift ;;
    --mapped-ram) mapped_ram=(--mapped-ram); shift ;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_check.sh: unknown argument $1" >&2; exit 1 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench_check.sh: bad --rounds" >&2; exit 1; }
[[ "$args" == *"{input}"* ]] || { echo "bench_check.sh: --args must hold {input}" >&2; exit 1; }

log() { echo "[bench] $*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
  log "/usr/bin/time is missing (apt-get install time): it reports each command's RSS"
  exit 1
fi

mkdir -p "$dir"
work="$(mktemp -d "$dir/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. qmig, copied so that a rebuild by someone else during the run changes
# nothing; the probe, in C so that no interpreter start-up is timed.
if [[ -z "$qmig" ]]; then
  log "building qmig (bazel build -c opt //tools/qmig)"
  (cd "$repo" && bazel build -c opt //tools/qmig >&2)
  qmig="$(cd "$repo" && bazel info -c opt bazel-bin 2>/dev/null)/tools/qmig/qmig"
fi
[[ -x "$qmig" ]] || { log "no qmig binary at $qmig"; exit 1; }
cp "$qmig" "$work/qmig"
Q="$work/qmig"
extra_labels=()
for extra in "${extras[@]}"; do
  label="${extra%%=*}"
  path="${extra#*=}"
  [[ "$label" =~ ^[A-Za-z0-9_]+$ && -x "$path" ]] || { log "bad --extra $extra"; exit 1; }
  cp "$path" "$work/extra_$label"
  extra_labels+=("$label")
done
cc -O2 -o "$work/io_probe" "$here/io_probe.c"

# 2. The stream.
file="$(python3 "$here/make_big_stream.py" --dir "$dir" --mem "$mem" --qemu "$qemu" \
  "${mapped_ram[@]}" | tail -1)"
[[ -f "$file" ]] || { log "no stream"; exit 1; }
size=$(stat -c %s "$file")
log "stream $file ($size bytes)"

# ARGS for one run: {input} and {out} filled in.
runs=0
expand() {
  local input="$1" out
  runs=$((runs + 1))
  out="$work/out.$runs"
  rm -rf "$out"
  mkdir -p "$out"
  local expanded="${args//\{input\}/$input}"
  echo "${expanded//\{out\}/$out}"
}

# A check of what qmig makes of the stream first (full output on failure).
# shellcheck disable=SC2046
if ! "$Q" $(expand "$file") >"$work/first.out" 2>&1; then
  log "qmig $args fails on the stream:"; cat "$work/first.out" >&2; exit 1
fi

# 3. Warm the page cache, then see what page faults cost here.
cat "$file" >/dev/null
cat "$file" >/dev/null
faults="$("$work/io_probe" faults "$file")"
log "page faults: $faults"
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$faults"; }

# 4. Rounds.
results="$work/results.txt"
: >"$results"
M="$here/measure.py"
failed=0
one() {
  local line rc
  # shellcheck disable=SC2046
  case "$1" in
    cat)        line="$(python3 "$M" run cat -- cat "$file")" ;;
    pread_loop) line="$(python3 "$M" run pread_loop -- "$work/io_probe" pread "$file")" ;;
    qmig_file)  line="$(python3 "$M" run qmig_file -- "$Q" $(expand "$file"))" ;;
    qmig_pipe)  line="$(python3 "$M" pipe qmig_pipe "$file" -- "$Q" $(expand -))" ;;
    cat_pipe)   line="$(python3 "$M" pipe cat_pipe "$file" -- cat)" ;;
    *)          line="$(python3 "$M" run "$1" -- "$work/extra_$1" $(expand "$file"))" ;;
  esac || true
  rm -rf "$work"/out.*
  echo "$line" >>"$results"
  rc="${line##*rc=}"
  if [[ "$rc" != 0 ]]; then
    log "FAILED: $line"
    failed=1
  fi
}
kinds=(cat pread_loop qmig_file qmig_pipe cat_pipe "${extra_labels[@]}")
n=${#kinds[@]}
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    one "${kinds[$(((r + k) % n))]}"
  done
  log "round $((r + 1))/$rounds: $(tail -"$n" "$results" | awk '{printf "%s %s  ", $1, $2}')"
done

# 5. Report.
cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
memtotal="$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
qrev="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$repo" && git status --porcelain -- parser tools/qmig 2>/dev/null)" ]]; then
  qrev="$qrev (+ uncommitted changes)"
fi
shown="${args//\{input\}/FILE}"
shown_pipe="${args//\{input\}/-}"
summary_args=(
  --row "cat=\`cat FILE > /dev/null\` (baseline)"
  --row "pread_loop=\`io_probe pread FILE\` (pread loop of 1 MiB: read-only baseline)"
  --row "qmig_file=\`qmig ${shown//\{out\}/DIR}\`"
  --row "qmig_pipe=\`cat FILE \\| qmig ${shown_pipe//\{out\}/DIR}\`"
  --row "cat_pipe=\`cat FILE \\| cat > /dev/null\` (pipe baseline)"
)
for label in "${extra_labels[@]}"; do
  summary_args+=(--row "$label=candidate $label: \`${shown//\{out\}/DIR}\`")
done
summary_args+=(
  --ratio "qmig_file/cat<=1.2"
  --ratio "qmig_pipe/cat_pipe<=1.0"
  --ratio "qmig_file/pread_loop"
  --ratio "qmig_pipe/cat"
)
for label in "${extra_labels[@]}"; do
  summary_args+=(--ratio "$label/cat")
done
summary_args+=(--rss "qmig_file<=64" --rss "qmig_pipe<=64")
echo
echo "## qmig benchmark: qmig $shown"
echo
set +e
python3 "$M" summary "$results" "${summary_args[@]}" \
  "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "machine=$(nproc) CPUs ($cpu), $memtotal RAM, kernel $(uname -r)" \
  "page faults=$(field verdict) here: first touch of a mapped file page $(field mapped_ns_per_page) ns, copying a page with pread $(field pread_ns_per_page) ns; a bare fault (anonymous memory) $(field anon_fault_ns) ns (io_probe faults, medians of 5)" \
  "stream=$(basename "$file"), $size bytes, guest RAM $mem MiB, made by QEMU $qemu${mapped_ram:+ as a mapped-ram file}" \
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
