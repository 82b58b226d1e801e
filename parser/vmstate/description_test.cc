// ParseVmDescription: the VMDESCRIPTION JSON shapes QEMU writes, and the
// documents it must refuse.
#include "parser/vmstate/description.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace qmig {
namespace {

// A document in the shape QEMU writes: configuration, page size, a vmsd
// device with a compressed array, an indexed element, a struct, a vstruct
// and a subsection, and a legacy save_state device.
constexpr char kDocument[] = R"({
  "configuration": {"vmsd_name": "configuration", "version": 1,
                    "fields": [{"name": "len", "type": "uint32", "size": 4},
                               {"name": "name", "type": "buffer", "size": 13}]},
  "page_size": 4096,
  "devices": [
    {"name": "cpu", "instance_id": 0, "vmsd_name": "cpu", "version": 12,
     "fields": [
       {"name": "regs", "array_len": 16, "type": "uint64", "size": 8},
       {"name": "eip", "type": "uint64", "size": 8},
       {"name": "segs", "index": 0, "type": "struct", "size": 12,
        "struct": {"vmsd_name": "segment", "version": 1,
                   "fields": [{"name": "selector", "type": "uint32", "size": 4},
                              {"name": "base", "type": "uint64", "size": 8}]}},
       {"name": "v", "type": "vstruct", "size": 2, "vmsd_name": "inner", "version": 2,
        "fields": [{"name": "x", "type": "uint16", "size": 2}]}],
     "subsections": [{"vmsd_name": "cpu/async_pf_msr", "version": 1,
                      "fields": [{"name": "msr", "type": "uint64", "size": 8}]}]},
    {"name": "cpu", "instance_id": 1, "vmsd_name": "cpu", "version": 12, "fields": []},
    {"name": "slirp", "instance_id": 0, "size": 10,
     "fields": [{"name": "data", "size": 10, "type": "buffer"}]}
  ]
})";

TEST(DescriptionTest, ParsesQemuShapedDocument) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(kDocument);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->page_size, 4096u);
  ASSERT_TRUE(d->configuration.has_value());
  EXPECT_EQ(d->configuration->fields.size(), 2u);
  ASSERT_EQ(d->devices.size(), 3u);

  const DeviceDescription* cpu = d->Find("cpu", 0);
  ASSERT_NE(cpu, nullptr);
  EXPECT_FALSE(cpu->legacy);
  EXPECT_EQ(cpu->vmsd.version, 12u);
  ASSERT_EQ(cpu->vmsd.fields.size(), 4u);
  EXPECT_EQ(cpu->vmsd.fields[0].array_len, 16u);
  EXPECT_EQ(cpu->vmsd.fields[0].size, 8u);
  EXPECT_FALSE(cpu->vmsd.fields[1].index.has_value());
  EXPECT_EQ(cpu->vmsd.fields[2].index, 0u);
  ASSERT_NE(cpu->vmsd.fields[2].sub, nullptr);
  EXPECT_EQ(cpu->vmsd.fields[2].sub->vmsd_name, "segment");
  EXPECT_EQ(cpu->vmsd.fields[2].sub->fields.size(), 2u);
  ASSERT_NE(cpu->vmsd.fields[3].sub, nullptr);  // vstruct: keys inline
  EXPECT_EQ(cpu->vmsd.fields[3].sub->vmsd_name, "inner");
  EXPECT_EQ(cpu->vmsd.fields[3].sub->version, 2u);
  ASSERT_EQ(cpu->vmsd.subsections.size(), 1u);
  EXPECT_EQ(cpu->vmsd.subsections[0].vmsd_name, "cpu/async_pf_msr");

  EXPECT_NE(d->Find("cpu", 1), nullptr);
  EXPECT_EQ(d->Find("cpu", 2), nullptr);
  const DeviceDescription* slirp = d->Find("slirp", 0);
  ASSERT_NE(slirp, nullptr);
  EXPECT_TRUE(slirp->legacy);
  ASSERT_EQ(slirp->vmsd.fields.size(), 1u);
  EXPECT_EQ(slirp->vmsd.fields[0].size, 10u);
}

