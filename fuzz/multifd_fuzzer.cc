// Fuzz target: one multifd channel (MultiFDInit, then packets with their
// offset tables and pages). Each input is parsed twice: without context, and
// with the block lengths and channel count of the corpus's multifd stream.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/multifd.h"
#include "parser/wire/byte_source.h"

namespace {

void ParseOnce(absl::Span<const uint8_t> bytes, const qmig::MultifdOptions& options) {
  qmig::MemorySource source(bytes);
  qmig::MultifdResult result = qmig::ParseMultifdChannel(source, options);
  qmig::fuzz::Check(result.summary.bytes <= bytes.size(), "consumed more bytes than the input has");
  qmig::fuzz::CheckFindings(result.findings, bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const qmig::MultifdOptions* const kWithContext = [] {
    auto* options = new qmig::MultifdOptions;
    options->block_lengths = {
        {"pc.ram", uint64_t{16} << 20}, {"pc.bios", 256 << 10}, {"/rom@etc/acpi/rsdp", 4 << 10}};
    options->channels = 2;
    return options;
  }();
  ParseOnce(absl::MakeConstSpan(data, size), qmig::MultifdOptions());
  ParseOnce(absl::MakeConstSpan(data, size), *kWithContext);
  return 0;
}
