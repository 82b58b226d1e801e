// The RAM section decoder: record flags, block lookup, page offsets,
// MEM_SIZE, XBZRLE and compressed pages, postcopy mode and the profile
// evidence RAM flags give.
#include <zlib.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

constexpr uint32_t kRamId = 2;
const std::vector<RamBlockSpec> kBlocks = {{"pc.ram", 0x10000, {}, {}}, {"small", 0x1000, {}, {}}};

// header, CONFIGURATION, RAM START (MEM_SIZE of kBlocks), then a RAM PART
// whose records `part` writes (it must write the final EOS), then RAM END and
// EOF. *records is the offset of the PART's first record.
std::vector<uint8_t> RamStream(const std::function<void(StreamWriter&)>& part,
                               uint64_t* records = nullptr,
                               ProfileId profile = ProfileId::kQemu72) {
  StreamWriter w(profile);
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize(kBlocks).RamEos().Footer(kRamId);
  w.SectionPart(kRamId);
  if (records != nullptr) *records = w.size();
  part(w);
  w.Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  return w.Take();
}

const char kPartPath[] = "PART 'ram' #0";

std::vector<uint8_t> Page(uint8_t value) { return std::vector<uint8_t>(kTargetPageSize, value); }

// Offset of the first byte after a named page record's word and name.
uint64_t AfterName(uint64_t record, absl::string_view block) {
  return record + 8 + 1 + block.size();
}

TEST(RamTest, ValidPartParses) {
  ParseResult r = ParseBytes(RamStream([](StreamWriter& w) {
    w.RamPage("pc.ram", 0, Page(1)).RamZero(kContinueBlock, 0x1000).RamZero("small", 0).RamEos();
  }));
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 2u);
  EXPECT_EQ(r.summary.ram_blocks[0].normal_pages, 1u);
  EXPECT_EQ(r.summary.ram_blocks[0].zero_pages, 1u);
  EXPECT_EQ(r.summary.ram_blocks[1].zero_pages, 1u);
}

TEST(RamTest, UnknownFlag) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream([](StreamWriter& w) { w.RamWord(0x400).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamBadFlags}));
}

TEST(RamTest, ObsoleteFullFlag) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream([](StreamWriter& w) { w.RamWord(0x001).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).Path(kPartPath)));
}

TEST(RamTest, TwoPrimaryFlags) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream(
      [](StreamWriter& w) {
        w.RamWord(ram_flag::kZero | ram_flag::kPage).CountedString("pc.ram").U8(0).RamEos();
      },
      &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).Path(kPartPath)));
}

TEST(RamTest, ContinueWithoutPreviousBlock) {
  uint64_t at;
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamZero(kContinueBlock, 0).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadContinue, at).Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamBadContinue}));
}

TEST(RamTest, ContinueOnARecordWithoutPage) {
  uint64_t at;
  ParseResult r = ParseBytes(
      RamStream([](StreamWriter& w) { w.RamWord(ram_flag::kEos | ram_flag::kContinue); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).QemuAccepts().Path(kPartPath)));
}

TEST(RamTest, UnknownBlock) {
  uint64_t at;
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamZero("nope", 0x2000).RamEos(); }, &at));
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kRamUnknownBlock, at).Path("PART 'ram' #0 > nope@0x2000")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamUnknownBlock}));
}

TEST(RamTest, OffsetOutsideBlock) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream(
      [](StreamWriter& w) { w.RamZero("small", 0).RamZero(kContinueBlock, 0x1000).RamEos(); },
      &at));
  const uint64_t second = at + 8 + 1 + 5 + 1;
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kRamOffset, second).Path("PART 'ram' #0 > small@0x1000")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamOffset}));
}

TEST(RamTest, LastPageOfBlockIsInside) {
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamPage("pc.ram", 0xf000, Page(2)).RamEos(); }));
  EXPECT_TRUE(NoErrors(r));
}

