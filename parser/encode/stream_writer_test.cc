#include "parser/encode/stream_writer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/parse_util.h"
#include "parser/vmstate/description.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

std::vector<uint8_t> V(std::initializer_list<int> values) {
  std::vector<uint8_t> out;
  for (int v : values) out.push_back(static_cast<uint8_t>(v));
  return out;
}

// What the writer tallied must be what the parser counted.
void ExpectSummaryMatchesTally(const StreamSummary& summary, const WrittenTally& tally) {
  EXPECT_EQ(summary.sections, tally.sections);
  EXPECT_EQ(summary.commands, tally.commands);
  EXPECT_EQ(summary.ram_records, tally.ram_records);
  EXPECT_EQ(summary.packages, tally.packages);
  EXPECT_EQ(summary.pings, tally.pings);
  ASSERT_EQ(summary.ram_blocks.size(), tally.pages.size());
  for (const RamBlockSummary& block : summary.ram_blocks) {
    SCOPED_TRACE(block.name);
    auto it = tally.pages.find(block.name);
    ASSERT_NE(it, tally.pages.end());
    EXPECT_EQ(block.zero_pages, it->second.zero);
    EXPECT_EQ(block.normal_pages, it->second.normal);
    EXPECT_EQ(block.xbzrle_pages, it->second.xbzrle);
    EXPECT_EQ(block.compressed_pages, it->second.compressed);
    EXPECT_EQ(block.nonzero_fill_pages, it->second.nonzero_fill);
  }
}

TEST(StreamWriterTest, WritesBigEndianPrimitives) {
  StreamWriter w;
  w.U8(1).Be16(0x0203).Be32(0x04050607).Be64(0x08090a0b0c0d0e0full).CountedString("ab");
  EXPECT_EQ(w.bytes(), V({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 2, 'a', 'b'}));
}

TEST(StreamWriterTest, HeaderAndConfiguration) {
  StreamWriter w;
  std::array<uint8_t, 16> uuid{};
  uuid[15] = 0x42;
  w.Header().Configuration({"pc", 12, std::vector<std::string>{"x-ignore-shared"}, uuid});
  std::vector<uint8_t> expected = V({'Q', 'E', 'V', 'M', 0, 0, 0, 3, 0x07, 0, 0, 0, 2, 'p', 'c'});
  std::vector<uint8_t> page_bits = V({0x05, 30});
  page_bits.insert(page_bits.end(), kConfigTargetPageBits.begin(), kConfigTargetPageBits.end());
  for (int b : {0, 0, 0, 1, 0, 0, 0, 12}) page_bits.push_back(static_cast<uint8_t>(b));
  expected.insert(expected.end(), page_bits.begin(), page_bits.end());
  ASSERT_GE(w.size(), expected.size());
  EXPECT_EQ(std::vector<uint8_t>(w.bytes().begin(), w.bytes().begin() + expected.size()),
            expected);
  EXPECT_EQ(w.bytes().back(), 0x42);
}

TEST(StreamWriterTest, CommandNumbersComeFromTheProfile) {
  StreamWriter q72(ProfileId::kQemu72);
  q72.Packaged(std::vector<uint8_t>{});
  EXPECT_EQ(q72.bytes(), V({0x08, 0, 7, 0, 4, 0, 0, 0, 0}));
  StreamWriter v5(ProfileId::kV5Draft);
  v5.Packaged(std::vector<uint8_t>{});
  EXPECT_EQ(v5.bytes(), V({0x08, 0, 3, 0, 4, 0, 0, 0, 0}));
  StreamWriter q30(ProfileId::kQemu30);
  q30.RecvBitmap("a");
  EXPECT_EQ(q30.bytes(), V({0x08, 0, 9, 0, 2, 1, 'a'}));
  EXPECT_TRUE(q30.missing_commands().empty());
}

TEST(StreamWriterTest, MissingCommandIsWrittenAsInvalidAndRemembered) {
  StreamWriter w(ProfileId::kQemu72);
  w.SwitchoverStart();
  EXPECT_EQ(w.bytes(), V({0x08, 0, 0, 0, 0}));
  ASSERT_EQ(w.missing_commands().size(), 1u);
  EXPECT_EQ(w.missing_commands()[0], CommandKind::kSwitchoverStart);
}

