// CheckCompat: each rule on small hand-made inputs, a recorded stream's
// sections (with its description) and a source's dump against a
// destination's dump.
#include "parser/vmstate/compat.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/vmstate_dump.h"

namespace qmig {
namespace {

// The destination: QEMU's -dump-vmstate of a machine with an "rtc" (accepts
// versions 2 to 3, one subsection) and a "dev" whose state has a struct.
constexpr char kDestination[] = R"({
  "vmschkmachine": {"Name": "pc-i440fx-9.0"},
  "mc146818rtc": {"Name": "mc146818rtc", "version_id": 3, "minimum_version_id": 2,
    "Description": {"name": "rtc", "version_id": 3, "minimum_version_id": 2,
      "Fields": [
        {"field": "cmos", "version_id": 0, "field_exists": false, "size": 1, "num": 4},
        {"field": "period", "version_id": 3, "field_exists": false, "size": 4},
        {"field": "opt", "version_id": 0, "field_exists": true, "size": 2}],
      "Subsections": [
        {"name": "rtc/irq", "version_id": 1, "minimum_version_id": 1,
         "Fields": [{"field": "count", "version_id": 0, "field_exists": false, "size": 2}]}]}},
  "dev-a": {"Name": "dev-a", "version_id": 1, "minimum_version_id": 1,
    "Description": {"name": "dev", "version_id": 1, "minimum_version_id": 1,
      "Fields": [
        {"field": "regs", "version_id": 0, "field_exists": false, "size": 12,
         "Description": {"name": "regs", "version_id": 1, "minimum_version_id": 1,
           "Fields": [{"field": "a", "version_id": 0, "field_exists": false, "size": 4},
                      {"field": "b", "version_id": 0, "field_exists": false, "size": 8}]}}]}}
})";

VmstateDump Dump(const std::string& json) {
  absl::StatusOr<VmstateDump> dump = ParseVmstateDump(json);
  EXPECT_TRUE(dump.ok()) << dump.status();
  return dump.ok() ? *std::move(dump) : VmstateDump();
}

VmDescription Description(const std::string& devices) {
  absl::StatusOr<VmDescription> d =
      ParseVmDescription(absl::StrCat(R"({"page_size": 4096, "devices": [)", devices, "]}"));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *std::move(d) : VmDescription();
}

// What an rtc of `version` sends: cmos, period from version 3, and
// `subsections`.
std::string RtcSent(uint32_t version, const std::string& subsections = "") {
  std::string fields = R"({"name": "cmos", "array_len": 4, "type": "uint8", "size": 1})";
  if (version >= 3) fields += R"(, {"name": "period", "type": "uint32", "size": 4})";
  return absl::StrCat(
      R"({"name": "rtc", "instance_id": 0, "vmsd_name": "rtc", "version": )", version,
      R"(, "fields": [)", fields, "]",
      subsections.empty() ? "" : absl::StrCat(", \"subsections\": [", subsections, "]"), "}");
}

struct Fixture {
  VmstateDump destination = Dump(kDestination);
  VmDescription sent;
  CompatSource source;

  // A stream of machine pc-i440fx-9.0 carrying these described devices.
  explicit Fixture(const std::string& devices) : sent(Description(devices)) {
    source.kind = CompatSource::Kind::kStream;
    source.machine = "pc-i440fx-9.0";
    source.described = true;
    for (const DeviceDescription& device : sent.devices) {
      source.devices.push_back(
          CompatSourceDevice{device.name, device.instance_id, device.vmsd.version, false, &device});
    }
  }
  CompatReport Check() {
    CompatDestination dest;
    dest.dump = &destination;
    dest.machine = destination.machine();
    return CheckCompat(source, dest);
  }
};

const DeviceVerdict& Only(const CompatReport& report) {
  EXPECT_EQ(report.devices.size(), 1u);
  return report.devices.front();
}

bool HasReason(const DeviceVerdict& device, absl::string_view code, absl::string_view words) {
  for (const CompatReason& reason : device.reasons) {
    if (reason.code == code && absl::StrContains(reason.message, words)) return true;
  }
  return false;
}

TEST(CompatTest, SameVersionLoads) {
  Fixture f(RtcSent(3, R"({"vmsd_name": "rtc/irq", "version": 1,
                           "fields": [{"name": "count", "type": "uint16", "size": 2}]})"));
  CompatReport report = f.Check();
  EXPECT_EQ(report.machine_status, CompatStatus::kLoads);
  const DeviceVerdict& rtc = Only(report);
  EXPECT_EQ(rtc.status, CompatStatus::kLoads) << rtc.reasons.size();
  EXPECT_EQ(rtc.vmsd_name, "rtc");
  EXPECT_EQ(rtc.destination_types, std::vector<std::string>{"mc146818rtc"});
  EXPECT_EQ(report.Overall(), CompatStatus::kLoads);
}