TEST(DescriptionTest, FieldWithoutTypeIsUnknown) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      R"({"devices":[{"name":"d","instance_id":0,"vmsd_name":"d","version":1,
          "fields":[{"name":"f","size":3}]}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->devices[0].vmsd.fields[0].type, "unknown");
}

// Each document is refused, and the message names what is wrong.
struct BadDocument {
  const char* name;
  std::string json;
  const char* message_part;
};

class BadDescriptionTest : public ::testing::TestWithParam<BadDocument> {};

TEST_P(BadDescriptionTest, IsRefused) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(GetParam().json);
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(absl::StrContains(d.status().message(), GetParam().message_part)) << d.status();
}

std::string Device(const std::string& fields) {
  return absl::StrCat(R"({"devices":[{"name":"d","instance_id":0,"vmsd_name":"d","version":1,"fields":[)",
                      fields, "]}]}");
}

// `depth` levels of [ ] nested under the root object (itself one level).
std::string Nested(int depth) {
  return absl::StrCat(R"({"devices":[],"x":)", std::string(depth, '['), std::string(depth, ']'),
                      "}");
}

// JSON objects are unordered: members may come in any order, and a problem
// found before its container's name is still placed by that name.
TEST(DescriptionTest, MemberOrderDoesNotMatter) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      R"({"devices":[{"fields":[{"size":12,"struct":{"fields":[{"size":4,"name":"sel"}],
                                                     "vmsd_name":"seg"},
                                 "type":"struct","name":"segs"}],
                      "version":12,"vmsd_name":"cpu","instance_id":1,"name":"cpu"}],
          "page_size":4096})");
  ASSERT_TRUE(d.ok()) << d.status();
  const DeviceDescription* cpu = d->Find("cpu", 1);
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->vmsd.version, 12u);
  ASSERT_EQ(cpu->vmsd.fields.size(), 1u);
  ASSERT_NE(cpu->vmsd.fields[0].sub, nullptr);
  EXPECT_EQ(cpu->vmsd.fields[0].sub->vmsd_name, "seg");
  EXPECT_EQ(cpu->vmsd.fields[0].sub->fields[0].name, "sel");
}

TEST(DescriptionTest, AProblemNamesItsWholePathWhateverTheOrder) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      R"({"devices":[{"fields":[{"struct":{"fields":[{"name":"sel","size":-4}],
                                           "vmsd_name":"seg"},"name":"segs","size":12}],
                      "vmsd_name":"cpu","instance_id":0,"name":"cpu"}]})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "device 'cpu'.segs.sel: \"size\" is missing or not a non-negative integer");

  d = ParseVmDescription(
      R"({"devices":[{"subsections":[{"fields":[{"size":1}],"vmsd_name":"cpu/x"}],
                      "vmsd_name":"cpu","instance_id":0,"name":"cpu"}]})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().message(),
            "device 'cpu'/cpu/x: \"name\" is missing or not a string");
}

// As with a JSON tree, the last of a repeated member counts; each repeat of
// a member qmig reads is a warning that says where it is.
TEST(DescriptionTest, TheLastOfARepeatedMemberCounts) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      R"({"devices":{},"devices":[{"name":"d","instance_id":0,"vmsd_name":"d",
          "fields":[{"name":"a","size":-1}],"fields":[{"name":"b","size":2,"size":3}]}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->devices[0].vmsd.fields.size(), 1u);
  EXPECT_EQ(d->devices[0].vmsd.fields[0].name, "b");
  EXPECT_EQ(d->devices[0].vmsd.fields[0].size, 3u);
  ASSERT_EQ(d->warnings.size(), 3u);
  for (const DescriptionWarning& warning : d->warnings) {
    EXPECT_EQ(warning.code, FindingCode::kVmdescRepeatedKey);
  }
  EXPECT_EQ(d->warnings[0].message,
            "root: \"devices\" is given twice in one object; the last one counts");
  EXPECT_EQ(d->warnings[1].message,
            "devices[0]: \"fields\" is given twice in one object; the last one counts");
  EXPECT_EQ(d->warnings[2].message,
            "devices[0].fields[0]: \"size\" is given twice in one object; the last one counts");

  EXPECT_FALSE(ParseVmDescription(R"({"devices":[],"devices":3})").ok());
}

