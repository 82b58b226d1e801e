// The top level of ParseMigrationStream: header, CONFIGURATION, section
// framing and footers, the trailer after EOF, device sections decoded through
// a VMDESCRIPTION written by StreamWriter, and the same broken streams read
// through a pipe.
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/multifd.h"
#include "parser/parse_context.h"
#include "parser/preempt_channel.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
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
  // Of a FULL section only its id is kept, not its name.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionId, at).Path("PART #id 3")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUnknownSectionId}));
}

// FULL section ids are remembered up to ParseLimits::max_section_ids, so
// that millions of sections cost bounded memory; past it a note says that
// repeats go unchecked.
TEST(SectionTest, FullSectionIdsPastTheLimitAreNotRemembered) {
  StreamWriter w = Preamble();
  w.SectionFull(3, "dev", 0, 1).Footer(3);
  w.SectionFull(4, "dev", 1, 1).Footer(4);
  const uint64_t third = w.size();
  w.SectionFull(5, "dev", 2, 1).Footer(5);
  const uint64_t repeat = w.size();
  w.SectionFull(3, "dev", 3, 1).Footer(3);  // remembered: a repeat
  w.SectionFull(5, "dev", 4, 1).Footer(5);  // not remembered
  w.Eof();
  ParseOptions options;
  options.limits.max_section_ids = 2;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kSectionUntracked, third).Path("FULL 'dev' #2")));
  EXPECT_EQ(r.findings.count(FindingCode::kSectionUntracked), 1u);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kDuplicateSectionId, repeat).QemuAccepts()));
  EXPECT_EQ(r.findings.count(FindingCode::kDuplicateSectionId), 1u) << FormatFindings(r);
}

// START sections keep their state for their PARTs and END, up to
// kMaxStartedSections; a later one is parsed but not followed.
TEST(SectionTest, StartSectionsPastTheLimitAreNotFollowed) {
  StreamWriter w = Preamble();
  for (uint32_t id = 0; id < kMaxStartedSections; ++id) {
    w.SectionStart(id, "ram", 0, 4).RamEos().Footer(id).SectionEnd(id).RamEos().Footer(id);
  }
  const uint64_t start = w.size();
  w.SectionStart(kMaxStartedSections, "ram", 0, 4).RamEos().Footer(kMaxStartedSections);
  const uint64_t end = w.size();
  w.SectionEnd(kMaxStartedSections).RamEos().Footer(kMaxStartedSections).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kSectionUntracked, start).Path("START 'ram' #0")));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownSectionId, end)
                                .Path(absl::StrCat("END #id ", kMaxStartedSections))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUnknownSectionId}));
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

// --- Names from the stream in findings ---------------------------------------------------

// Block names, section names, capability and subsection names, device and
// field names: bytes that reach findings only through EscapeName.
const std::string kHostileName = "n\xff\x1b[31m\x07";

void ExpectPrintable(const FindingList& findings, const std::string& what) {
  for (const Finding& finding : findings.findings()) {
    for (const std::string* text : {&finding.path, &finding.message}) {
      for (char c : *text) {
        EXPECT_TRUE(c >= 0x20 && c <= 0x7e)
            << what << ": " << DescribeFinding(finding.code).name << " has byte "
            << static_cast<int>(static_cast<unsigned char>(c)) << " in '" << absl::CHexEscape(*text)
            << "'";
      }
    }
  }
}