TEST(CompatTest, OlderVersionWithinBoundsLoads) {
  // Version 2 has no "period"; the destination reads it only from version 3.
  Fixture f(RtcSent(2));
  EXPECT_EQ(Only(f.Check()).status, CompatStatus::kLoads);
}

TEST(CompatTest, VersionTooNew) {
  Fixture f(RtcSent(4));
  const DeviceVerdict rtc = Only(f.Check());
  EXPECT_EQ(rtc.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(rtc, "version.too_new", "version 4"));
}

TEST(CompatTest, VersionTooOld) {
  Fixture f(RtcSent(1));
  const DeviceVerdict rtc = Only(f.Check());
  EXPECT_EQ(rtc.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(rtc, "version.too_old", "versions 2 to 3"));
}

TEST(CompatTest, UnknownSubsectionSent) {
  Fixture f(RtcSent(3, R"({"vmsd_name": "rtc/ltim", "version": 1, "fields": []})"));
  CompatReport report = f.Check();
  const DeviceVerdict& rtc = Only(report);
  EXPECT_EQ(rtc.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(rtc, "subsection.unknown", "'rtc/ltim'"));
  EXPECT_EQ(report.Overall(), CompatStatus::kFails);
}

TEST(CompatTest, SubsectionVersionOutOfBounds) {
  Fixture f(RtcSent(3, R"({"vmsd_name": "rtc/irq", "version": 2,
                           "fields": [{"name": "count", "type": "uint16", "size": 2}]})"));
  const DeviceVerdict rtc = Only(f.Check());
  EXPECT_EQ(rtc.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(rtc, "subsection.version", "'rtc/irq'"));
}

TEST(CompatTest, FieldSizeMovesTheFooter) {
  // "period" went out as 8 bytes; the destination reads 4.
  Fixture f(R"({"name": "rtc", "instance_id": 0, "vmsd_name": "rtc", "version": 3,
               "fields": [{"name": "cmos", "array_len": 4, "type": "uint8", "size": 1},
                          {"name": "period", "type": "uint64", "size": 8}]})");
  const DeviceVerdict rtc = Only(f.Check());
  EXPECT_EQ(rtc.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(rtc, "fields.size", "4 bytes fewer"));
  // Without footers QEMU may not notice.
  f.source.footers = false;
  EXPECT_EQ(Only(f.Check()).status, CompatStatus::kUnknown);
}

TEST(CompatTest, RenamedFieldOfTheSameSizeLoads) {
  Fixture f(R"({"name": "rtc", "instance_id": 0, "vmsd_name": "rtc", "version": 3,
               "fields": [{"name": "cmos_data", "array_len": 4, "type": "uint8", "size": 1},
                          {"name": "period", "type": "uint32", "size": 4},
                          {"name": "opt", "type": "uint16", "size": 2}]})");
  EXPECT_EQ(Only(f.Check()).status, CompatStatus::kLoads);
}

TEST(CompatTest, FieldsInsideAStructAreCompared) {
  Fixture f(R"({"name": "0000:00:03.0/dev", "instance_id": 0, "vmsd_name": "dev", "version": 1,
               "fields": [{"name": "regs", "type": "struct", "size": 8,
                           "struct": {"vmsd_name": "regs", "version": 1, "fields": [
                             {"name": "a", "type": "uint32", "size": 4},
                             {"name": "b", "type": "uint32", "size": 4}]}}]})");
  const DeviceVerdict dev = Only(f.Check());
  EXPECT_EQ(dev.status, CompatStatus::kFails);
  EXPECT_TRUE(HasReason(dev, "fields.size", "'regs.b'"));
}

TEST(CompatTest, SectionTheDumpDoesNotListIsNotChecked) {
  // -dump-vmstate lists device classes only: "cpu" is never there, and
  // neither is anything the destination would not know.
  Fixture f(R"({"name": "cpu", "instance_id": 0, "vmsd_name": "cpu", "version": 12,
               "fields": []})");
  CompatReport report = f.Check();
  const DeviceVerdict& cpu = Only(report);
  EXPECT_EQ(cpu.status, CompatStatus::kNotChecked);
  EXPECT_TRUE(HasReason(cpu, "section.not_described", "'cpu'"));
  EXPECT_EQ(report.Overall(), CompatStatus::kLoads);
}