// A field's own "fields" make it a vstruct only when it has no "struct";
// then they are not read, and a problem inside them does not count.
TEST(DescriptionTest, AStructWinsOverInlineFields) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(Device(
      R"({"name":"s","size":4,"fields":[7],"struct":{"vmsd_name":"e","fields":[]}})"));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_NE(d->devices[0].vmsd.fields[0].sub, nullptr);
  EXPECT_EQ(d->devices[0].vmsd.fields[0].sub->vmsd_name, "e");
}

// QEMU writes one entry per registered device, in the order it writes their
// sections; two isa-ide controllers share (name, instance). The nth lookup
// finds the nth entry, and a warning names the device.
TEST(DescriptionTest, ADeviceInstanceListedTwiceKeepsBothEntriesInOrder) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      R"({"page_size":4096,"devices":[
          {"name":"isa-ide","instance_id":0,"vmsd_name":"isa-ide","version":3,
           "fields":[{"name":"a","type":"uint8","size":1}]},
          {"name":"other","instance_id":0,"vmsd_name":"other","version":1,"fields":[]},
          {"name":"isa-ide","instance_id":0,"vmsd_name":"isa-ide","version":3,
           "fields":[{"name":"b","type":"uint16","size":2}]}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->Count("isa-ide", 0), 2u);
  EXPECT_EQ(d->Count("other", 0), 1u);
  EXPECT_EQ(d->Count("isa-ide", 1), 0u);
  EXPECT_EQ(d->Find("isa-ide", 0), &d->devices[0]);
  EXPECT_EQ(d->Find("isa-ide", 0, 1), &d->devices[2]);
  EXPECT_EQ(d->Find("isa-ide", 0, 2), nullptr);
  EXPECT_EQ(d->Find("other", 0), &d->devices[1]);
  ASSERT_EQ(d->warnings.size(), 1u);
  EXPECT_EQ(d->warnings[0].code, FindingCode::kVmdescRepeatedDevice);
  EXPECT_TRUE(absl::StrContains(d->warnings[0].message,
                                "devices[0]: device 'isa-ide' instance 0 is described 2 times"))
      << d->warnings[0].message;

  // Without the index, the same answers by a scan.
  VmDescription copy;
  copy.devices = d->devices;
  EXPECT_EQ(copy.Find("isa-ide", 0, 1), &copy.devices[2]);
  EXPECT_EQ(copy.Count("isa-ide", 0), 2u);
}

TEST(DescriptionTest, APageSizeThatIsNoPowerOfTwoIsAWarning) {
  for (const char* size : {"0", "4095", "12288"}) {
    absl::StatusOr<VmDescription> d =
        ParseVmDescription(absl::StrCat(R"({"page_size":)", size, R"(,"devices":[]})"));
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->warnings.size(), 1u) << size;
    EXPECT_EQ(d->warnings[0].code, FindingCode::kVmdescBadPageSize);
    EXPECT_EQ(d->warnings[0].message,
              absl::StrCat("root: \"page_size\" ", size, " is not a power of two"));
  }
  for (const char* size : {"4096", "65536"}) {
    absl::StatusOr<VmDescription> d =
        ParseVmDescription(absl::StrCat(R"({"page_size":)", size, R"(,"devices":[]})"));
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->warnings.empty()) << size;
  }
}

