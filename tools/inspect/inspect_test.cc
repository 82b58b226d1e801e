// The inspection building blocks: field formatting as analyze-migration.py
// does it, the field tree, RAM ranges, command payloads, and the records the
// inspector makes of a stream.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/parse_util.h"
#include "parser/testing/stream_writer.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/command_decode.h"
#include "tools/inspect/field_tree.h"
#include "tools/inspect/ram_map.h"
#include "tools/inspect/stream_inspector.h"

namespace qmig {
namespace {

using Json = nlohmann::ordered_json;

TEST(FormatFieldValueTest, IntegersAsTheScriptShowsThem) {
  const std::vector<uint8_t> minus_one = {0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(FormatFieldValue("int32", 4, minus_one), Json("0xffffffff (-1)"));
  EXPECT_EQ(FormatFieldValue("uint32", 4, minus_one), Json("0xffffffff"));
  // The script reads "uint8 equal" as signed.
  EXPECT_EQ(FormatFieldValue("uint8 equal", 1, std::vector<uint8_t>{0x80}), Json("0x80 (-128)"));
  const std::vector<uint8_t> small = {0, 0, 0, 0, 0, 0, 0x0f, 0xb1};
  EXPECT_EQ(FormatFieldValue("int64", 8, small), Json("0x0000000000000fb1"));
  const std::vector<uint8_t> min64 = {0x80, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(FormatFieldValue("int64", 8, min64), Json("0x8000000000000000 (-9223372036854775808)"));
}

TEST(FormatFieldValueTest, BoolsAndBytes) {
  EXPECT_EQ(FormatFieldValue("bool", 1, std::vector<uint8_t>{2}), Json(true));
  EXPECT_EQ(FormatFieldValue("bool", 1, std::vector<uint8_t>{0}), Json(false));
  EXPECT_EQ(FormatFieldValue("buffer", 3, std::vector<uint8_t>{0, 0xab, 7}), Json("00 ab 07"));
  EXPECT_EQ(FormatFieldValue("unused_buffer", 0, {}), Json(""));
  EXPECT_EQ(FormatFieldValue("buffer", 1 << 20, {}), Json("(1048576 bytes, not shown)"));
}

VmstateFieldView View(const char* name, const char* type, std::optional<uint64_t> index,
                      const std::vector<uint8_t>& bytes) {
  return VmstateFieldView{name, name, type, index, 0, bytes.size(), bytes};
}

TEST(FieldTreeBuilderTest, ArraysStructsAndSubsections) {
  FieldTreeBuilder builder;
  const std::vector<uint8_t> one = {1}, two = {2}, zero4 = {0, 0, 0, 0};
  builder.OnField(View("regs", "uint8", 0, one));
  builder.OnField(View("regs", "uint8", 1, two));
  builder.OnStructBegin(View("dev", "struct", std::nullopt, {}));
  builder.OnField(View("irq", "int32", std::nullopt, zero4));
  builder.OnStructEnd();
  builder.OnSubsectionBegin("dev/extra", 1, 0);
  builder.OnField(View("flag", "bool", std::nullopt, one));
  builder.OnSubsectionEnd();
  EXPECT_EQ(builder.Take().dump(),
            R"({"regs":["0x01","0x02"],"dev":{"irq":"0x00000000"},"dev/extra":{"flag":true}})");
  EXPECT_EQ(builder.Take().dump(), "{}");  // Take() starts afresh
}

TEST(FieldTreeBuilderTest, AnalyzeStyleShowsNonStructContainersAsBytes) {
  const std::vector<uint8_t> mant = {0, 0, 0, 0, 0, 0, 0, 1}, exp = {0x40, 0x01};
  for (FieldTreeStyle style : {FieldTreeStyle::kNested, FieldTreeStyle::kAnalyzeMigration}) {
    FieldTreeBuilder builder(style);
    builder.OnStructBegin(View("tmp", "tmp", std::nullopt, {}));
    builder.OnField(View("tmp_mant", "uint64", std::nullopt, mant));
    builder.OnField(View("tmp_exp", "uint16", std::nullopt, exp));
    builder.OnStructEnd();
    EXPECT_EQ(builder.Take().dump(),
              style == FieldTreeStyle::kNested
                  ? R"({"tmp":{"tmp_mant":"0x0000000000000001","tmp_exp":"0x4001"}})"
                  : R"({"tmp":"00 00 00 00 00 00 00 01 40 01"})");
  }
}

TEST(FieldTreeBuilderTest, BodyCutShortStillGivesATree) {
  FieldTreeBuilder builder;
  builder.OnStructBegin(View("dev", "struct", std::nullopt, {}));
  builder.OnField(View("a", "uint8", std::nullopt, {7}));
  EXPECT_EQ(builder.Take().dump(), R"({"dev":{"a":"0x07"}})");
}

TEST(RangeListTest, CoalescesAndCaps) {
  RangeList list(2);
  list.Add(0, 4096, PageKind::kZero);
  list.Add(4096, 4096, PageKind::kZero);
  list.Add(8192, 4096, PageKind::kNormal);
  list.Add(0, 4096, PageKind::kNormal);  // not contiguous: a third range, dropped
  EXPECT_EQ(list.ToJson().dump(), R"([[0,8192,"zero"],[8192,12288,"normal"]])");
  EXPECT_EQ(list.dropped(), 1u);
}

TEST(RamMapTest, LastKindPerPageWithinTheBudget) {
  RamMap map(/*max_mapped_bytes=*/3 * 4096);
  map.DeclareBlock("small", 2 * 4096, 4096);
  map.DeclareBlock("big", 1 << 20, 4096);  // over what is left: counted only
  map.AddPage("small", 0, RamRecordKind::kZero);
  map.AddPage("small", 0, RamRecordKind::kPage);
  map.AddPage("big", 4096, RamRecordKind::kPage);
  ASSERT_EQ(map.blocks().size(), 2u);
  EXPECT_EQ(map.Ranges(map.blocks()[0], 10).ToJson().dump(), R"([[0,4096,"normal"]])");
  EXPECT_EQ(map.blocks()[0].records[static_cast<size_t>(PageKind::kZero)], 1u);
  EXPECT_TRUE(map.blocks()[1].pages.empty());
  EXPECT_EQ(map.blocks()[1].records[static_cast<size_t>(PageKind::kNormal)], 1u);
}

TEST(CommandDecodeTest, DiscardSkipsTheNulAfterTheName) {
  std::vector<uint8_t> payload = StreamWriter::RamDiscardPayload("pc.ram", {{4096, 8192}});
  Json decoded = DecodeCommandPayload(CommandKind::kPostcopyRamDiscard, payload);
  EXPECT_EQ(decoded["ranges"].dump(), "[[4096,8192]]");
  EXPECT_EQ(DescribeCommandPayload(CommandKind::kPostcopyRamDiscard, decoded),
            "pc.ram: 1 ranges, 2 pages");
  // A payload cut short decodes as far as it goes.
  payload.resize(payload.size() - 3);
  EXPECT_EQ(DecodeCommandPayload(CommandKind::kPostcopyRamDiscard, payload)["range_count"], 0);
}

class Collect final : public RecordSink {
 public:
  void OnRecord(const Record& record) override { lines.push_back(Line(record)); }
  void OnPackageBegin(const Record& record) override { lines.push_back("begin " + Line(record)); }
  void OnPackageEnd(const Record& record) override { lines.push_back("end " + Line(record)); }
  static std::string Line(const Record& r) {
    return absl::StrCat(RecordKindName(r.kind), "@", r.offset, "+", r.size, " d", r.depth,
                        r.complete ? "" : " incomplete");
  }
  std::vector<std::string> lines;
};

TEST(StreamInspectorTest, RecordsTileTheStreamWithPackagesNested) {
  StreamWriter inner;
  inner.Listen().Run();
  StreamWriter w;
  w.Header().Configuration({"pc-i440fx-7.2"}).OpenReturnPath().Advise();
  w.SectionStart(2, "ram", 0, 4).RamMemSize({{"pc.ram", 1 << 20}}).RamEos().Footer(2);
  w.SectionPart(2)
      .RamZero("pc.ram", 0)
      .RamPageFilled(kContinueBlock, 4096, 0xa5)
      .RamEos()
      .Footer(2);
  w.SectionEnd(2).RamEos().Footer(2);
  w.Packaged(inner).Eof();
  std::vector<uint8_t> bytes = w.Take();

  Collect sink;
  StreamInspector inspector(&sink, uint64_t{1} << 30);
  ParseOptions options = FixedProfile();
  options.observer = &inspector;
  ParseResult result = ParseBytes(bytes, options);
  inspector.Finish(result);
  ASSERT_TRUE(result.valid()) << FormatFindings(result);

  // Each top-level record starts where the one before ended.
  std::vector<std::string> expected_kinds = {"header",  "configuration", "command", "command",
                                             "ram",     "ram",           "ram",     "begin",
                                             "command", "command",       "end",     "eof"};
  ASSERT_EQ(sink.lines.size(), expected_kinds.size());
  for (size_t i = 0; i < expected_kinds.size(); ++i) {
    EXPECT_EQ(sink.lines[i].rfind(expected_kinds[i], 0), 0u) << sink.lines[i];
  }
  EXPECT_EQ(sink.lines[0], "header@0+8 d0");
  EXPECT_NE(sink.lines[8].find(" d1"), std::string::npos) << "LISTEN is inside the package";
  EXPECT_EQ(sink.lines.back(), absl::StrCat("eof@", bytes.size() - 1, "+1 d0"));
  const RamMap::Block& block = inspector.ram().blocks().at(0);
  EXPECT_EQ(inspector.ram().Ranges(block, 10).ToJson().dump(),
            R"([[0,4096,"zero"],[4096,8192,"normal"]])");
}

TEST(StreamInspectorTest, CutStreamLeavesTheOpenSectionIncomplete) {
  StreamWriter w;
  w.Header().Configuration({"pc-i440fx-7.2"});
  w.SectionStart(2, "ram", 0, 4).RamMemSize({{"pc.ram", 1 << 20}}).RamEos().Footer(2);
  w.SectionPart(2).RamPageFilled("pc.ram", 0, 1);
  std::vector<uint8_t> bytes = w.Take();
  bytes.resize(bytes.size() - 100);
  Collect sink;
  StreamInspector inspector(&sink, uint64_t{1} << 30);
  ParseOptions options = FixedProfile();
  options.observer = &inspector;
  ParseResult result = ParseBytes(bytes, options);
  inspector.Finish(result);
  EXPECT_FALSE(result.valid());
  ASSERT_FALSE(sink.lines.empty());
  EXPECT_NE(sink.lines.back().find("incomplete"), std::string::npos) << sink.lines.back();
}

TEST(AnalyzeMigrationTextTest, MatchesPythonsEncoder) {
  Json value = Json::object();
  value["ram (2)"] = {{"section sizes", Json::object()}};
  value["a"] = Json::array({"x\xc3\xa9", true});
  EXPECT_EQ(AnalyzeMigrationText(value),
            "{\n    \"ram (2)\": {\n        \"section sizes\": {}\n    },\n    \"a\": [\n"
            "        \"x\\u00e9\",\n        true\n    ]\n}\n");
}

}  // namespace
}  // namespace qmig
