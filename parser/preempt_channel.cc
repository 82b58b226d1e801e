#include "parser/preempt_channel.h"

namespace qmig {
namespace {

// Hands each page record to PreemptChannelOptions::on_page.
class PageForwarder final : public StreamObserver {
 public:
  explicit PageForwarder(const PreemptChannelOptions& options) : options_(options) {}
  void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                 absl::Span<const uint8_t> page, uint64_t stream_offset) override {
    if (options_.on_page) options_.on_page(block, block_offset, kind, page, stream_offset);
  }

 private:
  const PreemptChannelOptions& options_;
};

}  // namespace

PreemptChannelResult ParsePreemptChannel(ByteSource& source, const PreemptChannelOptions& options) {
  PageForwarder forwarder(options);
  ParseOptions parse;
  parse.limits = options.limits;
  parse.live = options.live;
  parse.channel = RamChannel::kPostcopyPreempt;
  parse.channel_blocks = options.block_lengths;
  parse.observer = &forwarder;
  ParseResult parsed = ParseMigrationStream(source, parse);
  PreemptChannelResult result{PreemptChannelSummary{}, std::move(parsed.findings)};
  PreemptChannelSummary& summary = result.summary;
  for (const RamBlockSummary& block : parsed.summary.ram_blocks) {
    const uint64_t pages = block.zero_pages + block.normal_pages;
    summary.pages += pages;
    summary.zero_pages += block.zero_pages;
    if (pages > 0) summary.pages_by_block[block.name] += pages;
  }
  summary.eos_seen = parsed.summary.ram_eos_seen;
  summary.bytes = parsed.summary.bytes;
  return result;
}

}  // namespace qmig
