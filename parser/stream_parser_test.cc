// The top level of ParseMigrationStream: header, CONFIGURATION, section
// framing and footers, the trailer after EOF, device sections decoded through
// a VMDESCRIPTION written by StreamWriter, and the same broken streams read
// through a pipe.
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/parse_context.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/testing/stream_writer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

constexpr uint32_t kRamId = 2;
// Header (8) + CONFIGURATION "pc" (1 + 4 + 2).
constexpr uint64_t kAfterConfig = 15;

StreamWriter Preamble() {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  return w;
}

// --- Header ---------------------------------------------------------------------

TEST(HeaderTest, EmptyInput) {
  ParseResult r = ParseBytes({});
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kEmpty, 0).Path("header")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kEmpty}));
}

TEST(HeaderTest, BadMagic) {
  StreamWriter w;
  w.Header(0x51455600).Configuration({"pc"}).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kBadMagic, 0).Path("header")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kBadMagic}));
}

TEST(HeaderTest, VersionTwoIsObsolete) {
  StreamWriter w;
  w.Header(kFileMagic, 2).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kObsoleteVersion, 4).Path("header")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kObsoleteVersion}));
  EXPECT_EQ(r.summary.file_version, 2u);
}

TEST(HeaderTest, VersionFourIsUnknown) {
  StreamWriter w;
  w.Header(kFileMagic, 4).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kBadVersion, 4).Path("header")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kBadVersion}));
}

TEST(HeaderTest, ShortHeaderIsTruncated) {
  StreamWriter w;
  w.Be32(kFileMagic).Be16(0);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, 6).Path("header")));
}

TEST(HeaderTest, HeaderlessStreamStartingWithACommand) {
  StreamWriter w;
  w.RecvBitmap("pc.ram").Resume();
  w.SectionPart(kRamId).RamPageFilled("pc.ram", 0x1000, 5).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_TRUE(r.summary.headerless);
  EXPECT_EQ(r.summary.file_version, 0u);
  EXPECT_FALSE(r.summary.machine.has_value());
  // A note says the RAM section was opened on the first connection.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionId, 12 + 5).Sev(Severity::kNote)));
  EXPECT_FALSE(r.findings.HasCode(FindingCode::kVmdescAbsent));
}

TEST(HeaderTest, HeaderWithoutConfigurationIsAnOldMachine) {
  StreamWriter w;
  w.Header().SectionStart(kRamId, "ram", 0, 4).RamMemSize({{"pc.ram", 0x1000}}).RamEos();
  w.SectionEnd(kRamId).RamEos().Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_FALSE(r.summary.machine.has_value());
  EXPECT_EQ(r.summary.footers, false);
}

// --- CONFIGURATION -----------------------------------------------------------------

// QEMU compares only as many bytes as the stream gives: with none, any
// machine matches (seen loading with tools/fuzz_qemu.py).
TEST(ConfigurationTest, NameLengthZero) {
  StreamWriter w;
  w.Header().ConfigurationStart("").Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kConfigBadName, 9).QemuAccepts().Path("header > CONFIGURATION")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kConfigBadName}));
}

TEST(ConfigurationTest, NameLengthLimit) {
  {
    StreamWriter w;
    w.Header().ConfigurationStart(std::string(kMaxMachineNameLength, 'm')).Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(NoErrors(r));
    EXPECT_EQ(r.summary.machine->size(), kMaxMachineNameLength);
  }
  {
    StreamWriter w;
    w.Header().ConfigurationStart(std::string(kMaxMachineNameLength + 1, 'm')).Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadName, 9).Path("header > CONFIGURATION")));
  }
  {
    // A huge declared length is refused before anything is read.
    StreamWriter w;
    w.Header().ConfigurationStart(0xffffffffu, "pc").Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadName, 9)));
  }
}

TEST(ConfigurationTest, NonPrintableName) {
  StreamWriter w;
  w.Header().ConfigurationStart(std::string("p\0c", 3)).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadName, 13).Path("header > CONFIGURATION")));
}

