// ParseVmstateDump: the shape QEMU's -dump-vmstate writes, and what it must
// refuse.
#include "parser/vmstate/vmstate_dump.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// As QEMU 8.1 on writes it: the machine, then one entry per device type with
// its vmsd; a struct field with its nested vmsd, an array with "num", a
// field with an exists() callback, subsections; two types sharing a vmsd.
constexpr char kDump[] = R"({
  "vmschkmachine": {"Name": "pc-i440fx-7.2"},
  "hpet": {"Name": "hpet", "version_id": 2, "minimum_version_id": 1,
    "Description": {"name": "hpet", "version_id": 2, "minimum_version_id": 1,
      "Fields": [
        {"field": "config", "version_id": 0, "field_exists": false, "size": 8},
        {"field": "num_timers_save", "version_id": 2, "field_exists": false, "size": 1},
        {"field": "regs", "version_id": 0, "field_exists": false, "size": 4, "num": 16},
        {"field": "opt", "version_id": 0, "field_exists": true, "size": 2},
        {"field": "timer", "version_id": 0, "field_exists": false, "size": 80,
         "Description": {"name": "hpet_timer", "version_id": 1, "minimum_version_id": 1,
           "Fields": [{"field": "tn", "version_id": 0, "field_exists": false, "size": 1}]}}],
      "Subsections": [
        {"name": "hpet/offset", "version_id": 1, "minimum_version_id": 1,
         "Fields": [{"field": "hpet_offset", "version_id": 0, "field_exists": false,
                     "size": 8}]}]}},
  "piix3-ide": {"Name": "piix3-ide", "version_id": 3, "minimum_version_id": 0,
    "Description": {"name": "ide", "version_id": 3, "minimum_version_id": 0}},
  "piix4-ide": {"Name": "piix4-ide", "version_id": 3, "minimum_version_id": 0,
    "Description": {"name": "ide", "version_id": 3, "minimum_version_id": 0}}
})";

TEST(VmstateDumpTest, ParsesQemuShapedDump) {
  absl::StatusOr<VmstateDump> dump = ParseVmstateDump(kDump);
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_EQ(dump->machine(), "pc-i440fx-7.2");
  ASSERT_EQ(dump->devices().size(), 3u);

  const DumpDevice* hpet = dump->FindType("hpet");
  ASSERT_NE(hpet, nullptr);
  EXPECT_EQ(hpet->vmsd.name, "hpet");
  EXPECT_EQ(hpet->vmsd.version_id, 2u);
  EXPECT_EQ(hpet->vmsd.minimum_version_id, 1u);
  ASSERT_EQ(hpet->vmsd.fields.size(), 5u);
  EXPECT_EQ(hpet->vmsd.fields[1].name, "num_timers_save");
  EXPECT_EQ(hpet->vmsd.fields[1].version_id, 2u);
  EXPECT_EQ(hpet->vmsd.fields[2].num, 16u);
  EXPECT_FALSE(hpet->vmsd.fields[0].num.has_value());
  EXPECT_TRUE(hpet->vmsd.fields[3].conditional);
  EXPECT_FALSE(hpet->vmsd.fields[0].conditional);
  ASSERT_NE(hpet->vmsd.fields[4].sub, nullptr);
  EXPECT_EQ(hpet->vmsd.fields[4].sub->name, "hpet_timer");
  EXPECT_EQ(hpet->vmsd.fields[4].sub->fields.size(), 1u);
  ASSERT_NE(hpet->vmsd.FindSubsection("hpet/offset"), nullptr);
  EXPECT_EQ(hpet->vmsd.FindSubsection("hpet/offset")->fields[0].size, 8u);
  EXPECT_EQ(hpet->vmsd.FindSubsection("hpet/rtc_irq_level"), nullptr);

  std::vector<const DumpDevice*> ide = dump->FindVmsd("ide");
  ASSERT_EQ(ide.size(), 2u);
  EXPECT_EQ(ide[0]->type, "piix3-ide");
  EXPECT_EQ(ide[1]->type, "piix4-ide");
  EXPECT_TRUE(dump->FindVmsd("cpu").empty());
  EXPECT_EQ(dump->FindType("cpu"), nullptr);
}

// QEMU 7.2 writes no "num"; fields and subsections may be absent.
TEST(VmstateDumpTest, MinimalEntries) {
  absl::StatusOr<VmstateDump> dump = ParseVmstateDump(R"({"vmschkmachine": {"Name": "m"},
      "dma": {"Name": "dma", "version_id": 1, "minimum_version_id": 1,
              "Description": {"name": "dma", "version_id": 1, "minimum_version_id": 1}}})");
  ASSERT_TRUE(dump.ok()) << dump.status();
  ASSERT_EQ(dump->devices().size(), 1u);
  EXPECT_TRUE(dump->devices()[0].vmsd.fields.empty());
  EXPECT_TRUE(dump->devices()[0].vmsd.subsections.empty());
}

void ExpectRefused(const std::string& json, absl::string_view words) {
  absl::StatusOr<VmstateDump> dump = ParseVmstateDump(json);
  ASSERT_FALSE(dump.ok()) << json;
  EXPECT_TRUE(absl::StrContains(dump.status().message(), words)) << dump.status();
}

TEST(VmstateDumpTest, RefusesWhatIsNotADump) {
  ExpectRefused("[]", "not an object");
  ExpectRefused("{\"devices\": []}", "vmschkmachine");
  ExpectRefused("{\"vmschkmachine\": {}}", "\"Name\"");
  ExpectRefused("{\"vmschkmachine\": {\"Name\": \"m\"}, \"x\": 1}", "'x': entry is not an object");
  ExpectRefused("{\"vmschkmachine\": {\"Name\": \"m\"}, \"x\": {}}", "\"Description\"");
  ExpectRefused(R"({"vmschkmachine": {"Name": "m"}, "x": {"Description":
      {"name": "x", "version_id": -1, "minimum_version_id": 0}}})",
                "version_id");
  ExpectRefused(R"({"vmschkmachine": {"Name": "m"}, "x": {"Description":
      {"name": "x", "version_id": 1, "minimum_version_id": 0,
       "Fields": [{"field": "f", "version_id": 0, "size": "4"}]}}})",
                "'x'.Fields[0] 'f': \"size\"");
  ExpectRefused(R"({"vmschkmachine": {"Name": "m"}, "x": {"Description":
      {"name": "x", "version_id": 1, "minimum_version_id": 0, "Subsections": {}}}})",
                "\"Subsections\" is not an array");
  ExpectRefused("{\"vmschkmachine\": ", "not valid JSON");
}

TEST(VmstateDumpTest, NestingAndSizeAreBounded) {
  // Structs nested beyond the JSON nesting limit.
  std::string deep = "{\"vmschkmachine\": {\"Name\": \"m\"}, \"x\": {\"Description\": ";
  std::string tail;
  for (int i = 0; i < kMaxDescriptionNesting; ++i) {
    deep += R"({"name": "s", "version_id": 1, "minimum_version_id": 1, "Fields": [)"
            R"({"field": "f", "version_id": 0, "size": 1, "Description": )";
    tail += "}]}";
  }
  deep += R"({"name": "s", "version_id": 1, "minimum_version_id": 1})" + tail + "}}";
  ExpectRefused(deep, "nests deeper");

  std::string big(kMaxVmstateDumpBytes + 1, ' ');
  ExpectRefused(big, "over the limit");
}

}  // namespace
}  // namespace qmig