TEST(RamTest, NonZeroFillQemuAccepts) {
  uint64_t at;
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamZero("pc.ram", 0, 1).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kRamZeroFill, at).QemuAccepts().Path("PART 'ram' #0 > pc.ram@0x0")));
  EXPECT_EQ(r.summary.ram_blocks[0].nonzero_fill_pages, 1u);
}

TEST(RamTest, EosWithOffsetBits) {
  uint64_t at;
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamWord(0x5000 | ram_flag::kEos); }, &at));
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kRamNonzeroOffset, at).QemuAccepts().Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamNonzeroOffset}));
}

TEST(RamTest, HookIsIgnoredByQemu) {
  uint64_t at;
  ParseResult r =
      ParseBytes(RamStream([](StreamWriter& w) { w.RamWord(ram_flag::kHook).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).QemuAccepts()));
}

TEST(RamTest, RamSectionVersionMustBeFour) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.SectionStart(kRamId, "ram", 0, 3).RamMemSize(kBlocks).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamVersion, at).Path("START 'ram' #0")));
}

TEST(RamTest, PageBeforeAnyMemSize) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4);
  uint64_t at = w.size();
  w.RamZero("pc.ram", 0).RamEos().Footer(kRamId).SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamUnknownBlock, at)));
}

// --- MEM_SIZE -----------------------------------------------------------------------

// A START whose payload is one MEM_SIZE record; *at is its offset.
std::vector<uint8_t> MemSizeStream(uint64_t total, const std::vector<RamBlockSpec>& blocks,
                                   uint64_t* at) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4);
  *at = w.size();
  w.RamMemSize(total, blocks).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  return w.Take();
}

TEST(MemSizeTest, ValidListIsSummarised) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x11000, kBlocks, &at));
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 2u);
  EXPECT_EQ(r.summary.ram_blocks[1].name, "small");
  EXPECT_EQ(r.summary.ram_blocks[1].length, 0x1000u);
  EXPECT_EQ(r.summary.ram_blocks[1].page_size, kTargetPageSize);
}

TEST(MemSizeTest, SumBelowTotalReadsOnIntoTheNextRecord) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x12000, kBlocks, &at));
  // The entries end after 0x11000 bytes; the loop then takes the EOS word
  // (whose first byte is 0) for an entry with an empty name.
  const uint64_t eos = at + 8 + (1 + 6 + 8) + (1 + 5 + 8);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMemSize, eos).Path("START 'ram' #0 > MEM_SIZE")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamMemSize}));
}

TEST(MemSizeTest, SumAboveTotal) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x11000, {{"pc.ram", 0x10000}, {"small", 0x2000}}, &at));
  const uint64_t second = at + 8 + (1 + 6 + 8);
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kRamMemSize, second).Path("START 'ram' #0 > MEM_SIZE")));
}

TEST(MemSizeTest, DuplicateBlock) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x2000, {{"a", 0x1000}, {"a", 0x1000}}, &at));
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kRamMemSize, at + 8 + 1 + 1 + 8).Path("START 'ram' #0 > MEM_SIZE")));
}

TEST(MemSizeTest, UnalignedLength) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x1000, {{"a", 0x1001}}, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMemSize, at + 8).PathHas("MEM_SIZE")));
}

TEST(MemSizeTest, EmptyBlockName) {
  uint64_t at;
  ParseResult r = ParseBytes(MemSizeStream(0x1000, {{"", 0x1000}}, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMemSize, at + 8)));
}

TEST(MemSizeTest, IgnoreSharedAddsTheGuestAddress) {
  StreamWriter w;
  w.Header().Configuration({"pc", {}, std::vector<std::string>{"x-ignore-shared"}, {}});
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", 0x10000, {}, 0}, {"pc.bios", 0x1000, {}, 0xfffff000}})
      .RamEos()
      .Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 2u);
  EXPECT_EQ(r.summary.ram_blocks[1].guest_address, 0xfffff000u);
}

TEST(MemSizeTest, PostcopyPageSizeFieldOfAHugePageBlock) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Advise(true, 0x201000, 4096);
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", 0x400000, 0x200000, {}}, {"pc.bios", 0x1000, {}, {}}})
      .RamEos()
      .Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 2u);
  EXPECT_EQ(r.summary.ram_blocks[0].page_size, 0x200000u);
  EXPECT_EQ(r.summary.ram_blocks[1].page_size, kTargetPageSize);
}

