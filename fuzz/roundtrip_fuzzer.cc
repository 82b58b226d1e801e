// Property target: the record codec behind the structure-aware mutator
// (fuzz/stream_records.h) is lossless and canonical on any input:
//   EncodeRecords(DecodeRecords(x)) == x, and
//   DecodeRecords(EncodeRecords(DecodeRecords(x))) == DecodeRecords(x).
// It then mutates x once (fuzz/stream_mutator.h, seeded from x's bytes, with
// the built-in byte mutator: libFuzzer's may only be called from a mutator
// hook) and checks that the output respects its size bound and that the
// codec is lossless on it too, so the mutator runs under the sanitizers on
// every input. A broken property aborts with "qmig fuzz contract broken".
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_support.h"
#include "fuzz/stream_mutator.h"
#include "fuzz/stream_records.h"

namespace {

// FNV-1a: the mutation seed depends on every byte, so replays repeat it.
uint32_t Hash(const uint8_t* data, size_t size) {
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 16777619u;
  return hash;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qmig::fuzz::Check;
  const std::vector<uint8_t> input(data, data + size);
  std::vector<qmig::fuzz::Record> records = qmig::fuzz::DecodeRecords(input);
  std::vector<uint8_t> encoded = qmig::fuzz::EncodeRecords(records);
  Check(encoded == input, "re-encoding the decoded records changed the bytes");
  Check(qmig::fuzz::DecodeRecords(encoded) == records, "decoding the re-encoded bytes differs");

  const size_t max_size = size + 512;
  std::vector<uint8_t> buffer = input;
  buffer.resize(max_size);
  size_t mutated = qmig::fuzz::MutateStream(buffer.data(), size, max_size, Hash(data, size),
                                            /*raw=*/nullptr);
  Check(mutated <= max_size, "the mutator wrote past its size bound");
  buffer.resize(mutated);
  Check(qmig::fuzz::EncodeRecords(qmig::fuzz::DecodeRecords(buffer)) == buffer,
        "re-encoding a mutated stream's records changed the bytes");
  return 0;
}
