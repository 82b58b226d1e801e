// The loopback destination on real QEMU 7.2 streams and on streams from the
// stream writer: verdicts, the return path, guest memory against what QEMU
// recorded, faults served through userfaultfd, and no leaks over many runs.
#include "emulator/destination.h"

#include <dirent.h>
#include <openssl/sha.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "emulator/replay.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "parser/encode/stream_writer.h"
#include "tests/test_files.h"

namespace qmig {
namespace {

using testing::ReadFileBytes;
using testing::RunfilePath;

std::string Sha256Hex(const uint8_t* data, size_t size) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(data, size, digest);
  std::string hex;
  for (uint8_t byte : digest) absl::StrAppendFormat(&hex, "%02x", byte);
  return hex;
}

nlohmann::json Meta(const std::string& stream) {
  std::string name = stream.substr(0, stream.rfind('.'));
  std::vector<uint8_t> bytes = ReadFileBytes(RunfilePath("corpus/qemu-7.2/" + name + ".meta.json"));
  return nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
}

ReplayResult Replay(const std::vector<uint8_t>& data, ReplayOptions options = {}) {
  MemorySource source(data);
  absl::StatusOr<ReplayResult> result = ReplayStream(source, options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return ReplayResult();
  return *std::move(result);
}

std::string Errors(const FindingList& findings) {
  std::string out;
  for (const Finding& f : findings.findings()) {
    if (f.severity == Severity::kError) {
      absl::StrAppend(&out, DescribeFinding(f.code).name, " @", f.offset, " ", f.path, ": ",
                      f.message, "\n");
    }
  }
  return out;
}

// Every page QEMU's destination was checked to hold, from the metadata.
void ExpectGuestMemoryMatches(const std::string& stream, const std::vector<uint8_t>& data) {
  nlohmann::json meta = Meta(stream);
  ASSERT_TRUE(meta.contains("expected_pages")) << stream;
  DestinationOptions options;
  Destination destination(options);
  MemorySource source(data);
  DestinationReport report = destination.Run(source);
  ASSERT_TRUE(report.valid()) << Errors(report.parse.findings);
  GuestArena* arena = destination.arena();
  ASSERT_NE(arena, nullptr);
  GuestArena::Block* ram = arena->Find("pc.ram");
  ASSERT_NE(ram, nullptr);
  int checked = 0;
  for (const nlohmann::json& page : meta["expected_pages"]) {
    if (!page.value("in_stream", false)) continue;
    uint64_t address = 0;
    ASSERT_TRUE(absl::SimpleHexAtoi(page["addr"].get<std::string>(), &address));
    if (address + GuestArena::kPage > ram->length) continue;  // not in pc.ram
    EXPECT_EQ(Sha256Hex(ram->base + address, GuestArena::kPage), page["sha256"].get<std::string>())
        << stream << " page 0x" << std::hex << address;
    ++checked;
  }
  EXPECT_GT(checked, 3) << stream;
}

TEST(DestinationTest, RealStreamsReplayCleanlyOverASocket) {
  for (const char* stream : {"pc-i440fx-7.2.mig", "pc-q35-7.2.mig", "xbzrle.mig", "compress.mig",
                             "postcopy.mig", "multi-block.mig", "dirty-bitmaps.mig",
                             "ignore-shared.mig", "no-footer.mig", "pc-i440fx-2.2.mig"}) {
    SCOPED_TRACE(stream);
    std::vector<uint8_t> data =
        ReadFileBytes(RunfilePath(std::string("corpus/qemu-7.2/") + stream));
    ReplayResult result = Replay(data);
    EXPECT_TRUE(result.report.valid()) << Errors(result.report.parse.findings);
    EXPECT_TRUE(result.return_path.valid());
    EXPECT_EQ(result.bytes_sent, data.size());
    EXPECT_FALSE(result.report.parse.findings.HasCode(FindingCode::kEmuPageNeverSent));
  }
}

TEST(DestinationTest, PostcopyReplayUsesUserfaultfdAndAnswersEveryPing) {
  std::vector<uint8_t> data = ReadFileBytes(RunfilePath("corpus/qemu-7.2/postcopy.mig"));
  std::vector<uint8_t> recorded = ReadFileBytes(RunfilePath("corpus/qemu-7.2/postcopy.rp"));
  ReplayOptions options;
  options.recorded_return_path = recorded;
  ReplayResult result = Replay(data, options);
  ASSERT_TRUE(result.report.valid()) << Errors(result.report.parse.findings);
  const DestinationStats& stats = result.report.stats;
  EXPECT_TRUE(stats.postcopy);
  EXPECT_FALSE(stats.userfaultfd.empty());
  EXPECT_GT(stats.postcopy_pages, 0u);
  EXPECT_GT(stats.discarded_pages, 0u);
  EXPECT_EQ(result.report.parse.summary.postcopy, PostcopyState::kEnd);
  std::vector<uint32_t> pongs = result.return_path.summary.pongs;
  std::sort(pongs.begin(), pongs.end());
  EXPECT_EQ(pongs, (std::vector<uint32_t>{1, 2, 3, 4}));
  EXPECT_EQ(result.return_path.summary.shut_status, 0u);
}

TEST(DestinationTest, MemoryMatchesWhatQemuLoaded) {
  for (const char* stream : {"pc-i440fx-7.2.mig", "postcopy.mig", "xbzrle.mig", "compress.mig"}) {
    std::vector<uint8_t> data =
        ReadFileBytes(RunfilePath(std::string("corpus/qemu-7.2/") + stream));
    ExpectGuestMemoryMatches(stream, data);
  }
}

TEST(DestinationTest, GuestThreadsFaultAndAreServedFromTheStream) {
  std::vector<uint8_t> data = ReadFileBytes(RunfilePath("corpus/qemu-7.2/postcopy.mig"));
  ReplayOptions options;
  absl::StatusOr<GuestPattern> pattern =
      ParseGuestPattern("random,threads=4,touches=2000,seed=7,block=pc.ram");
  ASSERT_TRUE(pattern.ok());
  options.destination.guest = *pattern;
  ReplayResult result = Replay(data, options);
  EXPECT_TRUE(result.report.valid()) << Errors(result.report.parse.findings);
  EXPECT_EQ(result.report.stats.guest_touches, 4u * 2000u);
  EXPECT_EQ(result.report.stats.page_requests, result.return_path.summary.page_requests);
  EXPECT_EQ(result.report.stats.requests_served, result.report.stats.page_requests);
}

// The writer's minimal postcopy stream discards most of each block and
// sends back only two pages: a guest that touches the rest hangs on them,
// and the pages are lost.
TEST(DestinationTest, PagesThatNeverComeAreFoundNotWaitedForForever) {
  StreamWriter w = BuildPostcopyStream();
  ReplayOptions options;
  absl::StatusOr<GuestPattern> pattern = ParseGuestPattern("sequential,threads=1,touches=64");
  ASSERT_TRUE(pattern.ok());
  options.destination.guest = *pattern;
  ReplayResult result = Replay(w.bytes(), options);
  EXPECT_TRUE(result.report.parse.findings.HasCode(FindingCode::kEmuPageLost));
  EXPECT_TRUE(result.report.parse.findings.HasCode(FindingCode::kEmuPageNeverDelivered));
  EXPECT_EQ(result.return_path.summary.shut_status, 1u);  // the destination failed
  EXPECT_GT(result.report.stats.faults, 0u);
}

// The first postcopy page record sent again, byte for byte: the arena finds
// the page already placed with the same bytes.
TEST(DestinationTest, APostcopyPageSentTwiceWithTheSameBytesIsDoubled) {
  StreamWriter w = BuildPostcopyStream();
  std::vector<uint8_t> bytes = w.bytes();
  const uint64_t record = w.MarkOf("postcopy_part") + 5;  // after the PART header
  const uint64_t length = 8 + 1 + std::string("pc.ram").size() + GuestArena::kPage;
  ASSERT_EQ(std::string(bytes.begin() + record + 9, bytes.begin() + record + 15), "pc.ram");
  bytes.insert(bytes.begin() + record + length, bytes.begin() + record,
               bytes.begin() + record + length);
  ReplayResult result = Replay(bytes);
  const FindingList& findings = result.report.parse.findings;
  ASSERT_EQ(findings.count(FindingCode::kEmuPageDoubled), 1u) << Errors(findings);
  EXPECT_FALSE(findings.HasCode(FindingCode::kEmuPageConflict));
  for (const Finding& finding : findings.findings()) {
    if (finding.code != FindingCode::kEmuPageDoubled) continue;
    EXPECT_EQ(finding.offset, record + length);
    EXPECT_EQ(finding.path, "pc.ram@0x1000");
  }
}

// Replayed against a recording whose PONGs or SHUT differ, the destination's
// answers are compared and the difference is an error.
TEST(DestinationTest, AnswersUnlikeTheRecordedReturnPathAreFindings) {
  std::vector<uint8_t> data = ReadFileBytes(RunfilePath("corpus/qemu-7.2/postcopy.mig"));
  std::vector<uint8_t> recorded = ReadFileBytes(RunfilePath("corpus/qemu-7.2/postcopy.rp"));
  // PONG 9 after the recording: be16 type 2, be16 length 4, be32 9.
  std::vector<uint8_t> extra_pong = recorded;
  extra_pong.insert(extra_pong.end(), {0, 2, 0, 4, 0, 0, 0, 9});
  ReplayOptions options;
  options.recorded_return_path = extra_pong;
  ReplayResult result = Replay(data, options);
  EXPECT_EQ(result.report.parse.findings.count(FindingCode::kEmuPongMismatch), 1u)
      << Errors(result.report.parse.findings);

  // SHUT 1 (a failed destination) in the recording: the last 4 bytes.
  std::vector<uint8_t> failed = recorded;
  ASSERT_EQ(failed[failed.size() - 7], 1);  // the SHUT type's low byte
  failed.back() = 1;
  options.recorded_return_path = failed;
  result = Replay(data, options);
  EXPECT_EQ(result.report.parse.findings.count(FindingCode::kEmuPongMismatch), 1u)
      << Errors(result.report.parse.findings);
}

// A stream may declare any RAM size; the arena stops at the limit with a
// finding instead of allocating a page-state map for 64 TiB.
TEST(DestinationTest, GuestRamOverTheLimitIsAFindingNotAnAllocation) {
  StreamWriter w;
  w.Header().Configuration({"pc-i440fx-7.2"});
  w.SectionStart(2, "ram", 0, 4).RamMemSize({{"pc.ram", uint64_t{1} << 45}}).RamEos().Footer(2);
  w.Eof();
  ReplayResult result = Replay(w.bytes());
  EXPECT_TRUE(result.report.parse.findings.HasCode(FindingCode::kEmuPlacementFailed))
      << Errors(result.report.parse.findings);
  EXPECT_FALSE(result.report.valid());
}

// Each 9-byte ZERO record with a non-zero fill byte is a whole page QEMU 7.2
// fills: resident memory. Past the resident limit the destination reports
// the page that would pass it and stops reading, a clean early end.
TEST(DestinationTest, ResidentGuestMemoryStopsAtItsLimit) {
  constexpr uint64_t kPages = 16384;  // 64 MiB of filled pages
  constexpr uint64_t kLimitPages = 256;
  StreamWriter w;
  w.Header().Configuration({"pc-i440fx-7.2"});
  w.SectionStart(2, "ram", 0, 4).RamMemSize({{"pc.ram", kPages * GuestArena::kPage}}).RamEos();
  w.Footer(2).SectionPart(2);
  uint64_t over = 0;
  for (uint64_t page = 0; page < kPages; ++page) {
    if (page == kLimitPages) over = w.size();
    w.RamZero(page == 0 ? RamBlockRef("pc.ram") : kContinueBlock, page * GuestArena::kPage, 0x5a);
  }
  w.RamEos().Footer(2).SectionEnd(2).RamEos().Footer(2).Eof();

  // With 10 findings kept, the fill-byte errors leave no room for the rest:
  // counted all the same.
  for (uint32_t kept : {1000u, 10u}) {
    SCOPED_TRACE(absl::StrCat(kept, " findings kept"));
    ReplayOptions options;
    options.transport = kept == 10 ? Transport::kTcpLoopback : Transport::kSocketPair;
    options.destination.max_resident_bytes = kLimitPages * GuestArena::kPage;
    options.destination.parse.limits.max_findings = kept;
    ReplayResult result = Replay(w.bytes(), options);
    const FindingList& findings = result.report.parse.findings;
    ASSERT_EQ(findings.count(FindingCode::kEmuResidentLimit), 1u) << Errors(findings);
    EXPECT_FALSE(result.report.valid());
    const Finding* limit = nullptr;
    for (const Finding& finding : findings.findings()) {
      if (finding.code == FindingCode::kEmuResidentLimit) limit = &finding;
    }
    if (kept == 1000) {
      ASSERT_NE(limit, nullptr);
      EXPECT_EQ(limit->offset, over);
      EXPECT_EQ(limit->path, absl::StrFormat("pc.ram@0x%x", kLimitPages * GuestArena::kPage));
    }
    // Besides the fill bytes (QEMU 7.2 takes them), the only error is the
    // limit: where reading stopped is a note, not a truncation.
    EXPECT_EQ(findings.error_count(), findings.count(FindingCode::kRamZeroFill) + 1)
        << Errors(findings);
    EXPECT_LE(findings.count(FindingCode::kRamZeroFill), kLimitPages + 1);
    EXPECT_EQ(findings.count(FindingCode::kIoError), 1u);
    EXPECT_EQ(findings.note_count(), 1u);
    EXPECT_FALSE(findings.HasCode(FindingCode::kTruncated));
    EXPECT_FALSE(result.report.parse.summary.eof_seen);
    EXPECT_LT(result.report.parse.summary.bytes, w.size());
    EXPECT_LE(result.report.stats.precopy_pages, kLimitPages + 1);
  }
}

int CountOpenFds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count;
}

int CountMappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int count = 0;
  while (std::getline(maps, line)) ++count;
  return count;
}

TEST(DestinationTest, TenThousandReplaysLeakNoDescriptorAndNoMapping) {
  StreamWriter postcopy = BuildPostcopyStream();
  StreamWriter precopy = BuildPrecopyStream();
  // Warm up allocator arenas and thread stacks before counting.
  for (int i = 0; i < 20; ++i) Replay(i % 2 ? postcopy.bytes() : precopy.bytes());
  int fds = CountOpenFds();
  int mappings = CountMappings();
  for (int i = 0; i < 10000; ++i) {
    ReplayResult result = Replay(i % 2 ? postcopy.bytes() : precopy.bytes());
    if (i % 1000 == 0) {
      ASSERT_EQ(result.report.parse.summary.eof_seen, true);
    }
  }
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_LE(CountMappings(), mappings + 8);  // allocator arenas may settle, never grow per run
}

}  // namespace
}  // namespace qmig