// --- mapped-ram ------------------------------------------------------------------------

// A mapped-ram file: the MEM_SIZE entry of a 16-page block is followed by its
// header (version, page size, bitmap and page offsets), the bitmap right
// after it and the page region at the next page boundary; `bitmap_word`
// marks the written pages. *pages_at is the page region's offset.
std::vector<uint8_t> MappedRamStream(uint64_t bitmap_word, uint64_t* pages_at, uint32_t version = 1,
                                     uint64_t* bitmap_at_out = nullptr) {
  constexpr uint64_t kLength = 16 * kTargetPageSize;
  StreamWriter w(ProfileId::kQemu111);
  w.Header().Configuration({"pc", {}, std::vector<std::string>{"mapped-ram"}, {}});
  w.SectionStart(kRamId, "ram", 0, 4);
  w.RamWord(kLength | ram_flag::kMemSize).CountedString("pc.ram").Be64(kLength);
  const uint64_t bitmap_at = w.size() + 4 + 3 * 8;
  if (bitmap_at_out != nullptr) *bitmap_at_out = bitmap_at;
  *pages_at = (bitmap_at + 8 + kTargetPageSize - 1) / kTargetPageSize * kTargetPageSize;
  w.Be32(version).Be64(kTargetPageSize).Be64(bitmap_at).Be64(*pages_at);
  uint8_t word[8];
  StoreLe64(word, bitmap_word);
  w.Bytes(word);
  w.Bytes(std::vector<uint8_t>(*pages_at - w.size(), 0));
  for (uint8_t page = 0; page < 16; ++page) w.Bytes(Page(page));
  w.RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  return w.Take();
}

TEST(MappedRamTest, WrittenPagesAreReadFromTheirOffsets) {
  uint64_t pages_at;
  ParseResult r = ParseBytes(MappedRamStream(0b1001, &pages_at));
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 1u);
  EXPECT_EQ(r.summary.ram_blocks[0].normal_pages, 2u);
}

TEST(MappedRamTest, ACutFileIsTruncatedInThePageRegion) {
  uint64_t pages_at;
  std::vector<uint8_t> bytes = MappedRamStream(1u << 5, &pages_at);
  bytes.resize(pages_at + 5 * kTargetPageSize + 100);
  ParseResult r = ParseBytes(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, bytes.size())));
}

TEST(MappedRamTest, ALaterHeaderVersionIsRefused) {
  uint64_t pages_at;
  ParseResult r = ParseBytes(MappedRamStream(1, &pages_at, /*version=*/2));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamMappedRam}));
}

// QEMU ignores them; qmig reports them as a writer's bug QEMU accepts.
TEST(MappedRamTest, BitsPastTheLastPageAreReportedAsAccepted) {
  uint64_t pages_at, bitmap_at;
  ParseResult r = ParseBytes(MappedRamStream(1u << 20 | 1, &pages_at, 1, &bitmap_at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMappedRam, bitmap_at).QemuAccepts()));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamMappedRam}));
  EXPECT_EQ(r.summary.ram_blocks[0].normal_pages, 1u);
}

// --- XBZRLE ----------------------------------------------------------------------------

TEST(XbzrleTest, ValidEncodingDecodes) {
  std::vector<uint8_t> old_page = Page(0), page = Page(0);
  page[5] = 1;
  for (size_t i = 300; i < 700; ++i) page[i] = 0x5a;
  std::vector<uint8_t> encoded = XbzrleEncode(old_page, page);
  ParseResult r = ParseBytes(
      RamStream([&](StreamWriter& w) { w.RamXbzrle("pc.ram", 0x3000, encoded).RamEos(); }));
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.ram_blocks[0].xbzrle_pages, 1u);
}

