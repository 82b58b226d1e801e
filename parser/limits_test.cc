// Every named limit of parser/wire/limits.h that the stream parser applies:
// the value itself, one below or at it (accepted) and one above (refused).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/parse_context.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

constexpr uint32_t kRamId = 2;

TEST(LimitsTest, DefaultsAreTheDocumentedValues) {
  ParseLimits limits;
  EXPECT_EQ(kOriginalPackageLimit, uint64_t{16} << 20);
  EXPECT_EQ(kMaxPackageLimit, 0xffffffffu);
  EXPECT_EQ(limits.max_package_bytes, kOriginalPackageLimit);
  EXPECT_EQ(limits.max_package_depth, 2u);
  EXPECT_EQ(limits.max_vmdesc_bytes, uint64_t{16} << 20);
  EXPECT_EQ(ParseOptions().limits.max_package_bytes, kOriginalPackageLimit);
  EXPECT_EQ(kMaxConfigCapabilities, 64u);
  EXPECT_EQ(kMaxMachineNameLength, 255u);
  EXPECT_EQ(kMaxCountedString, 255u);
  EXPECT_EQ(kTargetPageSize, 4096u);
}

// --- PACKAGED size ------------------------------------------------------------------

// A postcopy stream whose package blob is exactly `blob_bytes` long: LISTEN,
// PINGs, RUN (the PINGs fill 9 bytes each, the rest is one FULL section of a
// device described in *schema). *package is the PACKAGED command's offset.
StreamWriter StreamWithPackageOf(uint64_t blob_bytes, VmDescription* schema, uint64_t* package) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Advise();
  StreamWriter blob;
  blob.Listen();
  // LISTEN + RUN = 10; a FULL "big" section costs 17 + 5 (footer) + body.
  const uint64_t overhead = 10 + 17 + 5;
  const uint64_t body = blob_bytes - overhead;
  blob.SectionFull(3, "big", 0, 1);
  blob.Bytes(std::vector<uint8_t>(body, 0)).Footer(3).Run();
  const std::string json =
      absl::StrCat("{\"devices\":[{\"name\":\"big\",\"instance_id\":0,\"vmsd_name\":\"big\","
                   "\"version\":1,\"fields\":[{\"name\":\"data\",\"type\":\"buffer\",\"size\":",
                   body, "}]}]}");
  *schema = *ParseVmDescription(json);
  *package = w.size();
  w.Packaged(blob).Eof();
  return w;
}

TEST(PackageLimitTest, SmallLimitAtBelowAndAbove) {
  // LISTEN (5) + 6 PINGs (54) + RUN (5) = 64 bytes.
  StreamWriter blob;
  blob.Listen();
  for (uint32_t i = 0; i < 6; ++i) blob.Ping(10 + i);
  blob.Run();
  ASSERT_EQ(blob.size(), 64u);
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Advise();
  const uint64_t at = w.size();
  w.Packaged(blob).Eof();
  for (uint64_t limit : {64u, 65u}) {
    ParseOptions options;
    options.limits.max_package_bytes = limit;
    ParseResult r = ParseBytes(w.bytes(), options);
    EXPECT_TRUE(NoErrors(r)) << "limit " << limit;
  }
  ParseOptions options;
  options.limits.max_package_bytes = 63;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageTooLarge, at + 5)
                                .QemuAccepts()
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageTooLarge}));
}

TEST(PackageLimitTest, DefaultLimitAcceptsSixteenMebibytes) {
  VmDescription schema;
  uint64_t at;
  StreamWriter w = StreamWithPackageOf(kOriginalPackageLimit, &schema, &at);
  ParseOptions options;
  options.schema = &schema;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.devices_decoded, 1u);
}

TEST(PackageLimitTest, DefaultLimitRefusesOneByteMore) {
  VmDescription schema;
  uint64_t at;
  StreamWriter w = StreamWithPackageOf(kOriginalPackageLimit + 1, &schema, &at);
  ParseOptions options;
  options.schema = &schema;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageTooLarge, at + 5)
                                .QemuAccepts()
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageTooLarge}));
  // Raising the limit makes the same stream valid.
  options.limits.max_package_bytes = kMaxPackageLimit;
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes(), options)));
}

TEST(PackageLimitTest, TheProfileCapsARaisedLimit) {
  // The 2015 design never accepted more than 16 MiB, whatever the option.
  StreamWriter w(ProfileId::kV5Draft);
  w.Header().Configuration({"pc"}).OpenReturnPath().Advise();
  const uint64_t at = w.size();
  w.Packaged(kOriginalPackageLimit + 1, {});
  ParseOptions options = FixedProfile(ProfileId::kV5Draft);
  options.limits.max_package_bytes = kMaxPackageLimit;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageTooLarge, at + 5)
                                .QemuAccepts()
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
}

