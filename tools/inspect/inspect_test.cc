// The inspection building blocks: field formatting as analyze-migration.py
// does it, the field tree, RAM ranges, command payloads, and the records the
// inspector makes of a stream.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/command_decode.h"
#include "tools/inspect/dump_writers.h"
#include "tools/inspect/field_writer.h"
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

class StringOut final : public TextOut {
 public:
  void Write(absl::string_view text) override { text_.append(text.data(), text.size()); }
  std::string Take() { return std::move(text_); }

 private:
  std::string text_;
};

// Feeds the same body to a writer of each format.
void WriteBody(FieldWriter& writer) {
  const std::vector<uint8_t> one = {1}, two = {2}, zero4 = {0, 0, 0, 0};
  writer.OnField(View("regs", "uint8", 0, one));
  writer.OnField(View("regs", "uint8", 1, two));
  writer.OnStructBegin(View("dev", "struct", std::nullopt, {}));
  writer.OnField(View("irq", "int32", std::nullopt, zero4));
  writer.OnStructEnd();
  writer.OnStructBegin(View("empty", "struct", std::nullopt, {}));
  writer.OnStructEnd();
  writer.OnSubsectionBegin("dev/extra", 1, 0);
  writer.OnField(View("flag", "bool", std::nullopt, one));
  writer.OnSubsectionEnd();
}

TEST(FieldWriterTest, ArraysStructsAndSubsectionsInEachFormat) {
  StringOut out;
  FieldWriter json(FieldFormat::kJson, FieldTreeStyle::kNested);
  json.Begin(&out);
  WriteBody(json);
  json.End();
  EXPECT_EQ(
      out.Take(),
      R"({"regs":["0x01","0x02"],"dev":{"irq":"0x00000000"},"empty":{},"dev/extra":{"flag":true}})");
  EXPECT_EQ(json.values(), 4u);

  FieldWriter pretty(FieldFormat::kPrettyJson, FieldTreeStyle::kNested);
  pretty.Begin(&out, /*depth=*/1);
  WriteBody(pretty);
  pretty.End();
  EXPECT_EQ(out.Take(),
            "{\n        \"regs\": [\n            \"0x01\",\n            \"0x02\"\n        ],\n"
            "        \"dev\": {\n            \"irq\": \"0x00000000\"\n        },\n"
            "        \"empty\": {},\n"
            "        \"dev/extra\": {\n            \"flag\": true\n        }\n    }");

  FieldWriter text(FieldFormat::kText, FieldTreeStyle::kNested);
  text.Begin(&out, 0, "  ");
  WriteBody(text);
  text.End();
  EXPECT_EQ(out.Take(),
            "  regs[0] = 0x01\n  regs[1] = 0x02\n  dev.irq = 0x00000000\n"
            "  dev/extra.flag = true\n");
}

TEST(FieldWriterTest, PrettyJsonEqualsTheTreeDump) {
  // The streamed pretty form equals what nlohmann (and Python) print for the
  // same tree.
  StringOut out;
  FieldWriter pretty(FieldFormat::kPrettyJson, FieldTreeStyle::kNested);
  pretty.Begin(&out);
  WriteBody(pretty);
  pretty.End();
  Json tree = Json::parse(
      R"({"regs":["0x01","0x02"],"dev":{"irq":"0x00000000"},"empty":{},"dev/extra":{"flag":true}})");
  EXPECT_EQ(out.Take() + "\n", AnalyzeMigrationText(tree));
}

TEST(FieldWriterTest, AnalyzeStyleShowsNonStructContainersAsBytes) {
  const std::vector<uint8_t> mant = {0, 0, 0, 0, 0, 0, 0, 1}, exp = {0x40, 0x01};
  for (FieldTreeStyle style : {FieldTreeStyle::kNested, FieldTreeStyle::kAnalyzeMigration}) {
    StringOut out;
    FieldWriter writer(FieldFormat::kJson, style);
    writer.Begin(&out);
    writer.OnStructBegin(View("tmp", "tmp", std::nullopt, {}));
    writer.OnField(View("tmp_mant", "uint64", std::nullopt, mant));
    writer.OnStructBegin(View("inner", "struct", std::nullopt, {}));
    writer.OnField(View("tmp_exp", "uint16", std::nullopt, exp));
    writer.OnStructEnd();
    writer.OnStructEnd();
    writer.End();
    EXPECT_EQ(out.Take(),
              style == FieldTreeStyle::kNested
                  ? R"({"tmp":{"tmp_mant":"0x0000000000000001","inner":{"tmp_exp":"0x4001"}}})"
                  : R"({"tmp":"00 00 00 00 00 00 00 01 40 01"})");
  }
}