TEST(XbzrleTest, BadEncodingByte) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream(
      [](StreamWriter& w) {
        w.RamXbzrle("pc.ram", 0, {0, 1, 0xaa}, /*encoding=*/2).RamEos();
      },
      &at));
  EXPECT_TRUE(HasFinding(
      r,
      Want(FindingCode::kRamXbzrle, AfterName(at, "pc.ram")).Path("PART 'ram' #0 > pc.ram@0x0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamXbzrle}));
}

TEST(XbzrleTest, EncodedLengthOverAPage) {
  uint64_t at;
  std::vector<uint8_t> encoded(kTargetPageSize + 1, 1);
  ParseResult r = ParseBytes(
      RamStream([&](StreamWriter& w) { w.RamXbzrle("pc.ram", 0, encoded).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamXbzrle, AfterName(at, "pc.ram"))));
}

struct XbzrleCase {
  const char* name;
  std::vector<uint8_t> encoded;
  uint64_t bad_at;  // index of the offending count in the encoded data
};

class XbzrleEncodingTest : public ::testing::TestWithParam<XbzrleCase> {};

TEST_P(XbzrleEncodingTest, IsReportedAtTheBadCount) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream(
      [&](StreamWriter& w) { w.RamXbzrle("pc.ram", 0, GetParam().encoded).RamEos(); }, &at));
  // Data starts after the flag byte and the be16 length.
  const uint64_t data = AfterName(at, "pc.ram") + 3;
  EXPECT_TRUE(HasFinding(
      r,
      Want(FindingCode::kRamXbzrle, data + GetParam().bad_at).Path("PART 'ram' #0 > pc.ram@0x0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamXbzrle}));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, XbzrleEncodingTest,
    ::testing::Values(XbzrleCase{"ZeroRunZeroAfterFirst", {0, 1, 0xaa, 0, 1, 0xbb}, 3},
                      XbzrleCase{"LiteralRunZero", {5, 0, 0xaa}, 1},
                      XbzrleCase{"ThreeByteUleb", {0x80, 0x80, 0x01, 1, 0xaa}, 0},
                      XbzrleCase{"ThreeByteUlebLiteral", {0, 0x81, 0x81, 0x01, 0xaa}, 1},
                      XbzrleCase{"ZeroRunPastPage", {0x81, 0x20, 1, 0xaa}, 0},           // 4097
                      XbzrleCase{"LiteralRunPastPage", {0xff, 0x1f, 2, 0xaa, 0xbb}, 2},  // 4095 + 2
                      XbzrleCase{"LiteralRunPastBuffer", {0, 5, 0xaa}, 1},
                      XbzrleCase{"CountWithoutTwoBytesLeft", {0, 1, 0xaa, 3}, 3}),
    [](const ::testing::TestParamInfo<XbzrleCase>& info) { return info.param.name; });

TEST(XbzrleTest, RunsEndingExactlyAtPageEndAreValid) {
  ParseResult r = ParseBytes(RamStream([](StreamWriter& w) {
    w.RamXbzrle("pc.ram", 0, {0xff, 0x1f, 1, 0xaa}).RamEos();  // 4095 + 1
  }));
  EXPECT_TRUE(NoErrors(r));
}

// --- Compressed pages -------------------------------------------------------------------

TEST(CompressedTest, ValidPageInflates) {
  ParseResult r = ParseBytes(
      RamStream([](StreamWriter& w) { w.RamCompressed("pc.ram", 0x2000, Page(0x42)).RamEos(); }));
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.ram_blocks[0].compressed_pages, 1u);
}

TEST(CompressedTest, GarbageDoesNotInflate) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream(
      [](StreamWriter& w) {
        w.RamCompressedRaw("pc.ram", 0, {1, 2, 3, 4}).RamEos();
      },
      &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamCompress, AfterName(at, "pc.ram") + 4)
                                .Path("PART 'ram' #0 > pc.ram@0x0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamCompress}));
}

TEST(CompressedTest, ShortInflateQemuAccepts) {
  std::vector<uint8_t> half(kTargetPageSize / 2, 7);
  uLongf length = compressBound(half.size());
  std::vector<uint8_t> deflated(length);
  ASSERT_EQ(compress2(deflated.data(), &length, half.data(), half.size(), 1), Z_OK);
  deflated.resize(length);
  uint64_t at;
  ParseResult r = ParseBytes(
      RamStream([&](StreamWriter& w) { w.RamCompressedRaw("pc.ram", 0, deflated).RamEos(); }, &at));
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kRamCompress, AfterName(at, "pc.ram") + 4).QemuAccepts()));
}