TEST(ConfigurationTest, SubsectionVersionMustBeOne) {
  StreamWriter w = Preamble();
  w.Subsection(kConfigUuid, 2).Bytes(std::vector<uint8_t>(16, 0)).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadSubsection, kAfterConfig)
                                .Path("header > CONFIGURATION > subsection 'configuration/uuid'")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kConfigBadSubsection}));
}

TEST(ConfigurationTest, UnknownSubsection) {
  StreamWriter w = Preamble();
  w.Subsection("configuration/warp").Be32(0).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadSubsection, kAfterConfig)
                                .Path("header > CONFIGURATION > subsection 'configuration/warp'")));
}

TEST(ConfigurationTest, SubsectionSentTwice) {
  StreamWriter w = Preamble();
  w.Subsection(kConfigTargetPageBits).Be32(12);
  uint64_t second = w.size();
  w.Subsection(kConfigTargetPageBits).Be32(12).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadSubsection, second)));
}

TEST(ConfigurationTest, TargetPageBitsOtherThanTwelveAreRejected) {
  for (uint32_t bits : {10u, 11u, 13u, 16u}) {
    StreamWriter w;
    w.Header().Configuration({"pc", bits, {}, {}}).Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadPageBits, kAfterConfig)
                                  .Path("header > CONFIGURATION > subsection 'configuration/target-page-bits'")))
        << bits;
    EXPECT_EQ(r.summary.target_page_bits, bits);
  }
  StreamWriter w;
  w.Header().Configuration({"pc", 12u, {}, {}}).Eof();
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes())));
}

TEST(ConfigurationTest, CapabilityCountLimit) {
  for (uint32_t count : {kMaxConfigCapabilities - 1, kMaxConfigCapabilities}) {
    StreamWriter w;
    w.Header()
        .Configuration({"pc", {}, std::vector<std::string>(count, "x-ignore-shared"), {}})
        .Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(NoErrors(r)) << count;
    EXPECT_EQ(r.summary.capabilities.size(), count);
  }
  StreamWriter w;
  w.Header()
      .Configuration(
          {"pc", {}, std::vector<std::string>(kMaxConfigCapabilities + 1, "x-ignore-shared"), {}})
      .Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadCapability, kAfterConfig)
                                .Path("header > CONFIGURATION > subsection 'configuration/capabilities'")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kConfigBadCapability}));
}

TEST(ConfigurationTest, UnknownCapabilityName) {
  StreamWriter w;
  w.Header()
      .Configuration({"pc", {}, std::vector<std::string>{"x-ignore-shared", "warp-drive"}, {}})
      .Eof();
  ParseResult r = ParseBytes(w.bytes());
  // subsection header 1 + 1 + 26 + 4, count 4, first name 1 + 15.
  const uint64_t second = kAfterConfig + 32 + 4 + 16;
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadCapability, second)
                                .Path("header > CONFIGURATION > subsection 'configuration/capabilities'")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kConfigBadCapability}));
}

TEST(ConfigurationTest, UuidIsFormattedLikeQemu) {
  std::array<uint8_t, 16> uuid;
  for (int i = 0; i < 16; ++i) uuid[i] = static_cast<uint8_t>(i * 17);
  StreamWriter w;
  w.Header().Configuration({"pc-q35-7.2", {}, {}, uuid}).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.uuid, "00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(r.summary.machine, "pc-q35-7.2");
}

TEST(ConfigurationTest, ConfigurationAfterTheHeaderOnly) {
  StreamWriter w = Preamble();
  w.ConfigurationStart("pc").Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigMisplaced, kAfterConfig)));
}

// --- Sections -------------------------------------------------------------------------

TEST(SectionTest, UnknownTypeByte) {
  StreamWriter w = Preamble();
  w.U8(0x09).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionType, kAfterConfig)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUnknownSectionType}));
}