TEST(CompatTest, SectionMatchedByTheVmsdNameItsIdstrEndsWith) {
  Fixture f("");
  f.source.described = false;
  f.source.devices.push_back(CompatSourceDevice{"0000:00:03.0/dev", 0, 1});
  f.source.devices.push_back(CompatSourceDevice{"ram", 0, 4, /*iterative=*/true});
  CompatReport report = f.Check();
  ASSERT_EQ(report.devices.size(), 2u);
  EXPECT_EQ(report.devices[0].status, CompatStatus::kLoads);
  EXPECT_EQ(report.devices[0].vmsd_name, "dev");
  EXPECT_EQ(report.devices[1].status, CompatStatus::kNotChecked);
  EXPECT_EQ(VmsdNameCandidates("0000:00:03.0/virtio-net"),
            (std::vector<std::string>{"0000:00:03.0/virtio-net", "virtio-net"}));
}

TEST(CompatTest, MachineMissing) {
  Fixture f(RtcSent(3));
  CompatDestination dest;
  dest.machine = "pc-i440fx-11.1";
  dest.machine_missing = true;
  CompatReport report = CheckCompat(f.source, dest);
  EXPECT_EQ(report.machine_status, CompatStatus::kFails);
  ASSERT_EQ(report.machine_reasons.size(), 1u);
  EXPECT_EQ(report.machine_reasons[0].code, "machine.missing");
  EXPECT_TRUE(absl::StrContains(report.machine_reasons[0].message, "'pc-i440fx-11.1'"));
  EXPECT_EQ(Only(report).status, CompatStatus::kNotChecked);
  EXPECT_EQ(report.Overall(), CompatStatus::kFails);
}

TEST(CompatTest, MachineDiffers) {
  Fixture f(RtcSent(3));
  f.source.machine = "pc-i440fx-11.1";
  CompatReport report = f.Check();
  EXPECT_EQ(report.machine_status, CompatStatus::kFails);
  EXPECT_EQ(report.machine_reasons.at(0).code, "machine.differs");
  EXPECT_EQ(report.Overall(), CompatStatus::kFails);
  // A stream without CONFIGURATION names no machine, and QEMU checks none.
  f.source.machine.reset();
  EXPECT_EQ(f.Check().machine_status, CompatStatus::kNotChecked);
}

// QEMU's description names the k-th field of a repeated name "name[k]",
// leaves out arrays of no elements, and may drop fields its exists()
// callback says are absent: none of that is a difference.
TEST(CompatTest, DescriptionNamingAndOmissions) {
  VmstateDump destination = Dump(R"({"vmschkmachine": {"Name": "m"},
    "fw_cfg_io": {"Name": "fw_cfg_io", "version_id": 2, "minimum_version_id": 1,
      "Description": {"name": "fw_cfg", "version_id": 2, "minimum_version_id": 1,
        "Fields": [
          {"field": "cur_entry", "version_id": 0, "field_exists": false, "size": 2},
          {"field": "cur_offset", "version_id": 0, "field_exists": true, "size": 4},
          {"field": "cur_offset", "version_id": 2, "field_exists": false, "size": 4},
          {"field": "devs", "version_id": 0, "field_exists": false, "size": 24,
           "Description": {"name": "dev", "version_id": 1, "minimum_version_id": 1,
             "Fields": [{"field": "on", "version_id": 0, "field_exists": false, "size": 1}]}}]}}})");
  VmDescription sent = Description(R"({"name": "fw_cfg", "instance_id": 0,
      "vmsd_name": "fw_cfg", "version": 2,
      "fields": [{"name": "cur_entry", "type": "uint16", "size": 2},
                 {"name": "cur_offset[1]", "type": "uint32", "size": 4}]})");
  CompatSource source;
  source.machine = "m";
  source.devices.push_back(CompatSourceDevice{"fw_cfg", 0, 2, false, &sent.devices[0]});
  CompatDestination dest{&destination, "m"};
  const DeviceVerdict fw_cfg = Only(CheckCompat(source, dest));
  EXPECT_EQ(fw_cfg.status, CompatStatus::kLoads)
      << (fw_cfg.reasons.empty() ? "" : fw_cfg.reasons[0].message);

  // The second cur_offset sent as 8 bytes: matched by its occurrence, it
  // is the one that differs.
  VmDescription wider = Description(R"({"name": "fw_cfg", "instance_id": 0,
      "vmsd_name": "fw_cfg", "version": 2,
      "fields": [{"name": "cur_entry", "type": "uint16", "size": 2},
                 {"name": "cur_offset[1]", "type": "uint64", "size": 8}]})");
  source.devices[0].sent = &wider.devices[0];
  EXPECT_TRUE(HasReason(Only(CheckCompat(source, dest)), "fields.size", "4 bytes fewer"));
}