TEST(CompressedTest, OverlongInflateIsAnError) {
  std::vector<uint8_t> big(2 * kTargetPageSize, 7);
  uLongf length = compressBound(big.size());
  std::vector<uint8_t> deflated(length);
  ASSERT_EQ(compress2(deflated.data(), &length, big.data(), big.size(), 1), Z_OK);
  deflated.resize(length);
  uint64_t at;
  ParseResult r = ParseBytes(
      RamStream([&](StreamWriter& w) { w.RamCompressedRaw("pc.ram", 0, deflated).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamCompress, AfterName(at, "pc.ram") + 4)));
}

TEST(CompressedTest, LengthOverCompressBound) {
  uint64_t at;
  std::vector<uint8_t> data(kMaxCompressedPage + 1, 0);
  ParseResult r = ParseBytes(
      RamStream([&](StreamWriter& w) { w.RamCompressedRaw("pc.ram", 0, data).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamCompress, AfterName(at, "pc.ram"))));
}

TEST(CompressedTest, UpstreamHasNoCompressedPages) {
  uint64_t at;
  ParseResult r = ParseBytes(
      RamStream([](StreamWriter& w) { w.RamCompressed("pc.ram", 0, Page(1)).RamEos(); }, &at),
      FixedProfile(ProfileId::kUpstream));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at)));
}

// --- Postcopy mode ---------------------------------------------------------------------

// A postcopy stream up to RUN; `after` writes the records of a RAM PART.
std::vector<uint8_t> AfterRunStream(const std::function<void(StreamWriter&)>& after, uint64_t* at) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Ping(1).Advise();
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize(kBlocks).RamEos().Footer(kRamId);
  StreamWriter package;
  package.Listen().Run();
  w.Packaged(package).Ping(4);
  w.SectionPart(kRamId);
  *at = w.size();
  after(w);
  w.Footer(kRamId).SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  return w.Take();
}

TEST(PostcopyRamTest, ZeroAndPageAreAccepted) {
  uint64_t at;
  ParseResult r = ParseBytes(AfterRunStream(
      [](StreamWriter& w) {
        w.RamPage("pc.ram", 0, Page(3)).RamZero(kContinueBlock, 0x1000).RamEos();
      },
      &at));
  EXPECT_TRUE(NoErrors(r));
}

TEST(PostcopyRamTest, APagePlacedTwiceIsAnError) {
  uint64_t at;
  ParseResult r = ParseBytes(AfterRunStream(
      [](StreamWriter& w) {
        w.RamPage("pc.ram", 0x2000, Page(3)).RamZero(kContinueBlock, 0x3000);
        w.RamZero(kContinueBlock, 0x2000).RamEos();
      },
      &at));
  // The third record: be64 + counted name + page, then be64 + fill byte.
  const uint64_t third = at + 8 + 1 + 6 + 4096 + 8 + 1;
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamPostcopyPageTwice, third).Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamPostcopyPageTwice}));
}

TEST(PostcopyRamTest, PagesPastTheTrackingLimitGoUncheckedWithANote) {
  ParseOptions options;
  options.limits.max_postcopy_tracked_words = 1;  // the run of pc.ram's page 0
  uint64_t at;
  ParseResult r =
      ParseBytes(AfterRunStream(
                     [](StreamWriter& w) {
                       w.RamZero("pc.ram", 0).RamZero("small", 0).RamZero(kContinueBlock, 0);
                       w.RamZero("pc.ram", 0).RamEos();
                     },
                     &at),
                 options);
  // Records: be64 + counted name + fill byte; under CONTINUE without the name.
  const uint64_t second = at + 8 + 1 + 6 + 1;
  const uint64_t fourth = second + (8 + 1 + 5 + 1) + (8 + 1);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamPostcopyUntracked, second)));
  // small's page 0 twice goes unseen; pc.ram's page 0 twice does not.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamPostcopyPageTwice, fourth)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamPostcopyPageTwice}));
}

