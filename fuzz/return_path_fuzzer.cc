// Fuzz target: a return-path stream (destination to source messages,
// RECV_BITMAP blobs). Each input is parsed twice: without RAMBlock lengths,
// and with those of the corpus's postcopy streams, which turns on the checks
// of page requests and bitmap sizes against their blocks.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/return_path.h"
#include "parser/wire/byte_source.h"

namespace {

void ParseOnce(absl::Span<const uint8_t> bytes, const qmig::ReturnPathOptions& options) {
  qmig::MemorySource source(bytes);
  qmig::ReturnPathResult result = qmig::ParseReturnPath(source, options);
  qmig::fuzz::Check(result.summary.bytes <= bytes.size(), "consumed more bytes than the input has");
  qmig::fuzz::CheckFindings(result.findings, bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const qmig::ReturnPathOptions* const kWithBlocks = [] {
    auto* options = new qmig::ReturnPathOptions;
    options->block_lengths = {{"pc.ram", uint64_t{16} << 20},
                              {"pc.bios", 256 << 10},
                              {"/rom@etc/acpi/tables", 128 << 10}};
    return options;
  }();
  ParseOnce(absl::MakeConstSpan(data, size), qmig::ReturnPathOptions());
  ParseOnce(absl::MakeConstSpan(data, size), *kWithBlocks);
  return 0;
}