TEST(PackageLimitTest, MaximumDeclaredLengthIsRefusedBeforeReading) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Advise();
  const uint64_t at = w.size();
  w.Packaged(0xffffffffu, {});
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageTooLarge, at + 5).QemuAccepts()));
}

// --- VMDESCRIPTION size ---------------------------------------------------------------

TEST(VmdescLimitTest, AtAndAboveTheLimit) {
  StreamWriter w = BuildPrecopyStream();
  const uint64_t json = w.size() - w.MarkOf("vmdesc") - 5;
  ParseOptions options;
  options.limits.max_vmdesc_bytes = json;
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes(), options)));
  options.limits.max_vmdesc_bytes = json - 1;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescTooLarge, w.MarkOf("vmdesc")).QemuAccepts()));
}

// --- RAM ----------------------------------------------------------------------------------

std::vector<uint8_t> MemSizeStream(const std::vector<RamBlockSpec>& blocks, uint64_t* at) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).SectionStart(kRamId, "ram", 0, 4);
  *at = w.size();
  w.RamMemSize(blocks).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  return w.Take();
}

std::vector<RamBlockSpec> ManyBlocks(size_t n) {
  std::vector<RamBlockSpec> blocks;
  for (size_t i = 0; i < n; ++i) blocks.push_back({absl::StrCat("b", i), kTargetPageSize});
  return blocks;
}

TEST(RamLimitTest, BlockCount) {
  uint64_t at;
  ParseResult ok = ParseBytes(MemSizeStream(ManyBlocks(kMaxRamBlocks), &at));
  EXPECT_TRUE(NoErrors(ok));
  EXPECT_EQ(ok.summary.ram_blocks.size(), kMaxRamBlocks);
  ParseResult r = ParseBytes(MemSizeStream(ManyBlocks(kMaxRamBlocks + 1), &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMemSize, at).Path("START 'ram' #0 > MEM_SIZE")));
}

TEST(RamLimitTest, BlockLength) {
  uint64_t at;
  EXPECT_TRUE(NoErrors(ParseBytes(MemSizeStream({{"big", kMaxRamBlockLength}}, &at))));
  ParseResult r =
      ParseBytes(MemSizeStream({{"big", kMaxRamBlockLength + kTargetPageSize}}, &at));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamMemSize, at + 8).PathHas("MEM_SIZE")));
}

TEST(RamLimitTest, XbzrleLengthAtOnePage) {
  // 4096 literal bytes need a 2-byte count and do not fit; 4093 do (+ 3
  // bytes of counts = 4096).
  std::vector<uint8_t> encoded = {0x03, 0xfd, 0x1f};  // zero run 3, literal 4093
  encoded.resize(kMaxXbzrleEncoded, 0x55);
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize({{"pc.ram", 0x1000}}).RamEos().Footer(kRamId);
  w.SectionPart(kRamId).RamXbzrle("pc.ram", 0, encoded).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes())));
}

// --- Findings -------------------------------------------------------------------------------

TEST(FindingLimitTest, FurtherFindingsAreCountedNotKept) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4).RamMemSize({{"pc.ram", 0x10000}}).RamEos().Footer(kRamId);
  w.SectionPart(kRamId);
  for (uint64_t page = 0; page < 10; ++page) w.RamZero("pc.ram", page * kTargetPageSize, 1);
  w.RamEos().Footer(kRamId).SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseOptions options;
  options.limits.max_findings = 3;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_EQ(r.findings.findings().size(), 3u);
  EXPECT_EQ(r.findings.error_count(), 10u);
  EXPECT_EQ(r.findings.dropped(), 8u);  // 10 fills + the vmdesc note - 3 kept
}

// A flood of warnings must not hide the error after it: the truncation at
// the end is stored, in place of the last warning, and counted by code.
TEST(FindingLimitTest, AnErrorAfterTheLimitIsStoredInPlaceOfAWarning) {
  constexpr uint64_t kRepeats = 100000;
  StreamWriter w;
  w.Header().Configuration({"pc"});
  for (uint64_t i = 0; i <= kRepeats; ++i) w.OpenReturnPath();  // all but the first warn
  const uint64_t cut = w.size() + 3;
  w.OpenReturnPath();
  std::vector<uint8_t> bytes = w.Take();
  bytes.resize(cut);
  ParseResult r = ParseBytes(bytes);
  ASSERT_EQ(r.findings.findings().size(), 1000u);
  EXPECT_EQ(r.findings.warning_count(), kRepeats);
  EXPECT_EQ(r.findings.count(FindingCode::kDuplicateReturnPath), kRepeats);
  EXPECT_EQ(r.findings.error_count(), 1u);
  EXPECT_EQ(r.findings.dropped(), kRepeats + 1 - 1000);
  EXPECT_TRUE(r.findings.HasCode(FindingCode::kTruncated));
  EXPECT_EQ(r.findings.findings().back().code, FindingCode::kTruncated) << FormatFindings(r);
  EXPECT_EQ(r.findings.findings().back().offset, cut);
  EXPECT_EQ(r.findings.findings().front().code, FindingCode::kDuplicateReturnPath);
}