TEST(FieldWriterTest, BodyCutShortIsClosed) {
  for (FieldFormat format : {FieldFormat::kJson, FieldFormat::kPrettyJson}) {
    StringOut out;
    FieldWriter writer(format, FieldTreeStyle::kAnalyzeMigration);
    writer.Begin(&out);
    writer.OnStructBegin(View("dev", "struct", std::nullopt, {}));
    writer.OnField(View("a", "uint8", 0, {7}));
    writer.OnStructBegin(View("tmp", "tmp", std::nullopt, {}));
    writer.OnField(View("b", "uint8", std::nullopt, {8}));
    writer.End();
    Json parsed = Json::parse(out.Take());
    EXPECT_EQ(parsed.dump(), R"({"dev":{"a":["0x07"],"tmp":"08"}})");
  }
}

TEST(FieldWriterTest, NamesFromTheDescriptionAreEscaped) {
  const std::vector<uint8_t> one = {1};
  const std::string name = "a\x1b[31m\"\x07";
  StringOut out;
  FieldWriter json(FieldFormat::kJson, FieldTreeStyle::kNested);
  json.Begin(&out);
  json.OnField(View(name.c_str(), "uint8", std::nullopt, one));
  json.End();
  std::string text = out.Take();
  EXPECT_EQ(Json::parse(text).begin().key(), name);
  for (char c : text) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << text;

  FieldWriter lines(FieldFormat::kText, FieldTreeStyle::kNested);
  lines.Begin(&out);
  lines.OnField(View(name.c_str(), "uint8", std::nullopt, one));
  lines.End();
  EXPECT_EQ(out.Take(), "a\\x1b[31m\\\"\\x07 = 0x01\n");
}

TEST(FieldWriterTest, LongArraysStreamOut) {
  // A million elements: written in pieces as they come, not kept.
  class Counting final : public TextOut {
   public:
    void Write(absl::string_view text) override {
      bytes += text.size();
      largest = std::max(largest, text.size());
    }
    size_t bytes = 0, largest = 0;
  } out;
  FieldWriter writer(FieldFormat::kJson, FieldTreeStyle::kNested);
  writer.Begin(&out);
  const std::vector<uint8_t> one = {1};
  for (uint64_t i = 0; i < 1000000; ++i) writer.OnField(View("a", "uint8", i, one));
  writer.End();
  EXPECT_EQ(out.bytes, std::string(R"({"a":[)").size() + 1000000 * 7 - 1 + 2);
  EXPECT_LT(out.largest, size_t{1} << 20);
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
            "pc.ram: 1 range, 2 pages");
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

TEST(WritePrettyJsonTest, EqualsTheTreeDumpWithoutATree) {
  const std::string text =
      R"({"page_size":4096,"devices":[{"name":"cpu","fields":[],"x":{},"f":1.5,"n":null,)"
      R"("neg":-3,"u":"caf\u00e9\u001b","t":true}],"e":[]})";
  StringOut out;
  ASSERT_TRUE(WritePrettyJson(text, &out).ok());
  EXPECT_EQ(out.Take(), AnalyzeMigrationText(Json::parse(text)));
  EXPECT_FALSE(WritePrettyJson("{\"a\": [1,", &out).ok());
  EXPECT_FALSE(WritePrettyJson(std::string(100, '[') + std::string(100, ']'), &out).ok());
}

TEST(AnalyzeMigrationWriterTest, SectionsInOrderWithSizesAndFields) {
  StringOut out;
  AnalyzeMigrationWriter writer(&out);
  Record ram;
  ram.kind = RecordKind::kRam;
  ram.details = {{"type", "START"}, {"section_id", 2}, {"name", "ram"}};
  ram.details["mem_size"] = Json::array({{{"name", "pc.ram"}, {"length", 4096}}});
  writer.OnRecord(ram);
  Record device;
  device.kind = RecordKind::kDevice;
  device.offset = 100;
  device.details = {{"type", "FULL"}, {"section_id", 3}, {"name", "timer"}};
  VmstateFieldVisitor* fields = writer.OnDeviceFields(device);
  ASSERT_NE(fields, nullptr);
  fields->OnField(View("a", "uint8", std::nullopt, {1}));
  writer.OnRecord(device);
  Record undecoded = device;
  undecoded.offset = 200;
  undecoded.details["section_id"] = 4;
  writer.OnRecord(undecoded);
  writer.Finish();
  Json want = Json::object();
  want["ram (2)"] = {{"section sizes", {{"pc.ram", "0x0000000000001000"}}}};
  want["timer (3)"] = {{"a", "0x01"}};
  want["timer (4)"] = Json::object();
  EXPECT_EQ(out.Take(), AnalyzeMigrationText(want));

  AnalyzeMigrationWriter empty(&out);
  empty.Finish();
  EXPECT_EQ(out.Take(), "{}\n");
}

}  // namespace
}  // namespace qmig