TEST(PostcopyRamTest, OnlyPagesPlacedAfterListenCount) {
  // Before LISTEN a page may be sent any number of times. Whether a precopy
  // page is still present when postcopy sends it again depends on the
  // discards and on how the destination stored it: the emulator, which holds
  // the memory, judges that; the parser counts placements after LISTEN.
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Ping(1).Advise();
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize(kBlocks).RamEos().Footer(kRamId);
  w.SectionPart(kRamId).RamPage("pc.ram", 0, Page(1)).RamPage(kContinueBlock, 0, Page(2));
  w.RamEos().Footer(kRamId);
  StreamWriter package;
  package.Listen().Run();
  w.Packaged(package).Ping(4);
  w.SectionPart(kRamId).RamPage("pc.ram", 0, Page(3)).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  EXPECT_TRUE(NoErrors(ParseBytes(w.Take())));
}

TEST(PostcopyRamTest, XbzrleIsRejected) {
  uint64_t at;
  ParseResult r = ParseBytes(AfterRunStream(
      [](StreamWriter& w) {
        w.RamXbzrle("pc.ram", 0, {0, 1, 0xaa}).RamEos();
      },
      &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamPostcopyRecord, at).Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamPostcopyRecord}));
}

TEST(PostcopyRamTest, MemSizeAfterListenIsRejected) {
  uint64_t at;
  ParseResult r =
      ParseBytes(AfterRunStream([](StreamWriter& w) { w.RamMemSize(kBlocks).RamEos(); }, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamPostcopyRecord, at).Path(kPartPath)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamPostcopyRecord}));
}

// --- Profile evidence -------------------------------------------------------------------

TEST(RamProfileTest, MultifdFlushSelectsQemu82) {
  ParseResult r = ParseBytes(
      RamStream([](StreamWriter& w) { w.RamZero("pc.ram", 0).RamMultifdFlush().RamEos(); }));
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.profile, "qemu-8.2");
  EXPECT_TRUE(r.summary.profile_detected);
}

TEST(RamProfileTest, MultifdFlushIsUnknownToAFixedQemu72) {
  uint64_t at;
  ParseResult r = ParseBytes(RamStream([](StreamWriter& w) { w.RamMultifdFlush().RamEos(); }, &at),
                             FixedProfile());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, at).Path(kPartPath)));
}

TEST(RamProfileTest, CompressedPageKeepsQemu72) {
  ParseResult r = ParseBytes(
      RamStream([](StreamWriter& w) { w.RamCompressed("pc.ram", 0, Page(9)).RamEos(); }));
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.profile, "qemu-7.2");
}

// === Regressions ===========================================================================
// Regression tests of parser bugs found while writing these tests.

// Postcopy (ADVISE with RAM) + x-ignore-shared: a MEM_SIZE entry without the
// optional page-size field is followed by its be64 guest address. When that
// address looks like a page size (a power of two in 8 KiB..1 GiB, here
// 2 MiB), the parser takes it for the page size and then reads the next
// block's name as the address.
TEST(MemSizeTest, IgnoreSharedAddressThatLooksLikeAPageSize) {
  StreamWriter w;
  w.Header()
      .Configuration({"pc", {}, std::vector<std::string>{"x-ignore-shared"}, {}})
      .OpenReturnPath()
      .Advise();
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", 0x10000, {}, 0x200000}, {"pc.bios", 0x1000, {}, 0}})
      .RamEos()
      .Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  ASSERT_EQ(r.summary.ram_blocks.size(), 2u);
  EXPECT_EQ(r.summary.ram_blocks[0].page_size, kTargetPageSize);
  EXPECT_EQ(r.summary.ram_blocks[0].guest_address, 0x200000u);
  EXPECT_EQ(r.summary.ram_blocks[1].name, "pc.bios");
}

}  // namespace
}  // namespace qmig