TEST(DescriptionTest, AFieldTypeNoQemuWritesIsAWarning) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(Device(
      R"({"name":"a","type":"uint32","size":4},{"name":"b","type":"unknown","size":1},
         {"name":"c","type":"float128","size":16},{"name":"d","type":7,"size":1},
         {"name":"s","type":"struct","size":1,"struct":{"vmsd_name":"e",
          "fields":[{"name":"x","type":"int9","size":1}]}})"));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->warnings.size(), 3u);
  for (const DescriptionWarning& warning : d->warnings) {
    EXPECT_EQ(warning.code, FindingCode::kVmdescUnknownType);
  }
  EXPECT_EQ(d->warnings[0].message,
            "devices[0].fields[2] ('c'): field type 'float128' is none QEMU writes; the field is "
            "read by its size");
  EXPECT_TRUE(absl::StrContains(d->warnings[1].message, "fields[3] ('d'): field type that is not"))
      << d->warnings[1].message;
  EXPECT_TRUE(absl::StrContains(d->warnings[2].message,
                                "devices[0].fields[4].struct.fields[0] ('x'): field type 'int9'"))
      << d->warnings[2].message;
  EXPECT_EQ(d->devices[0].vmsd.fields[2].size, 16u);  // still read by its size
}

TEST(DescriptionTest, WarningsAreBounded) {
  std::string fields;
  for (size_t i = 0; i < kMaxDescriptionWarnings + 10; ++i) {
    absl::StrAppend(&fields, i == 0 ? "" : ",", R"({"name":"f","type":"odd","size":1})");
  }
  absl::StatusOr<VmDescription> d = ParseVmDescription(Device(fields));
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->warnings.size(), kMaxDescriptionWarnings + 1);
  EXPECT_EQ(d->warnings.back().message, "10 more oddities in the description not listed");
}

// Names in messages are bytes from the document: shown escaped.
TEST(DescriptionTest, NamesInMessagesAreEscaped) {
  absl::StatusOr<VmDescription> d = ParseVmDescription(
      "{\"devices\":[{\"name\":\"c\\u0007\\u001b[2J\",\"instance_id\":0,\"vmsd_name\":\"c\","
      "\"fields\":[{\"name\":\"f\\u00ff\",\"size\":-1}]}]}");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(
      d.status().message(),
      "device 'c\\x07\\x1b[2J'.f\\xc3\\xbf: \"size\" is missing or not a non-negative integer");

  d = ParseVmDescription("{\"devices\": [\x01\xff]}");
  ASSERT_FALSE(d.ok());
  for (char c : d.status().message()) {
    EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << d.status().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Documents, BadDescriptionTest,
    ::testing::Values(
        BadDocument{"NotJson", "{\"devices\": [}", "not valid JSON (byte 13)"},
        BadDocument{"Empty", "", "not valid JSON"},
        BadDocument{"RootNotObject", "[1]", "root is not an object"},
        BadDocument{"MissingDevices", R"({"page_size":4096})", "\"devices\""},
        BadDocument{"DevicesNotArray", R"({"devices":{}})", "\"devices\""},
        BadDocument{"DeviceNotObject", R"({"devices":[1]})", "not an object"},
        BadDocument{"DeviceWithoutName", R"({"devices":[{"instance_id":0}]})", "\"name\""},
        BadDocument{"NegativeInstance", R"({"devices":[{"name":"d","instance_id":-1}]})",
                    "instance_id"},
        BadDocument{"HugeInstance", R"({"devices":[{"name":"d","instance_id":4294967296}]})",
                    "instance_id"},
        BadDocument{"NegativeSize", Device(R"({"name":"f","type":"uint8","size":-1})"), "size"},
        BadDocument{"MissingSize", Device(R"({"name":"f","type":"uint8"})"), "size"},
        BadDocument{"FractionalSize", Device(R"({"name":"f","type":"uint8","size":1.5})"), "size"},
        BadDocument{"NegativeArrayLen",
                    Device(R"({"name":"f","type":"uint8","size":1,"array_len":-2})"), "array_len"},
        BadDocument{"ZeroArrayLen", Device(R"({"name":"f","type":"uint8","size":1,"array_len":0})"),
                    "array_len"},
        BadDocument{"NegativeVersion",
                    R"({"devices":[{"name":"d","instance_id":0,"vmsd_name":"d","version":-1}]})",
                    "version"},
        BadDocument{"FieldsNotArray",
                    R"({"devices":[{"name":"d","instance_id":0,"vmsd_name":"d","fields":{}}]})",
                    "\"fields\""},
        BadDocument{
            "SubsectionWithoutName",
            R"({"devices":[{"name":"d","instance_id":0,"vmsd_name":"d","subsections":[{"fields":[]}]}]})",
            "vmsd_name"},
        BadDocument{"UnterminatedString", R"({"devices":[{"name":"d)", "missing closing quote"},
        BadDocument{"NestingOverTheLimit", Nested(kMaxDescriptionNesting),
                    "deeper than the limit of 64"}),
    [](const ::testing::TestParamInfo<BadDocument>& info) { return info.param.name; });

TEST(DescriptionTest, NestingAtTheLimitIsAccepted) {
  // Root object + 63 arrays = 64 levels.
  absl::StatusOr<VmDescription> d = ParseVmDescription(Nested(kMaxDescriptionNesting - 1));
  EXPECT_TRUE(d.ok()) << d.status();
}

TEST(DescriptionTest, BracketsInsideStringsDoNotCountAsNesting) {
  std::string json = absl::StrCat(R"({"devices":[],"x":")", std::string(1000, '['), R"("})");
  EXPECT_TRUE(ParseVmDescription(json).ok());
}

TEST(DescriptionTest, DeepNestingIsRefusedWhileParsing) {
  // Far deeper than any recursive walk's stack would survive.
  absl::StatusOr<VmDescription> d = ParseVmDescription(Nested(200000));
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(absl::StrContains(d.status().message(), "deeper than the limit")) << d.status();
}

}  // namespace
}  // namespace qmig