TEST(StreamWriterTest, RamDiscardLengthIsThreePlusNamePlusSixteenPerRange) {
  StreamWriter w;
  w.RamDiscard("ab", {{0x1000, 0x2000}});
  ASSERT_EQ(w.size(), 5u + 3 + 2 + 16);
  EXPECT_EQ(w.bytes()[3], 0);
  EXPECT_EQ(w.bytes()[4], 3 + 2 + 16);
  EXPECT_EQ(std::vector<uint8_t>(w.bytes().begin() + 5, w.bytes().begin() + 10),
            V({0, 2, 'a', 'b', 0}));
}

TEST(StreamWriterTest, PackagedNestedWriterShiftsMarks) {
  StreamWriter inner;
  inner.Listen().Mark("inside").Run();
  StreamWriter w;
  w.Header().Mark("package").Packaged(inner);
  EXPECT_EQ(w.MarkOf("inside"), 8u + 9 + 5);
  EXPECT_EQ(w.tally().commands.at("POSTCOPY_LISTEN"), 1u);
  EXPECT_EQ(w.tally().commands.at("PACKAGED"), 1u);
  EXPECT_EQ(w.tally().packages, 1u);
}

TEST(StreamWriterTest, PageRecordWords) {
  StreamWriter w;
  w.RamZero("b", 0x3000, 7).RamZero(kContinueBlock, 0x4000);
  EXPECT_EQ(w.bytes(), V({0, 0, 0, 0, 0, 0, 0x30, 0x02, 1, 'b', 7,  //
                          0, 0, 0, 0, 0, 0, 0x40, 0x22, 0}));
  EXPECT_EQ(w.tally().pages.at("b").zero, 2u);
  EXPECT_EQ(w.tally().pages.at("b").nonzero_fill, 1u);
}

// A reference decoder written from the format description, to check the
// encoder independently of the parser.
std::vector<uint8_t> XbzrleApply(std::vector<uint8_t> page, const std::vector<uint8_t>& encoded) {
  size_t i = 0, d = 0;
  auto count = [&]() {
    uint32_t value = encoded[i] & 0x7f;
    if (encoded[i++] & 0x80) value |= uint32_t{encoded[i++]} << 7;
    return value;
  };
  while (i < encoded.size()) {
    d += count();
    uint32_t literal = count();
    for (uint32_t k = 0; k < literal; ++k) page[d++] = encoded[i++];
  }
  return page;
}

TEST(StreamWriterTest, XbzrleEncodeRoundTrips) {
  std::vector<uint8_t> old_page(kTargetPageSize, 0), page(kTargetPageSize, 0);
  page[0] = 1;
  for (size_t i = 200; i < 400; ++i) page[i] = static_cast<uint8_t>(i);
  page[4000] = 9;
  std::vector<uint8_t> encoded = XbzrleEncode(old_page, page);
  // First pair has a zero run of 0; 200 needs a two-byte count.
  EXPECT_EQ(encoded[0], 0);
  EXPECT_EQ(XbzrleApply(old_page, encoded), page);
  EXPECT_TRUE(XbzrleEncode(page, page).empty());
}

TEST(StreamWriterRoundTripTest, PrecopyStreamParsesCleanAndCountsMatch) {
  StreamWriter w = BuildPrecopyStream();
  ParseResult result = ParseBytes(w.bytes());
  EXPECT_TRUE(Errors(result).empty()) << FormatFindings(result);
  EXPECT_EQ(result.findings.warning_count(), 0u) << FormatFindings(result);
  const StreamSummary& s = result.summary;
  ExpectSummaryMatchesTally(s, w.tally());
  EXPECT_EQ(s.sections.at("START"), 1u);
  EXPECT_EQ(s.sections.at("FULL"), 3u);
  EXPECT_TRUE(s.commands.empty());
  EXPECT_EQ(s.machine, "pc-i440fx-7.2");
  EXPECT_EQ(s.file_version, 3u);
  EXPECT_EQ(s.footers, true);
  EXPECT_TRUE(s.eof_seen);
  EXPECT_TRUE(s.vmdesc_present);
  EXPECT_EQ(s.device_description_source, "trailer");
  EXPECT_EQ(s.devices_decoded, 3u);
  EXPECT_EQ(s.devices_unverified, 0u);
  EXPECT_EQ(s.device_fields, 9u);
  EXPECT_EQ(s.bytes, w.size());
  ASSERT_EQ(s.ram_blocks.size(), 2u);
  EXPECT_EQ(s.ram_blocks[0].name, "pc.ram");
  EXPECT_EQ(s.ram_blocks[0].length, 64u * 1024);
  EXPECT_EQ(s.ram_blocks[0].normal_pages, 2u);
  EXPECT_EQ(s.ram_blocks[0].zero_pages, 1u);
}

