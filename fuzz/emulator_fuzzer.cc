// Fuzz target: the loopback destination (emulator/destination.h) on a whole
// main stream, as stream_fuzzer's input: the parser drives the userfaultfd
// arena, precopy page writes, RAM_DISCARD, LISTEN (registration, fault and
// device-loading threads), RUN (one guest thread touching a few pages) and
// the teardown.
//
// Inputs are mutated by the structure-aware stream mutator
// (fuzz/stream_mutator_hooks.h): the emulator's interesting states need a
// well-framed postcopy stream, with LISTEN, RUN and packages moved about.
//
// Bounded per input: the stream is parsed first, and an input whose
// MEM_SIZE lists declare more than 64 MiB in total is rejected (the arena
// maps every block and keeps a state byte per page; a page-by-page account
// of terabytes would be a timeout, not a finding). The return path goes
// nowhere (-1).
//
// Beyond the sanitizers: the destination must read the stream exactly as
// the plain parser does (its observer may not change the parse), and its
// own findings lie within the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "emulator/destination.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/stream_mutator_hooks.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"

namespace {

constexpr uint64_t kMaxArenaBytes = uint64_t{64} << 20;

// The largest total of any MEM_SIZE list (the destination maps the first).
class ArenaSize final : public qmig::StreamObserver {
 public:
  void OnRamBlock(absl::string_view, uint64_t length, uint64_t) override {
    list_ = length > kMaxArenaBytes - std::min(list_, kMaxArenaBytes) ? kMaxArenaBytes + 1
                                                                      : list_ + length;
    largest_ = std::max(largest_, list_);
  }
  void OnRamBlockListEnd() override { list_ = 0; }
  bool too_big() const { return largest_ > kMaxArenaBytes; }

 private:
  uint64_t list_ = 0;
  uint64_t largest_ = 0;
};

}  // namespace

QMIG_STREAM_MUTATOR_HOOKS()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qmig::fuzz::Check;
  const absl::Span<const uint8_t> input(data, size);
  ArenaSize arena_size;
  qmig::ParseOptions parse;
  parse.observer = &arena_size;
  qmig::MemorySource plain_source(input);
  qmig::ParseResult plain = qmig::ParseMigrationStream(plain_source, parse);
  if (arena_size.too_big()) return -1;  // libFuzzer: keep it out of the corpus

  qmig::DestinationOptions options;
  options.guest.kind = qmig::GuestPattern::Kind::kSequential;
  options.guest.threads = 1;
  options.guest.touches = 4;
  qmig::Destination destination(std::move(options));
  qmig::MemorySource source(input);
  qmig::DestinationReport report = destination.Run(source);

  Check(report.parse.summary.bytes == plain.summary.bytes,
        "the destination's parse read another number of bytes than the plain parse");
  const auto& ours = report.parse.findings.findings();
  const auto& theirs = plain.findings.findings();
  Check(ours.size() >= theirs.size(), "the destination lost parser findings");
  for (size_t i = 0; i < theirs.size(); ++i) {
    Check(ours[i].code == theirs[i].code && ours[i].offset == theirs[i].offset,
          "the destination's parse found other things than the plain parse");
  }
  qmig::fuzz::CheckFindings(report.parse.findings, size);
  return 0;
}
