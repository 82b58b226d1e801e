// Fuzz target: the whole-stream parser, as stream_fuzzer, but driven by the
// structure-aware mutator (fuzz/stream_mutator.h) through libFuzzer's
// LLVMFuzzerCustomMutator and LLVMFuzzerCustomCrossOver. The input format is
// stream_fuzzer's (a whole main stream), and so are the seeds
// (corpus/structured_stream_fuzzer links to corpus/stream_fuzzer).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "fuzz/stream_mutator_hooks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qmig::fuzz::ParseAndCheck(absl::MakeConstSpan(data, size));
  return 0;
}

QMIG_STREAM_MUTATOR_HOOKS()