TEST(SectionTest, SubsectionAndVmDescriptionBytesCannotStartARecord) {
  for (uint8_t type : {0x05, 0x06}) {
    // After OPEN_RETURN_PATH: right after the configuration, 0x05 would
    // start a configuration subsection.
    StreamWriter w = Preamble();
    w.OpenReturnPath().U8(type).Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionType, kAfterConfig + 5)))
        << int{type};
  }
}

TEST(SectionTest, EmptyIdstr) {
  StreamWriter w = Preamble();
  w.SectionFull(3, "", 0, 1).Footer(3).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kBadIdstr, kAfterConfig + 5).Path("FULL '' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kBadIdstr}));
}

TEST(SectionTest, IdstrWithNul) {
  StreamWriter w = Preamble();
  w.SectionFull(3, std::string("a\0b", 3), 0, 1).Footer(3).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kBadIdstr, kAfterConfig + 5).Path("FULL 'a\\x00\\x62' #0")));
}

TEST(SectionTest, PartForAnIdNeverStarted) {
  StreamWriter w = Preamble();
  w.SectionPart(7).RamEos().Footer(7).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionId, kAfterConfig).Path("PART #id 7")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUnknownSectionId}));
}

TEST(SectionTest, PartForAFullSection) {
  StreamWriter w = Preamble();
  w.SectionFull(3, "dev", 0, 1).Footer(3);
  uint64_t at = w.size();
  w.SectionPart(3).Footer(3).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionId, at).Path("PART 'dev' #0")));
}

// A RAM section with an empty block list; START + `rest`.
StreamWriter RamStart() {
  StreamWriter w = Preamble();
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize({{"pc.ram", 0x1000}}).RamEos().Footer(kRamId);
  return w;
}

TEST(SectionTest, PartAfterEnd) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  uint64_t at = w.size();
  w.SectionPart(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kSectionAfterEnd, at).QemuAccepts().Path("PART 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kSectionAfterEnd}));
}

TEST(SectionTest, DuplicateStartId) {
  StreamWriter w = RamStart();
  uint64_t at = w.size();
  w.SectionStart(kRamId, "ram", 0, 4).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kDuplicateSectionId, at).QemuAccepts().Path("START 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kDuplicateSectionId}));
}

TEST(SectionTest, FooterMissing) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos();
  uint64_t at = w.size();
  w.Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMissing, at).Path("END 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMissing}));
}

TEST(SectionTest, FooterWithAnotherId) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos();
  uint64_t at = w.size();
  w.Footer(kRamId + 1).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMismatch, at).Path("END 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMismatch}));
}

TEST(SectionTest, FooterWhereFootersAreNotInUse) {
  StreamWriter w;
  w.Header().SectionStart(kRamId, "ram", 0, 4).RamMemSize({{"pc.ram", 0x1000}}).RamEos();
  w.SectionEnd(kRamId).RamEos();
  uint64_t at = w.size();
  w.Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterUnexpected, at)));
}

TEST(SectionTest, StartNeverEndedIsAWarning) {
  StreamWriter w = RamStart();
  uint64_t eof = w.size();
  w.Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kSectionNotEnded, eof)));
  EXPECT_TRUE(NoErrors(r));
}

TEST(SectionTest, IterableSectionOfUnknownFormat) {
  StreamWriter w = Preamble();
  w.SectionStart(4, "vfio", 0, 1).U8(0).Footer(4).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kIterableUnverified, kAfterConfig).Path("START 'vfio' #0")));
}

TEST(SectionTest, StreamWithoutEof) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, w.size())));
  EXPECT_FALSE(r.summary.eof_seen);
}

TEST(SectionTest, InputEndingInsideASectionHeader) {
  StreamWriter w = Preamble();
  w.SectionFull(3, "dev", 0, 1);
  std::vector<uint8_t> bytes = w.Take();
  bytes.resize(bytes.size() - 2);
  ParseResult r = ParseBytes(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, bytes.size())));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTruncated}));
}

// --- Trailer ------------------------------------------------------------------------