Finding MakeFinding(FindingCode code, Severity severity, uint64_t offset) {
  Finding finding;
  finding.code = code;
  finding.severity = severity;
  finding.offset = offset;
  return finding;
}

// Errors take the places of the latest non-errors, in order, until only
// errors are stored; later errors are counted, not stored.
TEST(FindingLimitTest, ErrorsEvictTheLatestNonErrorsAndKeepTheOrder) {
  FindingList list(4);
  list.Add(MakeFinding(FindingCode::kDeviceUnverified, Severity::kWarning, 1));
  list.Add(MakeFinding(FindingCode::kRamZeroFill, Severity::kError, 2));
  list.Add(MakeFinding(FindingCode::kVmdescAbsent, Severity::kNote, 3));
  list.Add(MakeFinding(FindingCode::kRamZeroFill, Severity::kError, 4));
  list.Add(MakeFinding(FindingCode::kDeviceUnverified, Severity::kWarning, 5));  // not stored
  list.Add(MakeFinding(FindingCode::kTruncated, Severity::kError, 6));
  list.Add(MakeFinding(FindingCode::kRamOffset, Severity::kError, 7));
  list.Add(MakeFinding(FindingCode::kRamOffset, Severity::kError, 8));  // not stored
  std::vector<uint64_t> offsets;
  for (const Finding& finding : list.findings()) offsets.push_back(finding.offset);
  EXPECT_EQ(offsets, (std::vector<uint64_t>{2, 4, 6, 7}));
  EXPECT_EQ(list.error_count(), 5u);
  EXPECT_EQ(list.warning_count(), 2u);
  EXPECT_EQ(list.note_count(), 1u);
  EXPECT_EQ(list.dropped(), 4u);
  EXPECT_EQ(list.count(FindingCode::kDeviceUnverified), 2u);
  EXPECT_EQ(list.count(FindingCode::kRamOffset), 2u);
  EXPECT_TRUE(list.HasCode(FindingCode::kVmdescAbsent));  // evicted, still counted
  EXPECT_FALSE(list.HasCode(FindingCode::kRamBadFlags));

  // Counting what another list did not store, as a merge does.
  FindingList merged(8);
  for (const Finding& finding : list.findings()) merged.Add(finding);
  merged.AddUnstoredCountsOf(list);
  EXPECT_EQ(merged.error_count(), 5u);
  EXPECT_EQ(merged.warning_count(), 2u);
  EXPECT_EQ(merged.note_count(), 1u);
  EXPECT_EQ(merged.dropped(), 4u);
  EXPECT_EQ(merged.count(FindingCode::kRamOffset), 2u);
  EXPECT_EQ(merged.count(FindingCode::kVmdescAbsent), 1u);

  // An unstored error that turned out to be harmless counts as a note.
  merged.Recount(Severity::kError, Severity::kNote);
  EXPECT_EQ(merged.error_count(), 4u);
  EXPECT_EQ(merged.note_count(), 2u);
  EXPECT_EQ(merged.count(FindingCode::kRamOffset), 2u);
}

// --- Device scanning and buffering -----------------------------------------------------------

// Past the memory limit, a pipe keeps the rest in a temporary file and
// decodes the devices as a file does (pipe_verdict_test has the rest).
TEST(DeviceLimitTest, TrailerBeyondTheBufferLimitIsStillReadOnAPipe) {
  StreamWriter w = BuildPrecopyStream();
  ParseOptions options;
  options.limits.max_buffered_device_state = 16;
  ParseResult memory = ParseBytes(w.bytes(), options);
  EXPECT_EQ(memory.summary.devices_decoded, 3u);  // the whole input is at hand
  ParseResult pipe = ParseBytesThroughPipe(w.bytes(), options);
  EXPECT_TRUE(NoErrors(pipe)) << FormatFindings(pipe);
  EXPECT_EQ(pipe.summary.devices_decoded, 3u);
  EXPECT_EQ(pipe.summary.devices_unverified, 0u);
}

// Scanning stops at the limit (in steps of kMaxContiguousView). The parser
// cannot go on after that, so the stream must not come out valid.
TEST(DeviceLimitTest, ScanLimitStopsTheParse) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  const uint64_t body = w.size() + 17;
  w.SectionFull(3, "big", 0, 1).Bytes(std::vector<uint8_t>(3 * kMaxContiguousView, 0));
  w.Footer(3).Eof();
  ParseOptions options;
  options.limits.max_device_scan_bytes = 16;
  ParseResult r = ParseBytes(w.bytes(), options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kDeviceUnframed, body).Path("FULL 'big' #0")));
  EXPECT_FALSE(r.summary.eof_seen);
  // A stream the parser gave up on is never valid.
  EXPECT_FALSE(r.valid()) << FormatFindings(r);
}

}  // namespace
}  // namespace qmig