// ne2k_isa and ne2k_pci both name their vmsd "ne2000" but differ: the one
// whose fields the stream shows is the one compared.
TEST(CompatTest, SharedVmsdNameNarrowedByFields) {
  VmstateDump destination = Dump(R"({"vmschkmachine": {"Name": "m"},
    "ne2k_isa": {"Name": "ne2k_isa", "version_id": 2, "minimum_version_id": 0,
      "Description": {"name": "ne2000", "version_id": 2, "minimum_version_id": 0,
        "Fields": [{"field": "ne2000", "version_id": 0, "field_exists": false, "size": 4}]}},
    "ne2k_pci": {"Name": "ne2k_pci", "version_id": 3, "minimum_version_id": 3,
      "Description": {"name": "ne2000", "version_id": 3, "minimum_version_id": 3,
        "Fields": [{"field": "dev", "version_id": 0, "field_exists": false, "size": 4},
                   {"field": "ne2000", "version_id": 0, "field_exists": false, "size": 4}]}}})");
  VmDescription sent = Description(R"({"name": "ne2000", "instance_id": 0,
      "vmsd_name": "ne2000", "version": 2,
      "fields": [{"name": "ne2000", "type": "uint32", "size": 4}]})");
  CompatSource source;
  source.machine = "m";
  source.devices.push_back(CompatSourceDevice{"ne2000", 0, 2, false, &sent.devices[0]});
  CompatDestination dest{&destination, "m"};
  const DeviceVerdict ne2000 = Only(CheckCompat(source, dest));
  EXPECT_EQ(ne2000.status, CompatStatus::kLoads);
  EXPECT_EQ(ne2000.destination_types, std::vector<std::string>{"ne2k_isa"});
}

// The source is a dump: it may send any subsection it lists.
constexpr char kSourceDump[] = R"({
  "vmschkmachine": {"Name": "pc-i440fx-9.0"},
  "mc146818rtc": {"Name": "mc146818rtc", "version_id": 3, "minimum_version_id": 1,
    "Description": {"name": "rtc", "version_id": 3, "minimum_version_id": 1,
      "Fields": [
        {"field": "cmos", "version_id": 0, "field_exists": false, "size": 1, "num": 4},
        {"field": "period", "version_id": 3, "field_exists": false, "size": 4},
        {"field": "opt", "version_id": 0, "field_exists": true, "size": 2}],
      "Subsections": [
        {"name": "rtc/irq", "version_id": 1, "minimum_version_id": 1,
         "Fields": [{"field": "count", "version_id": 0, "field_exists": false, "size": 2}]},
        {"name": "rtc/ltim", "version_id": 1, "minimum_version_id": 1}]}},
  "gadget": {"Name": "gadget", "version_id": 1, "minimum_version_id": 1,
    "Description": {"name": "gadget", "version_id": 1, "minimum_version_id": 1}}
})";

CompatSource FromDump(const VmstateDump& dump) {
  CompatSource source;
  source.kind = CompatSource::Kind::kDump;
  source.machine = dump.machine();
  for (const DumpDevice& device : dump.devices()) {
    CompatSourceDevice d;
    d.name = device.type;
    d.version = device.vmsd.version_id;
    d.declared = &device.vmsd;
    source.devices.push_back(d);
  }
  return source;
}

TEST(CompatTest, DumpAgainstDump) {
  VmstateDump src = Dump(kSourceDump);
  VmstateDump dst = Dump(kDestination);
  CompatDestination dest{&dst, dst.machine()};
  CompatReport report = CheckCompat(FromDump(src), dest);
  ASSERT_EQ(report.devices.size(), 2u);
  // Sorted by type: gadget, mc146818rtc.
  const DeviceVerdict& gadget = report.devices[0];
  EXPECT_EQ(gadget.status, CompatStatus::kFails);  // the destination has no such device
  EXPECT_TRUE(HasReason(gadget, "section.unknown", "'gadget'"));
  const DeviceVerdict& rtc = report.devices[1];
  // rtc/ltim is unknown there, and fails only if the source sends it.
  EXPECT_EQ(rtc.status, CompatStatus::kUnknown);
  EXPECT_TRUE(HasReason(rtc, "subsection.unknown", "'rtc/ltim'"));
  EXPECT_EQ(report.Overall(), CompatStatus::kFails);
}

TEST(CompatTest, DumpVersionRules) {
  VmstateDump src = Dump(R"({"vmschkmachine": {"Name": "m"},
      "mc146818rtc": {"Name": "mc146818rtc", "version_id": 1, "minimum_version_id": 1,
        "Description": {"name": "rtc", "version_id": 1, "minimum_version_id": 1}}})");
  VmstateDump dst = Dump(kDestination);
  CompatDestination dest{&dst, "m"};
  CompatReport report = CheckCompat(FromDump(src), dest);
  EXPECT_TRUE(HasReason(Only(report), "version.too_old", "version 1"));
}

}  // namespace
}  // namespace qmig