TEST(TrailerTest, NoTrailerIsANote) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  uint64_t end = w.size() + 1;
  w.Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescAbsent, end).Path("trailer")));
  EXPECT_TRUE(NoErrors(r));
}

TEST(TrailerTest, GarbageAfterEof) {
  StreamWriter w = Preamble();
  w.Eof();
  uint64_t at = w.size();
  w.Text("junk");
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTrailingBytes, at).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTrailingBytes}));
}

TEST(TrailerTest, GarbageAfterTheVmDescription) {
  StreamWriter w = BuildPrecopyStream();
  uint64_t at = w.size();
  w.Text("junk");
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTrailingBytes, at).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTrailingBytes}));
}

TEST(TrailerTest, VmDescriptionShorterThanItsLength) {
  StreamWriter w = BuildPrecopyStream();
  std::vector<uint8_t> bytes = w.Take();
  const uint64_t vmdesc = w.MarkOf("vmdesc");
  const uint32_t length = static_cast<uint32_t>(bytes.size() - vmdesc - 5);
  StreamWriter patch;
  patch.Bytes(bytes).PatchBe32(vmdesc + 1, length + 1);
  ParseResult r = ParseBytes(patch.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescTruncated, patch.size()).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescTruncated}));
}

TEST(TrailerTest, VmDescriptionEndingInItsLengthField) {
  StreamWriter w = Preamble();
  w.Eof();
  uint64_t at = w.size();
  w.U8(0x06).Be16(0);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescTruncated, at).QemuAccepts().Path("trailer")));
}

TEST(TrailerTest, VmDescriptionOverTheLimit) {
  StreamWriter w = BuildPrecopyStream();
  ParseOptions options;
  options.limits.max_vmdesc_bytes = 16;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescTooLarge, w.MarkOf("vmdesc")).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescTooLarge}));
}

TEST(TrailerTest, VmDescriptionDeclaringFourGigabytes) {
  StreamWriter w = Preamble();
  w.Eof();
  uint64_t at = w.size();
  w.VmDescription(0xffffffffu, "{}");
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescTooLarge, at).QemuAccepts()));
}

TEST(TrailerTest, VmDescriptionThatIsNotJson) {
  StreamWriter w = Preamble();
  w.Eof();
  uint64_t at = w.size();
  w.VmDescription("{\"devices\": [}");
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescBadJson, at + 5).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescBadJson}));
}

TEST(TrailerTest, VmDescriptionWithoutDevices) {
  StreamWriter w = Preamble();
  w.Eof();
  uint64_t at = w.size();
  w.VmDescription("{\"page_size\":4096}");
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescBadJson, at + 5).QemuAccepts()));
}

// --- Device sections through the trailer ------------------------------------------------

const DeviceSpec kDevice = {"dev", 0, 2,
                            {{"a", "uint32", {0, 0, 0, 1}}, {"b", "uint16", {0, 2}}}};

// Precopy with one device whose body is `body` while the trailer describes
// kDevice. *body_at is where the body starts.
std::vector<uint8_t> DeviceStream(const std::vector<uint8_t>& body, uint64_t* body_at,
                                  uint32_t version = 2) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  w.SectionFull(3, kDevice.idstr, 0, version);
  *body_at = w.size();
  w.Bytes(body).Footer(3).Eof().VmDescription(DescribeDevices({kDevice}));
  return w.Take();
}

TEST(DeviceSectionTest, BodyMatchingItsDescriptionIsDecoded) {
  uint64_t at;
  ParseResult r = ParseBytes(DeviceStream({0, 0, 0, 1, 0, 2}, &at));
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.devices_decoded, 1u);
  EXPECT_EQ(r.summary.device_fields, 2u);
  EXPECT_EQ(r.summary.device_description_source, "trailer");
  EXPECT_EQ(r.findings.warning_count(), 0u) << FormatFindings(r);
}