TEST(EscapeTest, NamesFromTheStreamAreEscapedInEveryFinding) {
  std::vector<std::pair<std::string, FindingList>> results;
  auto add = [&results](const std::string& what, const FindingList& findings) {
    results.emplace_back(what, findings);
  };
  {  // a capability, then a configuration subsection
    StreamWriter w;
    w.Header().ConfigurationStart("pc").Subsection("configuration/capabilities");
    w.Be32(1).CountedString(kHostileName);
    w.Subsection(kHostileName);
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kConfigBadCapability)) << FormatFindings(r);
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kConfigBadSubsection)) << FormatFindings(r);
    add("configuration", r.findings);
  }
  {  // RAM blocks, discards, RECV_BITMAP, device sections, a repeated id
    StreamWriter w = Preamble();
    w.OpenReturnPath().Advise();
    w.SectionStart(kRamId, "ram", 0, 4).RamMemSize({{kHostileName, 0x2000}}).RamEos();
    w.Footer(kRamId);
    w.SectionPart(kRamId).RamZero(kHostileName, 0x1000, 9).RamZero(kHostileName + "?", 0);
    w.RamEos().Footer(kRamId);
    w.RamDiscard(kHostileName + "?", {{0, 0x1000}}).RecvBitmap(kHostileName + "?");
    w.SectionEnd(kRamId).RamEos().Footer(kRamId);
    w.SectionFull(3, kHostileName, 0, 1).Be32(7).Footer(3);
    w.SectionFull(3, kHostileName, 0, 1).Be32(7).Footer(3).Eof();
    ParseResult r = ParseBytes(w.bytes());
    for (FindingCode code : {FindingCode::kRamZeroFill, FindingCode::kRamUnknownBlock,
                             FindingCode::kDiscardBlock, FindingCode::kCommandPayload,
                             FindingCode::kDeviceUnverified, FindingCode::kDuplicateSectionId}) {
      EXPECT_TRUE(r.findings.HasCode(code)) << DescribeFinding(code).name << FormatFindings(r);
    }
    add("ram and devices", r.findings);
  }
  {  // an iterable section qmig does not know
    StreamWriter w = Preamble();
    w.SectionStart(3, kHostileName, 0, 1).Be32(7).Footer(3).Eof();
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kIterableUnverified)) << FormatFindings(r);
    add("iterable", r.findings);
  }
  {  // a described device: START for it, never ended; a subsection by another name
    const std::string name = "d\x1b\x07";
    StreamWriter w = Preamble();
    w.SectionStart(3, name, 0, 1).Footer(3);
    w.SectionFull(4, "sub", 0, 1).U8(0x05).CountedString(kHostileName).Be32(1).Footer(4).Eof();
    w.VmDescription(R"({"devices":[{"name":"d\u001b\u0007","instance_id":0,"vmsd_name":"d",
        "version":1,"fields":[]},{"name":"sub","instance_id":0,"vmsd_name":"sub","version":1,
        "fields":[],"subsections":[{"vmsd_name":"s\u0007","version":1,"fields":[]}]}]})");
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kIterableUnverified)) << FormatFindings(r);
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kDeviceSubsection)) << FormatFindings(r);
    add("described devices", r.findings);

    StreamWriter ended = Preamble();
    ended.SectionStart(3, name, 0, 1).Footer(3).Eof();
    ended.VmDescription(R"({"devices":[{"name":"d\u001b\u0007","instance_id":0,
        "vmsd_name":"d","version":1,"fields":[]}]})");
    r = ParseBytes(ended.bytes());
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kSectionNotEnded)) << FormatFindings(r);
    add("never ended", r.findings);
  }
  {  // a trailer that is not JSON, quoted by the syntax error
    StreamWriter w = Preamble();
    w.Eof().VmDescription("{\"devices\": [\xff\x1b\x07]}");
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kVmdescBadJson)) << FormatFindings(r);
    add("trailer", r.findings);
  }
  {  // the return path: page requests and a received bitmap
    const std::string unknown = kHostileName + "?";
    StreamWriter w;
    w.Be16(3).Be16(13 + unknown.size()).Be64(0).Be32(0x1000).CountedString(unknown);
    w.Be16(3).Be16(13 + kHostileName.size()).Be64(0x10000).Be32(0x1000);
    w.CountedString(kHostileName);
    w.Be16(5).Be16(1 + kHostileName.size()).CountedString(kHostileName);
    w.Be64(16).Bytes(std::vector<uint8_t>(16, 0)).Be64(0x0123456789abcdefULL);
    MemorySource source(w.bytes());
    ReturnPathOptions options;
    options.block_lengths = {{kHostileName, 0x1000}};
    ReturnPathResult r = ParseReturnPath(source, options);
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kRpBadPayload));
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kRpBitmap));
    add("return path", r.findings);
  }
  {  // multifd packets: a page past its block, a block nobody has
    StreamWriter w;
    w.Be32(0x11223344).Be32(1).Bytes(std::vector<uint8_t>(56, 0));
    w.Be32(0x11223344).Be32(1).Be32(0).Be32(128).Be32(1).Be32(4096).Be64(1);
    w.Bytes(std::vector<uint8_t>(32, 0));
    std::vector<uint8_t> block(256, 0);
    std::copy(kHostileName.begin(), kHostileName.end(), block.begin());
    w.Bytes(block).Be64(0x3000).Bytes(std::vector<uint8_t>(127 * 8 + 4096, 0));
    block[kHostileName.size()] = '?';  // then one for a block nobody has
    w.Be32(0x11223344).Be32(1).Be32(0).Be32(128).Be32(1).Be32(4096).Be64(2);
    w.Bytes(std::vector<uint8_t>(32, 0));
    w.Bytes(block).Be64(0).Bytes(std::vector<uint8_t>(127 * 8 + 4096, 0));
    MemorySource source(w.bytes());
    MultifdOptions options;
    options.block_lengths = {{kHostileName, 0x1000}};
    MultifdResult r = ParseMultifdChannel(source, options);
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kMultifdBadPacket));
    add("multifd", r.findings);
  }
  {  // a preempt channel page for an unknown block
    StreamWriter w;
    w.Be64(ram_flag::kZero).CountedString(kHostileName).U8(0);
    MemorySource source(w.bytes());
    PreemptChannelOptions options;
    options.block_lengths = {{"ok", 0x1000}};
    PreemptChannelResult r = ParsePreemptChannel(source, options);
    EXPECT_TRUE(r.findings.HasCode(FindingCode::kRamUnknownBlock));
    add("preempt", r.findings);
  }
  for (const auto& [what, findings] : results) ExpectPrintable(findings, what);
}