TEST(StreamWriterRoundTripTest, PostcopyStreamParsesCleanAndCountsMatch) {
  StreamWriter w = BuildPostcopyStream();
  absl::StatusOr<VmDescription> schema = ParseVmDescription(DescribeDevices(DefaultDevices()));
  ASSERT_TRUE(schema.ok()) << schema.status();
  ParseOptions options;
  options.schema = &*schema;
  ParseResult result = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(Errors(result).empty()) << FormatFindings(result);
  EXPECT_EQ(result.findings.warning_count(), 0u) << FormatFindings(result);
  const StreamSummary& s = result.summary;
  ExpectSummaryMatchesTally(s, w.tally());
  EXPECT_EQ(s.commands.at("POSTCOPY_RAM_DISCARD"), 2u);
  EXPECT_EQ(s.commands.at("PING"), 4u);
  EXPECT_EQ(s.pings, (std::vector<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(s.packages, 1u);
  EXPECT_EQ(s.postcopy, PostcopyState::kEnd);
  EXPECT_TRUE(s.return_path_opened);
  EXPECT_EQ(s.devices_decoded, 3u);
  EXPECT_EQ(s.device_description_source, "schema");
  EXPECT_FALSE(s.vmdesc_present);
  EXPECT_EQ(s.bytes, w.size());
}

TEST(StreamWriterRoundTripTest, PostcopyWithoutSchemaOnlyWarnsAboutDevices) {
  StreamWriter w = BuildPostcopyStream();
  ParseResult result = ParseBytes(w.bytes());
  EXPECT_TRUE(Errors(result).empty()) << FormatFindings(result);
  EXPECT_EQ(FindingsWithCode(result, FindingCode::kDeviceUnverified).size(), 3u)
      << FormatFindings(result);
  EXPECT_EQ(result.summary.devices_unverified, 3u);
}

TEST(StreamWriterRoundTripTest, EveryPageKindIsCountedPerBlock) {
  std::vector<uint8_t> page(kTargetPageSize, 0x11), changed = page;
  changed[10] = 0x99;
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(2, "ram", 0, 4).RamMemSize({{"a", 0x4000}, {"b", 0x2000}}).RamEos().Footer(2);
  w.SectionPart(2)
      .RamPage("a", 0, page)
      .RamXbzrle(kContinueBlock, 0, XbzrleEncode(page, changed))
      .RamCompressed(kContinueBlock, 0x1000, page)
      .RamZero("b", 0x1000)
      .RamZero(kContinueBlock, 0, 3)
      .RamEos()
      .Footer(2);
  w.SectionEnd(2).RamEos().Footer(2).Eof();
  ParseResult result = ParseBytes(w.bytes());
  // The only finding is the non-zero fill byte (and the absent trailer note).
  EXPECT_EQ(Errors(result).size(), 1u) << FormatFindings(result);
  EXPECT_NE(FindFinding(result, FindingCode::kRamZeroFill), nullptr) << FormatFindings(result);
  ExpectSummaryMatchesTally(result.summary, w.tally());
  EXPECT_EQ(result.summary.ram_blocks[0].xbzrle_pages, 1u);
  EXPECT_EQ(result.summary.ram_blocks[0].compressed_pages, 1u);
  EXPECT_EQ(result.summary.ram_blocks[1].nonzero_fill_pages, 1u);
}

}  // namespace
}  // namespace qmig