TEST(DeviceSectionTest, BodyOneByteLongerThanItsDescription) {
  uint64_t at;
  ParseResult r = ParseBytes(DeviceStream({0, 0, 0, 1, 0, 2, 0xee}, &at));
  // The description ends after 6 bytes; the 7th is where the footer must be.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMissing, at + 6).Path("FULL 'dev' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMissing}));
}

TEST(DeviceSectionTest, BodyOneByteShorterThanItsDescription) {
  uint64_t at;
  ParseResult r = ParseBytes(DeviceStream({0, 0, 0, 1, 0}, &at));
  // The decoder takes the footer's 0x7e as the last field byte, so the
  // footer check lands one byte into the footer.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMissing, at + 6).Path("FULL 'dev' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMissing}));
}

TEST(DeviceSectionTest, SectionVersionDiffersFromItsDescription) {
  uint64_t at;
  ParseResult r = ParseBytes(DeviceStream({0, 0, 0, 1, 0, 2}, &at, /*version=*/3));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kDeviceVersion, at - 17).Path("FULL 'dev' #0")));
}

// The description lists every section the machine saves: a section it lacks
// is one a destination of that machine refuses ("Unknown savevm section").
TEST(DeviceSectionTest, DeviceMissingFromTheDescriptionIsScannedAndAnError) {
  StreamWriter w = Preamble();
  w.SectionFull(3, "other", 0, 1);
  uint64_t at = w.size();
  w.Be32(7).Footer(3).Eof().VmDescription(DescribeDevices({kDevice}));
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kDeviceNoDescription, at).Sev(Severity::kError).Path("FULL 'other' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kDeviceNoDescription}));
  EXPECT_EQ(r.summary.devices_unverified, 1u);
}

// QEMU loads a START section of a non-iterable device with its vmstate.
TEST(DeviceSectionTest, StartForADescribedDeviceDecodesAsDeviceState) {
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  uint64_t at = w.size();
  w.SectionStart(3, kDevice.idstr, 0, 2);
  w.Bytes(std::vector<uint8_t>{0, 0, 0, 1, 0, 2}).Footer(3).Eof();
  w.VmDescription(DescribeDevices({kDevice}));
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kIterableUnverified, at).QemuAccepts()));
  EXPECT_EQ(r.summary.devices_decoded, 1u);
}

TEST(DeviceSectionTest, SchemaOptionWinsOverTheTrailer) {
  uint64_t at;
  std::vector<uint8_t> bytes = DeviceStream({0, 0, 0, 1, 0, 2}, &at);
  DeviceSpec wider = kDevice;
  wider.fields.push_back({"c", "uint8", {0}});
  absl::StatusOr<VmDescription> schema = ParseVmDescription(DescribeDevices({wider}));
  ASSERT_TRUE(schema.ok());
  ParseOptions options;
  options.schema = &*schema;
  ParseResult r = ParseBytes(bytes, options);
  EXPECT_EQ(r.summary.device_description_source, "schema");
  // The schema's extra byte eats the footer marker.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMissing, at + 7)));
}

// QEMU registers two isa-ide controllers under one name and instance: two
// FULL 'isa-ide' #0 sections, and two entries for them in the description in
// the same order. The nth section takes the nth entry (here the two differ
// in size, so taking the first twice would misframe the second section).
TEST(DeviceSectionTest, ADeviceInstanceDescribedTwiceTakesItsEntriesInStreamOrder) {
  const DeviceSpec first = {"isa-ide", 0, 3, {{"a", "uint32", {0, 0, 0, 1}}}};
  const DeviceSpec second = {"isa-ide", 0, 3, {{"a", "uint32", {0, 0, 0, 2}}, {"b", "uint8", {3}}}};
  StreamWriter w = RamStart();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  w.SectionFull(3, "isa-ide", 0, 3).Bytes(first.fields[0].bytes).Footer(3);
  w.SectionFull(4, "isa-ide", 0, 3).Bytes(second.fields[0].bytes).Bytes(second.fields[1].bytes);
  w.Footer(4).Eof();
  const uint64_t trailer = w.size();
  w.VmDescription(DescribeDevices({first, second}));
  for (bool pipe : {false, true}) {
    SCOPED_TRACE(pipe ? "pipe" : "memory");
    ParseResult r = pipe ? ParseBytesThroughPipe(w.bytes()) : ParseBytes(w.bytes());
    EXPECT_TRUE(NoErrors(r)) << FormatFindings(r);
    EXPECT_EQ(r.summary.devices_decoded, 2u);
    EXPECT_EQ(r.summary.device_fields, 3u);
    EXPECT_TRUE(HasFinding(
        r, Want(FindingCode::kVmdescRepeatedDevice, trailer + 5).QemuAccepts().Path("trailer")));
    const Finding* warning = FindFinding(r, FindingCode::kVmdescRepeatedDevice);
    ASSERT_NE(warning, nullptr);
    EXPECT_TRUE(absl::StrContains(warning->message, "device 'isa-ide' instance 0"))
        << warning->message;
  }
}

