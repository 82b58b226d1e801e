// The postcopy preempt channel: postcopy RAM records with their own CONTINUE
// state, ended by EOS.
#include "parser/preempt_channel.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/encode/stream_writer.h"
#include "parser/wire/byte_source.h"

namespace qmig {
namespace {

struct Seen {
  std::vector<std::string> pages;
  PreemptChannelResult result{PreemptChannelSummary{}, FindingList()};
};

Seen Parse(const std::vector<uint8_t>& bytes) {
  Seen seen;
  PreemptChannelOptions options;
  options.block_lengths = {{"pc.ram", 1 << 20}};
  options.on_page = [&seen](absl::string_view block, uint64_t offset, RamRecordKind kind,
                            absl::Span<const uint8_t> page, uint64_t stream_offset) {
    seen.pages.push_back(absl::StrCat(block, "@", offset,
                                      kind == RamRecordKind::kZero ? " zero" : " page", " ",
                                      page.size(), " at ", stream_offset));
  };
  MemorySource source(bytes);
  seen.result = ParsePreemptChannel(source, options);
  return seen;
}

bool Has(const Seen& seen, FindingCode code) { return seen.result.findings.HasCode(code); }

TEST(PreemptChannelTest, PagesThenEos) {
  StreamWriter w;
  w.RamPageFilled("pc.ram", 0x1000, 7).RamZero(kContinueBlock, 0x2000).RamEos();
  Seen seen = Parse(w.bytes());
  EXPECT_TRUE(seen.result.valid());
  EXPECT_TRUE(seen.result.summary.eos_seen);
  EXPECT_EQ(seen.result.summary.pages, 2u);
  EXPECT_EQ(seen.result.summary.zero_pages, 1u);
  ASSERT_EQ(seen.pages.size(), 2u);
  EXPECT_EQ(seen.pages[0], "pc.ram@4096 page 4096 at 0");
  EXPECT_EQ(seen.pages[1], absl::StrCat("pc.ram@8192 zero 1 at ", 8 + 1 + 6 + 4096));
  EXPECT_EQ(seen.result.summary.bytes, w.bytes().size());
}

// The channel's records follow the main stream's postcopy RAM rules, and
// give the same findings.
TEST(PreemptChannelTest, ContinueNeedsABlockNamedOnThisChannel) {
  StreamWriter w;
  w.RamZero(kContinueBlock, 0).RamEos();
  EXPECT_TRUE(Has(Parse(w.bytes()), FindingCode::kRamBadContinue));
}

TEST(PreemptChannelTest, UnknownBlockAndPageOutsideIt) {
  StreamWriter unknown;
  unknown.RamZero("vga.vram", 0).RamEos();
  EXPECT_TRUE(Has(Parse(unknown.bytes()), FindingCode::kRamUnknownBlock));
  StreamWriter past;
  past.RamZero("pc.ram", 1 << 20).RamEos();
  EXPECT_TRUE(Has(Parse(past.bytes()), FindingCode::kRamOffset));
}

TEST(PreemptChannelTest, OnlyPostcopyRecordKinds) {
  StreamWriter w;
  w.RamMemSize({{"pc.ram", 1 << 20}}).RamEos();
  Seen seen = Parse(w.bytes());
  EXPECT_TRUE(Has(seen, FindingCode::kRamPostcopyRecord));
  EXPECT_TRUE(seen.pages.empty());
}

TEST(PreemptChannelTest, NonZeroFillIsAnError) {
  StreamWriter w;
  w.RamZero("pc.ram", 0, 0x5a).RamEos();
  EXPECT_TRUE(Has(Parse(w.bytes()), FindingCode::kRamZeroFill));
}

TEST(PreemptChannelTest, EndsWithoutEosAtARecordOrIsTruncatedInside) {
  // QEMU 8.0 and later close the channel without EOS.
  StreamWriter w;
  w.RamPageFilled("pc.ram", 0, 1);
  std::vector<uint8_t> bytes = w.Take();
  Seen whole = Parse(bytes);
  EXPECT_TRUE(whole.result.valid());
  EXPECT_FALSE(whole.result.summary.eos_seen);
  EXPECT_EQ(whole.pages.size(), 1u);
  bytes.resize(bytes.size() - 10);
  Seen cut = Parse(bytes);
  EXPECT_TRUE(Has(cut, FindingCode::kTruncated));
  EXPECT_TRUE(cut.pages.empty());
}

TEST(PreemptChannelTest, BytesAfterEos) {
  StreamWriter w;
  w.RamEos().U8(0);
  EXPECT_TRUE(Has(Parse(w.bytes()), FindingCode::kPreemptBadRecord));
}

// Every page counted in the summary is handed to on_page, and the other way
// round, whether or not its block is known (found by preempt_fuzzer).
TEST(PreemptChannelTest, EveryCountedPageIsHandedOver) {
  const std::vector<std::vector<uint8_t>> inputs = {
      {0x07, 0x00, 0x00, 0x00, 0x00, 0x80, 0x10, 0x02, 0x00, 0x5a},
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x10, 0x02, 0x00, 0x00},
  };
  for (const std::vector<uint8_t>& input : inputs) {
    Seen seen = Parse(input);
    EXPECT_EQ(seen.result.summary.pages, seen.pages.size());
    EXPECT_EQ(seen.result.summary.pages, 1u);
    EXPECT_EQ(seen.result.summary.zero_pages, 1u);
    EXPECT_EQ(seen.result.summary.pages_by_block.at(""), 1u);
    EXPECT_TRUE(seen.result.findings.HasCode(FindingCode::kRamUnknownBlock));
  }
}

}  // namespace
}  // namespace qmig
