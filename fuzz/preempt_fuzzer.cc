// Fuzz target: one postcopy preempt channel (postcopy RAM records with their
// own CONTINUE state, ended by EOS). Each input is parsed twice: without
// context, and with the block lengths of the corpus's pc-i440fx-7.2 guest.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/preempt_channel.h"
#include "parser/wire/byte_source.h"

namespace {

void ParseOnce(absl::Span<const uint8_t> bytes, const qmig::PreemptChannelOptions& options) {
  qmig::MemorySource source(bytes);
  uint64_t pages = 0;
  uint64_t touched = 0;
  qmig::PreemptChannelOptions counting = options;
  counting.on_page = [&pages, &touched](absl::string_view block, uint64_t, qmig::RamRecordKind kind,
                                        absl::Span<const uint8_t> page, uint64_t) {
    qmig::fuzz::Check(page.size() == (kind == qmig::RamRecordKind::kZero ? 1 : 4096),
                      "a page view of the wrong size");
    touched += qmig::fuzz::Touch(page);  // ASan checks the view
    ++pages;
  };
  qmig::PreemptChannelResult result = qmig::ParsePreemptChannel(source, counting);
  qmig::fuzz::Check(result.summary.bytes <= bytes.size(), "consumed more bytes than the input has");
  qmig::fuzz::Check(pages == result.summary.pages, "pages counted differ from pages handed over");
  qmig::fuzz::CheckFindings(result.findings, bytes.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const qmig::PreemptChannelOptions* const kWithContext = [] {
    auto* options = new qmig::PreemptChannelOptions;
    options->block_lengths = {
        {"pc.ram", uint64_t{16} << 20}, {"pc.bios", 256 << 10}, {"/rom@etc/acpi/rsdp", 4 << 10}};
    return options;
  }();
  ParseOnce(absl::MakeConstSpan(data, size), qmig::PreemptChannelOptions());
  ParseOnce(absl::MakeConstSpan(data, size), *kWithContext);
  return 0;
}