// --- Pipe versus memory -----------------------------------------------------------------

// Broken streams whose findings must not depend on how the input arrives.
struct BrokenStream {
  std::string name;
  std::vector<uint8_t> bytes;
};

std::vector<BrokenStream> BrokenStreams() {
  std::vector<BrokenStream> streams;
  auto add = [&](std::string name, std::vector<uint8_t> bytes) {
    streams.push_back({std::move(name), std::move(bytes)});
  };
  add("valid_precopy", BuildPrecopyStream().Take());
  add("valid_postcopy", BuildPostcopyStream().Take());
  {
    StreamWriter w;
    w.Header(0x12345678);
    add("bad_magic", w.Take());
  }
  {
    StreamWriter w = Preamble();
    w.U8(0x09);
    add("unknown_type", w.Take());
  }
  {
    StreamWriter w = BuildPrecopyStream();
    w.Text("junk");
    add("trailing_garbage", w.Take());
  }
  {
    StreamWriter w = BuildPrecopyStream();
    std::vector<uint8_t> bytes = w.Take();
    bytes.resize(bytes.size() - 10);
    add("vmdesc_truncated", bytes);
  }
  {
    StreamWriter w = BuildPrecopyStream();
    std::vector<uint8_t> bytes = w.Take();
    bytes.resize(w.MarkOf("devices") + 20);
    add("cut_in_devices", bytes);
  }
  {
    StreamWriter w = BuildPostcopyStream();
    std::vector<uint8_t> bytes = w.Take();
    bytes[w.MarkOf("run") + 2] = 0x63;  // RUN becomes an unknown command
    add("unknown_command_in_package", bytes);
  }
  {
    StreamWriter w = BuildPostcopyStream();
    StreamWriter patched;
    patched.Bytes(w.bytes()).PatchBe32(w.MarkOf("package") + 5, (16u << 20) + 1);
    add("package_too_large", patched.Take());
  }
  {
    StreamWriter w = RamStart();
    w.SectionPart(kRamId).RamZero("pc.ram", 0, 1).RamXbzrle(kContinueBlock, 0, {0, 0, 1});
    w.RamEos().Footer(kRamId).Eof();
    add("ram_fill_and_xbzrle", w.Take());
  }
  {
    uint64_t at;
    add("device_longer", DeviceStream({0, 0, 0, 1, 0, 2, 0xee}, &at));
  }
  return streams;
}

std::string Describe(const ParseResult& r) {
  return absl::StrCat(FormatFindings(r), "bytes ", r.summary.bytes, ", errors ",
                      r.findings.error_count(), ", warnings ", r.findings.warning_count());
}

TEST(StreamingTest, PipeGivesTheSameFindingsAsMemory) {
  for (const BrokenStream& stream : BrokenStreams()) {
    SCOPED_TRACE(stream.name);
    ParseResult memory = ParseBytes(stream.bytes);
    ParseResult pipe = ParseBytesThroughPipe(stream.bytes);
    EXPECT_EQ(Describe(pipe), Describe(memory));
    EXPECT_EQ(pipe.summary.sections, memory.summary.sections);
    EXPECT_EQ(pipe.summary.ram_records, memory.summary.ram_records);
    EXPECT_EQ(pipe.summary.devices_decoded, memory.summary.devices_decoded);
  }
}