// --- Multifd packets ----------------------------------------------------------------------

constexpr uint32_t kMultifdZlib = 1u << 1;

StreamWriter MultifdInit() {
  StreamWriter w;
  w.Be32(kMultifdMagic).Be32(kMultifdVersion).Bytes(std::vector<uint8_t>(56, 0));
  return w;
}

// A packet header with 128 offsets (page i at i * 4 KiB of "pc.ram"), then
// `data` bytes of zeros as its payload.
void MultifdPacket(StreamWriter& w, uint32_t flags, uint32_t pages, uint32_t next_packet_size,
                   uint64_t data) {
  w.Be32(kMultifdMagic).Be32(kMultifdVersion).Be32(flags).Be32(128).Be32(pages);
  w.Be32(next_packet_size).Be64(0).Bytes(std::vector<uint8_t>(32, 0));
  std::vector<uint8_t> block(256, 0);
  std::string name = "pc.ram";
  std::copy(name.begin(), name.end(), block.begin());
  w.Bytes(block);
  for (uint64_t i = 0; i < 128; ++i) w.Be64(i * kTargetPageSize);
  w.Bytes(std::vector<uint8_t>(data, 0));
}

MultifdResult ParseMultifd(const StreamWriter& w) {
  MemorySource source(w.bytes());
  MultifdOptions options;
  options.block_lengths = {{"pc.ram", 0x100000}};
  return ParseMultifdChannel(source, options);
}

// QEMU 7.2's receiver reads normal_pages pages and never looks at
// next_packet_size, which its sender sets to their size; a sync packet
// without pages keeps the previous packet's (as real streams show).
TEST(MultifdTest, NextPacketSizeNotMatchingThePagesIsAWarning) {
  StreamWriter w = MultifdInit();
  MultifdPacket(w, 0, 2, 2 * 4096, 2 * 4096);
  MultifdPacket(w, kMultifdFlagSync, 0, 2 * 4096, 0);
  const uint64_t packet = w.size();
  MultifdPacket(w, 0, 1, 3 * 4096, 4096);
  MultifdResult r = ParseMultifd(w);
  EXPECT_EQ(r.summary.packets, 3u);
  EXPECT_EQ(r.summary.pages, 3u);
  EXPECT_EQ(r.findings.error_count(), 0u);
  ASSERT_EQ(r.findings.findings().size(), 1u);
  const Finding& finding = r.findings.findings()[0];
  EXPECT_EQ(finding.code, FindingCode::kMultifdPacketSize);
  EXPECT_EQ(finding.severity, Severity::kWarning);
  EXPECT_EQ(finding.offset, packet + 20);
  EXPECT_TRUE(finding.qemu_accepts);
  EXPECT_EQ(finding.path, absl::StrCat("packet@", HexOffset(packet)));
}

// A compressed packet's data is next_packet_size bytes, read only when it
// has pages; QEMU 7.2 reads it into a 1 MiB buffer without a check.
TEST(MultifdTest, CompressedPacketSizes) {
  StreamWriter w = MultifdInit();
  MultifdPacket(w, kMultifdZlib, 3, 100, 100);
  MultifdPacket(w, kMultifdZlib | kMultifdFlagSync, 0, 100, 0);  // stale size, no data
  MultifdPacket(w, kMultifdZlib, 1, 50, 50);
  MultifdResult r = ParseMultifd(w);
  EXPECT_EQ(r.summary.packets, 3u);
  EXPECT_EQ(r.findings.findings().size(), 0u);
  EXPECT_EQ(r.summary.bytes, w.size());

  for (uint32_t size : {uint32_t{0}, static_cast<uint32_t>(kMultifdCompressedBufferBytes) + 1}) {
    StreamWriter over = MultifdInit();
    const uint64_t packet = over.size();
    MultifdPacket(over, kMultifdZlib, 1, size, 0);
    MultifdResult bad = ParseMultifd(over);
    ASSERT_EQ(bad.findings.findings().size(), 1u) << size;
    EXPECT_EQ(bad.findings.findings()[0].code, FindingCode::kMultifdBadPacket);
    EXPECT_EQ(bad.findings.findings()[0].offset, packet + 20);
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