namespace qmig {
namespace {

TEST(DumpVmstateTest, VersionBoundsAndMachineAreRead) {
  absl::StatusOr<VmDescription> dump = ParseVmDescription(
      R"({"vmschkmachine": {"Name": "pc-i440fx-7.2"},
          "PIIX3": {"Name": "PIIX3", "version_id": 3, "minimum_version_id": 2,
                    "Description": {"name": "PIIX3", "Fields": []}},
          "ps2-kbd": {"Name": "ps2kbd", "version_id": 3, "minimum_version_id": 2}})");
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_TRUE(dump->from_dump());
  EXPECT_EQ(dump->dump_machine, "pc-i440fx-7.2");
  EXPECT_TRUE(dump->devices.empty());
  ASSERT_EQ(dump->vmsd_versions.count("ps2kbd"), 1u);
  EXPECT_EQ(dump->vmsd_versions["ps2kbd"].version, 3u);
  EXPECT_EQ(dump->vmsd_versions["PIIX3"].minimum, 2u);
}

// QEMU writes "vmschkmachine" first, but a tool that sorts keys moves it.
TEST(DumpVmstateTest, TheMachineMayComeLast) {
  absl::StatusOr<VmDescription> dump = ParseVmDescription(
      R"({"apic": {"Name": "apic", "version_id": 3, "minimum_version_id": 3},
          "vmschkmachine": {"Name": "pc-q35-7.2"}})");
  ASSERT_TRUE(dump.ok()) << dump.status();
  EXPECT_EQ(dump->dump_machine, "pc-q35-7.2");
  EXPECT_EQ(dump->vmsd_versions["apic"].minimum, 3u);

  dump = ParseVmDescription(R"({"a": 1, "vmschkmachine": {}})");
  ASSERT_FALSE(dump.ok());
  EXPECT_EQ(dump.status().message(), "vmschkmachine: \"Name\" is missing or not a string");
}

TEST(DumpVmstateTest, BoundsOutOfOrderAreRejected) {
  EXPECT_FALSE(ParseVmDescription(R"({"vmschkmachine": {"Name": "pc"},
      "x": {"Name": "x", "version_id": 1, "minimum_version_id": 2}})")
                   .ok());
  EXPECT_FALSE(ParseVmDescription(R"({"vmschkmachine": {"Name": "pc"}, "x": 3})").ok());
}

}  // namespace
}  // namespace qmig
