// Whole migrations from the synthetic source into the destination over real
// sockets: clean ones end with identical memory; each injected fault is
// reported with its own code.
#include "emulator/loopback.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace qmig {
namespace {

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

LoopbackResult Migrate(LoopbackOptions options, GuestImage* image_out = nullptr) {
  GuestImage image = GuestImage::Synthetic(4 << 20, 3);
  absl::StatusOr<LoopbackResult> result = RunLoopback(image, options);
  EXPECT_TRUE(result.ok()) << result.status();
  if (image_out != nullptr) *image_out = image;
  if (!result.ok()) return LoopbackResult();
  return *std::move(result);
}

LoopbackOptions WithGuest(const char* pattern) {
  LoopbackOptions options;
  absl::StatusOr<GuestPattern> guest = ParseGuestPattern(pattern);
  EXPECT_TRUE(guest.ok());
  options.destination.guest = *guest;
  return options;
}

TEST(LoopbackTest, PostcopyWithFaultingGuestsEndsWithTheSourcesMemory) {
  for (Transport transport : {Transport::kSocketPair, Transport::kTcpLoopback}) {
    LoopbackOptions options = WithGuest("random,threads=4,touches=3000,block=pc.ram");
    options.transport = transport;
    options.source.background_page_delay = absl::Microseconds(200);
    LoopbackResult result = Migrate(options);
    EXPECT_TRUE(result.report.valid()) << Errors(result.report.parse.findings);
    EXPECT_EQ(result.differing_pages, 0u);
    EXPECT_EQ(result.report.parse.summary.postcopy, PostcopyState::kEnd);
    EXPECT_EQ(result.source.shut_status, 0);
    // Every request the destination sent reached the source, and pages came
    // back for them ahead of the background ones.
    EXPECT_GT(result.report.stats.page_requests, 0u);
    EXPECT_EQ(result.source.requests_received, result.report.stats.page_requests);
    EXPECT_GT(result.source.requested_pages_sent, 0u);
    std::vector<uint32_t> pongs = result.source.pongs;
    std::sort(pongs.begin(), pongs.end());
    EXPECT_EQ(pongs, (std::vector<uint32_t>{1, 2, 3, 4}));
  }
}

TEST(LoopbackTest, PrecopyEndsWithTheSourcesMemory) {
  LoopbackOptions options;
  options.source.postcopy = false;
  LoopbackResult result = Migrate(options);
  EXPECT_TRUE(result.report.valid()) << Errors(result.report.parse.findings);
  EXPECT_EQ(result.differing_pages, 0u);
  EXPECT_FALSE(result.report.stats.postcopy);
}

struct FaultCase {
  SourceFault fault;
  std::vector<FindingCode> expected;
};

TEST(LoopbackTest, EachInjectedFaultIsReportedWithItsCode) {
  const FaultCase cases[] = {
      {SourceFault::kDropPage, {FindingCode::kEmuPageLost, FindingCode::kEmuMemoryMismatch}},
      {SourceFault::kDoublePage, {FindingCode::kEmuPageConflict}},
      {SourceFault::kDiscardAfterListen,
       {FindingCode::kCommandState, FindingCode::kEmuPageLost, FindingCode::kEmuMemoryMismatch}},
      {SourceFault::kMisSizePackage, {FindingCode::kPackageBytesAfterRun}},
      {SourceFault::kForbiddenInPackage, {FindingCode::kForbiddenInPackage}},
      {SourceFault::kRunBeforeListen, {FindingCode::kCommandState}},
      {SourceFault::kStopMidStream, {FindingCode::kTruncated}},
  };
  for (const FaultCase& c : cases) {
    SCOPED_TRACE(SourceFaultName(c.fault));
    LoopbackOptions options;  // no guest: nothing touches the damaged pages
    options.source.fault = c.fault;
    LoopbackResult result = Migrate(options);
    EXPECT_FALSE(result.report.valid());
    for (FindingCode code : c.expected) {
      EXPECT_TRUE(result.report.parse.findings.HasCode(code))
          << DescribeFinding(code).name << " missing; errors:\n"
          << Errors(result.report.parse.findings);
    }
    // Whatever went wrong, the destination said so on its return path.
    if (result.source.shut_status >= 0) {
      EXPECT_EQ(result.source.shut_status, 1);
    }
    // Memory is compared once the stream has ended: there, not at 0.
    for (const Finding& finding : result.report.parse.findings.findings()) {
      if (finding.code != FindingCode::kEmuMemoryMismatch) continue;
      EXPECT_EQ(finding.offset, result.report.parse.summary.bytes);
      EXPECT_GT(finding.offset, 0u);
    }
  }
}

// A guest that needs a page the source never sends would hang in QEMU; here
// it is found, reported and released in bounded time.
TEST(LoopbackTest, AGuestWaitingForADroppedPageIsADeadlockFound) {
  for (SourceFault fault : {SourceFault::kDropPage, SourceFault::kStopMidStream}) {
    SCOPED_TRACE(SourceFaultName(fault));
    // One sweep over every page of pc.ram touches the damaged ones.
    LoopbackOptions options = WithGuest("sequential,threads=1,touches=1024,block=pc.ram");
    options.source.fault = fault;
    absl::Time start = absl::Now();
    LoopbackResult result = Migrate(options);
    EXPECT_LT(absl::Now() - start, absl::Seconds(30));
    EXPECT_TRUE(result.report.parse.findings.HasCode(FindingCode::kEmuPageNeverDelivered))
        << Errors(result.report.parse.findings);
    EXPECT_EQ(result.report.stats.guest_touches, 1024u);
  }
}

TEST(LoopbackTest, FaultNamesRoundTrip) {
  for (SourceFault fault : AllSourceFaults()) {
    absl::StatusOr<SourceFault> parsed = ParseSourceFault(SourceFaultName(fault));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, fault);
  }
  EXPECT_FALSE(ParseSourceFault("nonsense").ok());
}

}  // namespace
}  // namespace qmig
