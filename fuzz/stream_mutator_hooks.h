// QMIG_STREAM_MUTATOR_HOOKS(): defines libFuzzer's LLVMFuzzerCustomMutator
// and LLVMFuzzerCustomCrossOver with the structure-aware stream mutator
// (fuzz/stream_mutator.h), for a target whose input is a whole main stream.
// Use it once, at file scope, in the target's .cc file: the hooks must sit
// in the target's own object so that every build of it links them (an
// archive member that only libFuzzer's weak references name would be
// dropped).
//
// LLVMFuzzerMutate is referenced weakly: the replay runner has no libFuzzer,
// and never calls the hooks.
#ifndef QMIG_FUZZ_STREAM_MUTATOR_HOOKS_H_
#define QMIG_FUZZ_STREAM_MUTATOR_HOOKS_H_

#include <cstddef>
#include <cstdint>

#include "fuzz/stream_mutator.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size)
    __attribute__((weak));

#define QMIG_STREAM_MUTATOR_HOOKS()                                                             \
  extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,        \
                                            unsigned int seed) {                                \
    return qmig::fuzz::MutateStream(data, size, max_size, seed, LLVMFuzzerMutate);              \
  }                                                                                             \
  extern "C" size_t LLVMFuzzerCustomCrossOver(const uint8_t* data1, size_t size1,               \
                                              const uint8_t* data2, size_t size2, uint8_t* out, \
                                              size_t max_out_size, unsigned int seed) {         \
    return qmig::fuzz::CrossOverStreams(data1, size1, data2, size2, out, max_out_size, seed);   \
  }

#endif  // QMIG_FUZZ_STREAM_MUTATOR_HOOKS_H_
