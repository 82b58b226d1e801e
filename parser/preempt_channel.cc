#include "parser/preempt_channel.h"

namespace qmig {
namespace {

// Hands each page record to PreemptChannelOptions::on_page and counts it,
// so that the summary counts exactly the pages handed over, those of an
// unknown block (a finding) included.
class PageForwarder final : public StreamObserver {
 public:
  PageForwarder(const PreemptChannelOptions& options, PreemptChannelSummary& summary)
      : options_(options), summary_(summary) {}
  void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                 absl::Span<const uint8_t> page, uint64_t stream_offset) override {
    ++summary_.pages;
    if (kind == RamRecordKind::kZero) ++summary_.zero_pages;
    ++summary_.pages_by_block[std::string(block)];
    if (options_.on_page) options_.on_page(block, block_offset, kind, page, stream_offset);
  }

 private:
  const PreemptChannelOptions& options_;
  PreemptChannelSummary& summary_;
};

}  // namespace

PreemptChannelResult ParsePreemptChannel(ByteSource& source, const PreemptChannelOptions& options) {
  PreemptChannelSummary summary;
  PageForwarder forwarder(options, summary);
  ParseOptions parse;
  parse.limits = options.limits;
  parse.live = options.live;
  parse.channel = RamChannel::kPostcopyPreempt;
  parse.channel_blocks = options.block_lengths;
  parse.observer = &forwarder;
  ParseResult parsed = ParseMigrationStream(source, parse);
  summary.eos_seen = parsed.summary.ram_eos_seen;
  summary.bytes = parsed.summary.bytes;
  return PreemptChannelResult{std::move(summary), std::move(parsed.findings)};
}

}  // namespace qmig