TEST(StreamingTest, ValidStreamsAreValidThroughAPipe) {
  EXPECT_TRUE(NoErrors(ParseBytesThroughPipe(BuildPrecopyStream().bytes())));
  ParseResult r = ParseBytesThroughPipe(BuildPrecopyStream().bytes());
  EXPECT_EQ(r.summary.devices_decoded, 3u);
  EXPECT_EQ(r.summary.device_description_source, "trailer");
}

// === Regressions ===========================================================================
// Regression tests of parser bugs found while writing these tests.

// A PACKAGED length that overruns the input: from memory the parser knows the
// input size and reports stream.truncated where the input ends; from a pipe
// it reads the blob until the input ends and reports something else.
TEST(StreamingTest, PackageOverrunningTheStreamIsTheSameTruncationOnAPipe) {
  StreamWriter w = BuildPostcopyStream();
  StreamWriter patched;
  const uint32_t blob = static_cast<uint32_t>(w.MarkOf("ping:4") - w.MarkOf("package_blob"));
  patched.Bytes(w.bytes()).PatchBe32(w.MarkOf("package") + 5, blob + 1000000);
  ParseResult memory = ParseBytes(patched.bytes());
  ParseResult pipe = ParseBytesThroughPipe(patched.bytes());
  EXPECT_TRUE(HasFinding(memory, Want(FindingCode::kTruncated, patched.size())
                                     .InPackage(patched.size() - w.MarkOf("package_blob"))
                                     .Path(absl::StrCat("PACKAGED@", HexOffset(w.MarkOf("package"))))));
  EXPECT_EQ(Describe(pipe), Describe(memory));
}

// Device state that holds what looks like a whole trailer (EOF, 0x06, a
// length, JSON ending in '}'). Read from a pipe whose writer pauses just
// after that '}', the trailer probe once stopped there and decoded the
// device with the fake description; a file reads on to the end and finds no
// trailer. Found by pipe_fuzzer.
TEST(StreamingTest, ATrailerLookalikeInDeviceStateDoesNotStopAPipe) {
  const std::string fake =
      R"({"page_size":4096,"devices":[{"name":"dev","instance_id":0,"vmsd_name":"dev",)"
      R"("version":1,"fields":[{"name":"f","type":"uint8","size":1}]}]})";
  StreamWriter w;
  w.Header().Configuration({"pc"}).SectionFull(7, "dev", 0, 1);
  w.U8(0x00).VmDescription(fake);
  const size_t after_fake = w.size();
  w.Bytes({1, 2, 3}).Footer(7).Eof();
  ParseResult memory = ParseBytes(w.bytes());
  ParseResult pipe = ParseBytesThroughPipe(w.bytes(), {}, after_fake);
  EXPECT_EQ(memory.summary.device_description_source, "");
  EXPECT_EQ(Describe(pipe), Describe(memory));
  EXPECT_EQ(pipe.summary.devices_decoded, memory.summary.devices_decoded);
}

// qmig decodes RAM pages as 4096 bytes (kTargetPageSize). A stream whose
// configuration announces another target page size (bits 13 = 8 KiB pages)
// is accepted without a finding, and its PAGE records would then be read
// with the wrong size. Expected: config.bad_target_page_bits (or another
// error) for any value but 12.
TEST(ConfigurationTest, TargetPageBitsOtherThanTwelve) {
  StreamWriter w;
  w.Header().Configuration({"pc", 13, {}, {}}).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kConfigBadPageBits, kAfterConfig)
                                .Path("header > CONFIGURATION > subsection "
                                      "'configuration/target-page-bits'")));
}


}  // namespace
}  // namespace qmig
