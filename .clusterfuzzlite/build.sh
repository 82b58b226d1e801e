#!/bin/bash -eu
# Builds qmig's fuzz targets (fuzz/*_fuzzer.cc) the OSS-Fuzz way: with $CC,
# $CXX, $CFLAGS, $CXXFLAGS and $LIB_FUZZING_ENGINE into $OUT, each with its
# dictionary (<target>.dict) and seeds (<target>_seed_corpus.zip: the seeds
# of fuzz/corpus/<target>/ and the regression files of
# corpus/regressions/<target>/ except open ones, *.open).
#
# It compiles the sources directly rather than with Bazel: the base image has
# no Bazel 4.2.3 and no Debian Abseil. Abseil comes from $SRC/abseil-cpp
# (cloned by .clusterfuzzlite/Dockerfile), built here with the same compiler
# and flags; without that directory, pkg-config finds an installed Abseil
# (how the script is checked outside Docker, see docs/FUZZING.md).
#
# Inputs besides the OSS-Fuzz ones: QMIG_SRC, the source tree (default
# $SRC/qmig, else the directory above this script).

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
qmig="${QMIG_SRC:-$SRC/qmig}"
[ -f "$qmig/fuzz/fuzz_support.cc" ] || qmig="$(dirname "$script_dir")"
jobs="$(nproc)"

# Abseil, built with the fuzzing flags when its source is here.
if [ -d "$SRC/abseil-cpp" ]; then
  absl_prefix="$WORK/absl-install"
  if [ ! -f "$absl_prefix/lib/pkgconfig/absl_status.pc" ]; then
    cmake -S "$SRC/abseil-cpp" -B "$WORK/absl-build" \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
      -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
      -DCMAKE_CXX_STANDARD=17 -DABSL_PROPAGATE_CXX_STD=ON \
      -DABSL_BUILD_TESTING=OFF -DBUILD_TESTING=OFF \
      -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
      -DCMAKE_INSTALL_PREFIX="$absl_prefix" -DCMAKE_INSTALL_LIBDIR=lib
    cmake --build "$WORK/absl-build" --parallel "$jobs"
    cmake --install "$WORK/absl-build"
  fi
  export PKG_CONFIG_PATH="$absl_prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
fi
absl_modules="absl_status absl_statusor absl_strings absl_str_format absl_flat_hash_map
  absl_span absl_optional absl_time"
# shellcheck disable=SC2086
absl_cflags="$(pkg-config --cflags $absl_modules)"
# shellcheck disable=SC2086
absl_libs="$(pkg-config --libs $absl_modules)"

obj="$WORK/qmig-obj"
rm -rf "$obj"
mkdir -p "$obj"
cxxflags=($CXXFLAGS -std=c++17 -DQMIG_FUZZING_BUILD -I"$qmig" -I"$obj" $absl_cflags)
# nlohmann::json without coverage callbacks (see the list for why), where the
# build uses SanitizerCoverage: libFuzzer, not AFL's compiler nor the
# source-based coverage build.
if [ "${FUZZING_ENGINE:-libfuzzer}" = libfuzzer ] && [ "${SANITIZER:-address}" != coverage ]; then
  cxxflags+=(-fsanitize-coverage-ignorelist="$qmig/fuzz/coverage_ignorelist.txt")
fi

compile() {  # compile SOURCE OBJECT
  mkdir -p "$(dirname "$2")"
  "$CXX" "${cxxflags[@]}" -c "$1" -o "$2"
}

# The parser: every non-test source under parser/ except the test helpers.
parser_objects=()
while IFS= read -r source; do
  object="$obj/${source#$qmig/}.o"
  compile "$source" "$object" &
  parser_objects+=("$object")
  # Keep at most $jobs compilers running.
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done < <(find "$qmig/parser" -name '*.cc' ! -name '*_test.cc' ! -path '*/testing/*' | sort)
wait
# Background compiles escape `set -e`: a missing object is a failed compile.
for object in "${parser_objects[@]}"; do
  [ -f "$object" ] || { echo "build.sh: compiling ${object#$obj/} failed" >&2; exit 1; }
done
ar rcs "$obj/libqmig_parser.a" "${parser_objects[@]}"

# Fuzz support and the vmstate fuzzer's embedded schema.
python3 "$qmig/fuzz/embed_vmdesc.py" "$qmig/corpus/qemu-7.2/pc-i440fx-7.2.mig" \
  > "$obj/embedded_vmdesc.cc"
compile "$qmig/fuzz/fuzz_support.cc" "$obj/fuzz_support.o"
compile "$obj/embedded_vmdesc.cc" "$obj/embedded_vmdesc.o"
# The structure-aware mutator and the stream writer it encodes with.
compile "$qmig/parser/testing/stream_writer.cc" "$obj/stream_writer.o"
compile "$qmig/fuzz/stream_records.cc" "$obj/stream_records.o"
compile "$qmig/fuzz/stream_mutator.cc" "$obj/stream_mutator.o"
ar rcs "$obj/libqmig_fuzz.a" "$obj/fuzz_support.o" "$obj/embedded_vmdesc.o" \
  "$obj/stream_writer.o" "$obj/stream_records.o" "$obj/stream_mutator.o"
# The loopback emulator (emulator_fuzzer): every non-test source.
emulator_objects=()
for source in "$qmig"/emulator/*.cc; do
  case "$source" in *_test.cc) continue ;; esac
  object="$obj/emulator/$(basename "$source").o"
  compile "$source" "$object"
  emulator_objects+=("$object")
done
ar rcs "$obj/libqmig_emulator.a" "${emulator_objects[@]}"
# The inspection layer (inspect_fuzzer).
inspect_objects=()
for source in "$qmig"/tools/inspect/*.cc; do
  case "$source" in *_test.cc) continue ;; esac
  object="$obj/inspect/$(basename "$source").o"
  compile "$source" "$object"
  inspect_objects+=("$object")
done
# What the commands render (render_fuzzer): summaries, findings and the
# report page, whose template is compiled in.
mkdir -p "$obj/tools/qmig"
python3 "$qmig/tools/qmig/embed_file.py" "$qmig/tools/qmig/report_template.html" \
  "$obj/tools/qmig/report_template.h" kReportTemplate
for source in report.cc report_page.cc; do
  object="$obj/inspect/qmig_$source.o"
  compile "$qmig/tools/qmig/$source" "$object"
  inspect_objects+=("$object")
done
ar rcs "$obj/libqmig_inspect.a" "${inspect_objects[@]}"

for source in "$qmig"/fuzz/*_fuzzer.cc; do
  target="$(basename "$source" .cc)"
  compile "$source" "$obj/$target.o"
  # shellcheck disable=SC2086
  "$CXX" $CXXFLAGS "$obj/$target.o" -o "$OUT/$target" $LIB_FUZZING_ENGINE \
    "$obj/libqmig_emulator.a" "$obj/libqmig_inspect.a" "$obj/libqmig_fuzz.a" "$obj/libqmig_parser.a" $absl_libs \
    -lz -lpthread
  cp "$qmig/fuzz/$target.dict" "$OUT/$target.dict"
  rm -f "$OUT/${target}_seed_corpus.zip"
  for dir in "$qmig/fuzz/corpus/$target" "$qmig/corpus/regressions/$target"; do
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
      # Reproducers of bugs not fixed yet (*.open) would fail every run.
      (cd "$dir" && zip -q -r "$OUT/${target}_seed_corpus.zip" . -x '*.open')
    fi
  done
done
