// QEMU_VM_COMMAND decoding: numbers per profile, length rules, the postcopy
// state machine and PACKAGED sub-streams. Streams are built with StreamWriter;
// every expectation names the finding's code, offset, package offset,
// severity, qemu_accepts and path.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/encode/stream_writer.h"
#include "parser/parse_context.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

constexpr uint32_t kRamId = 2;
constexpr uint64_t kBlockLength = 0x10000;

// "PING@0x1f" etc.
std::string CommandPath(CommandKind kind, uint64_t offset) {
  return absl::StrCat(CommandKindName(kind), "@", HexOffset(offset));
}

// header, CONFIGURATION, OPEN_RETURN_PATH, PING 1, ADVISE(16), RAM START with
// MEM_SIZE {pc.ram 64 KiB}: what a postcopy stream has before its commands.
StreamWriter PostcopyPrefix(ProfileId profile = ProfileId::kQemu72) {
  StreamWriter w(profile);
  w.Header().Configuration({"pc"}).OpenReturnPath().Ping(1).Advise();
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", kBlockLength}})
      .RamEos()
      .Footer(kRamId);
  return w;
}

// RAM END and EOF, so that a stream that survives its broken command ends
// cleanly.
void Finish(StreamWriter& w) { w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof(); }

// What follows RAM_DISCARD in a real stream: the package that starts
// postcopy, then the end of RAM and EOF.
void ListenRunAndFinish(StreamWriter& w) {
  StreamWriter package;
  package.Listen().Run();
  w.Packaged(package);
  Finish(w);
}

std::vector<uint8_t> Zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

TEST(CommandsTest, PrefixAloneIsValid) {
  StreamWriter w = PostcopyPrefix();
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kAdvise);
}

// --- Unknown numbers -------------------------------------------------------

TEST(CommandsTest, NumberElevenIsUnknownToQemu72) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Command(11, 0, {});
  ParseResult r = ParseBytes(w.bytes(), FixedProfile(ProfileId::kQemu72));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownCommand, at).Path("COMMAND@0xf")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUnknownCommand}));
}

TEST(CommandsTest, NumberTwelveIsUnknownToEveryProfile) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Command(12, 0, {}).Eof();
  ParseResult r = ParseBytes(w.bytes());  // auto-detection
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownCommand, at).Path("COMMAND@")));
}

TEST(CommandsTest, CommandZeroIsInvalid) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Command(0, 0, {}).Eof();
  ParseResult r = ParseBytes(w.bytes(), FixedProfile());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownCommand, at).Path("COMMAND@")));
}

TEST(CommandsTest, QemuThirtyHasNoTenButV5DraftHasTwenty) {
  {
    StreamWriter w(ProfileId::kQemu30);
    w.Header().Configuration({"pc"});
    uint64_t at = w.size();
    w.Command(10, 2, std::vector<uint8_t>{1, 'a'}).Eof();
    ParseResult r = ParseBytes(w.bytes(), FixedProfile(ProfileId::kQemu30));
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownCommand, at)));
  }
  {
    StreamWriter w(ProfileId::kQemu72);
    w.Header().Configuration({"pc"});
    uint64_t at = w.size();
    w.Command(20, 16, Zeros(16)).Eof();
    ParseResult r = ParseBytes(w.bytes(), FixedProfile(ProfileId::kQemu72));
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUnknownCommand, at)));
  }
}

// --- Fixed lengths ----------------------------------------------------------

class FixedLengthTest : public ::testing::TestWithParam<ProfileId> {};

TEST_P(FixedLengthTest, EveryFixedLengthCommandRejectsAnotherLength) {
  const Profile& profile = GetProfile(GetParam());
  int checked = 0;
  for (const CommandSpec& spec : profile.commands) {
    if (spec.fixed_length < 0) continue;
    for (int delta : {1, -1}) {
      int length = spec.fixed_length + delta;
      if (length < 0) continue;
      SCOPED_TRACE(absl::StrCat(CommandKindName(spec.kind), " with length ", length));
      StreamWriter w = PostcopyPrefix(GetParam());
      uint64_t at = w.size();
      w.Command(spec.number, static_cast<uint16_t>(length), Zeros(length));
      Finish(w);
      ParseResult r = ParseBytes(w.bytes(), FixedProfile(GetParam()));
      EXPECT_TRUE(
          HasFinding(r, Want(FindingCode::kCommandLength, at).Path(CommandPath(spec.kind, at))));
      EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandLength}));
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Profiles, FixedLengthTest,
                         ::testing::Values(ProfileId::kQemu72, ProfileId::kUpstream,
                                           ProfileId::kQemu30, ProfileId::kV5Draft));

TEST(CommandsTest, EnableColoHasLengthZero) {
  StreamWriter w = PostcopyPrefix();
  w.EnableColo();
  Finish(w);
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes(), FixedProfile())));
}

// The stream loads, but the destination then stays in COLO: said, not refused.
TEST(CommandsTest, EnableColoIsAWarning) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  const uint64_t at = w.size();
  w.EnableColo().Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kEnableColo, at)
                                .QemuAccepts()
                                .Sev(Severity::kWarning)
                                .Path("ENABLE_COLO@")));
  EXPECT_TRUE(NoErrors(r));
}

// --- OPEN_RETURN_PATH and PING ------------------------------------------------

TEST(CommandsTest, PingWithoutReturnPath) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Ping(7).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kPingNoReturnPath, at).Path(CommandPath(CommandKind::kPing, at))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPingNoReturnPath}));
  EXPECT_EQ(r.summary.pings, std::vector<uint32_t>{7});
}

TEST(CommandsTest, ReturnPathOpenedTwiceIsAWarningQemuAccepts) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath();
  uint64_t at = w.size();
  w.OpenReturnPath().Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kDuplicateReturnPath, at)
                                .QemuAccepts()
                                .Sev(Severity::kWarning)
                                .Path("OPEN_RETURN_PATH@")));
  EXPECT_TRUE(NoErrors(r));
}

// --- POSTCOPY_ADVISE ----------------------------------------------------------

TEST(CommandsTest, AdviseOfLengthZeroIsDirtyBitmapPostcopy) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).Advise(/*with_ram=*/false).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kAdvise);
}

// The postcopy prefix with a 0-byte ADVISE (what the dirty-bitmaps
// capability sends without postcopy-ram).
StreamWriter DirtyBitmapPostcopyPrefix() {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath().Ping(1).Advise(/*with_ram=*/false);
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", kBlockLength}})
      .RamEos()
      .Footer(kRamId);
  return w;
}

// Dirty-bitmap postcopy: LISTEN and RUN with no RAM page after them.
TEST(CommandsTest, AdviseOfLengthZeroWithListenAndRunIsValid) {
  StreamWriter w = DirtyBitmapPostcopyPrefix();
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  StreamWriter package;
  package.Listen().Ping(3).Run();
  w.Packaged(package).Ping(4).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r)) << FormatFindings(r);
  EXPECT_EQ(r.findings.warning_count(), 0u) << FormatFindings(r);
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kEnd);
}

// A 0-byte ADVISE does not advise RAM postcopy. QEMU 7.2 (savevm.c,
// ram.c): a destination with postcopy-ram refuses the ADVISE itself; one
// without takes the discards and LISTEN, then its listen thread refuses the
// first postcopy page ("Illegal RAM offset": only a 16-byte ADVISE sets the
// blocks' postcopy_length). qmig's first error is that page; the discards,
// which drop pages nothing sends again, are a warning.
TEST(CommandsTest, AdviseOfLengthZeroThenPostcopyRamPagesFailsAtTheFirstPage) {
  StreamWriter w = DirtyBitmapPostcopyPrefix();
  const uint64_t discard = w.size();
  w.RamDiscard("pc.ram", {{0x1000, 0x1000}}).RamDiscard("pc.ram", {{0x3000, 0x1000}});
  StreamWriter package;
  package.Listen().Ping(3).Run();
  w.Packaged(package).Ping(4);
  w.SectionPart(kRamId);
  const uint64_t page = w.size();
  w.RamPageFilled("pc.ram", 0x1000, 7).RamZero("pc.ram", 0x3000).RamEos().Footer(kRamId);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kRamPostcopyRecord, page).Path("PART 'ram' #0 > pc.ram@0x1000")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamPostcopyRecord}));
  ASSERT_EQ(Errors(r).size(), 1u) << FormatFindings(r);  // reported once
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, discard)
                                .Sev(Severity::kWarning)
                                .QemuAccepts()
                                .Path("POSTCOPY_RAM_DISCARD@")));
  EXPECT_EQ(FindingsWithCode(r, FindingCode::kCommandState).size(), 1u) << FormatFindings(r);
}

TEST(CommandsTest, AdviseOfLengthSixteenIsRamPostcopy) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).Advise(true, 0x201000, 4096).Eof();
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes())));
}

TEST(CommandsTest, AdviseOfLengthEightIsRejected) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Command(CommandKind::kPostcopyAdvise, Zeros(8)).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandLength, at).Path("POSTCOPY_ADVISE@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandLength}));
}

TEST(CommandsTest, V5DraftAdviseIsAlwaysSixteenBytes) {
  StreamWriter w(ProfileId::kV5Draft);
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Advise(/*with_ram=*/false).Eof();
  ParseResult r = ParseBytes(w.bytes(), FixedProfile(ProfileId::kV5Draft));
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandLength, at).Path("POSTCOPY_ADVISE@")));
}

TEST(CommandsTest, AdviseWithWrongTargetPageSize) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Advise(true, 4096, 8192).Eof();
  ParseResult r = ParseBytes(w.bytes());
  // The target page size is the second be64 of the payload.
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandPayload, at + 5 + 8).Path("POSTCOPY_ADVISE@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandPayload}));
}

TEST(CommandsTest, AdviseWithPageSummaryThatIsNoPageSize) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  uint64_t at = w.size();
  w.Advise(true, 0x1234, 4096).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandPayload, at + 5)));
}

TEST(CommandsTest, SecondAdviseAndAdviseAfterRam) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.Advise();
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  // Both rules fire on the same command: a second ADVISE, and after RAM.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, at).Path("POSTCOPY_ADVISE@")));
  EXPECT_EQ(FindingsWithCode(r, FindingCode::kCommandState).size(), 2u) << FormatFindings(r);
}

// --- LISTEN / RUN ----------------------------------------------------------------

TEST(CommandsTest, ListenOutsideAPackage) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.Listen().Run();
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kCommandState, at).Path(CommandPath(CommandKind::kPostcopyListen, at))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandState}));
}

TEST(CommandsTest, ListenWithoutAdvise) {
  StreamWriter w;
  w.Header().Configuration({"pc"}).OpenReturnPath();
  StreamWriter package;
  package.Listen().Run();
  uint64_t at = w.size();
  w.Packaged(package).Eof();
  ParseResult r = ParseBytes(w.bytes());
  const uint64_t blob = at + 9;
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, blob)
                                .InPackage(0)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at),
                                                   " > POSTCOPY_LISTEN@", HexOffset(blob)))));
}

TEST(CommandsTest, RunWithoutListen) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Run();
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandState, at + 9)
                        .InPackage(0)
                        .Path(absl::StrCat("PACKAGED@", HexOffset(at), " > POSTCOPY_RUN@"))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandState}));
}

// After LISTEN the listen thread reads the stream after the package while
// the package is still loading: RAM inside the package would share the main
// channel's RAM state with it (found by fuzz_qemu against 11.1, where a RAM
// part moved into the package left the listen thread a CONTINUE record with
// no block yet: "Ack, bad migration stream!").
TEST(CommandsTest, RamInAPackageAfterListenIsRejected) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen();
  const uint64_t ram_in_package = package.size();
  package.SectionPart(kRamId).RamZero({"pc.ram"}, 0).RamEos().Footer(kRamId);
  package.Run();
  const uint64_t blob = w.size() + 9;  // command header, then the package length
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(
      r,
      Want(FindingCode::kPackageRamAfterListen, blob + ram_in_package).InPackage(ram_in_package)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageRamAfterListen}));
}

// Before LISTEN, the package is loaded alone: RAM there races nothing.
TEST(CommandsTest, RamInAPackageBeforeListenIsNotARace) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.SectionPart(kRamId).RamZero({"pc.ram"}, 0).RamEos().Footer(kRamId);
  package.Listen().Run();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_FALSE(r.findings.HasCode(FindingCode::kPackageRamAfterListen));
}

TEST(CommandsTest, ListenRunInAPackageIsValid) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Ping(3).Run();
  w.Packaged(package).Ping(4);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kEnd);
  EXPECT_EQ(r.summary.pings, (std::vector<uint32_t>{1, 3, 4}));
}

// --- POSTCOPY_RAM_DISCARD ---------------------------------------------------------------

TEST(CommandsTest, DiscardValid) {
  StreamWriter w = PostcopyPrefix();
  w.RamDiscard("pc.ram", {{0x1000, 0x2000}, {0x8000, 0x8000}});
  ListenRunAndFinish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kEnd);
}

// RAM_DISCARD announces postcopy; a stream that then ends without LISTEN
// leaves QEMU 7.2 to 10.0 waiting for a listen thread that never starts.
TEST(CommandsTest, EofAfterDiscardWithoutListenIsRejected) {
  StreamWriter w = PostcopyPrefix();
  w.RamDiscard("pc.ram", {{0x1000, 0x1000}});
  w.SectionEnd(kRamId).RamEos().Footer(kRamId);
  const uint64_t eof = w.size();
  w.Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_EQ(r.summary.postcopy, PostcopyState::kDiscard);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, eof).QemuAccepts()));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandState}));
  for (const Finding& finding : r.findings.findings()) {
    EXPECT_EQ(finding.qemu_accepts, QemuReleases::Only(QemuRelease::k11_1)) << finding.message;
  }
}

TEST(CommandsTest, DiscardWithNoRangeIsRejected) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {});  // len = 3 + L: n = 0
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandLength, at).Path("POSTCOPY_RAM_DISCARD@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandLength}));
}

TEST(CommandsTest, DiscardLengthNotThreePlusNamePlusSixteenN) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  std::vector<uint8_t> payload = StreamWriter::RamDiscardPayload("pc.ram", {{0, 0x1000}});
  payload.resize(payload.size() + 8, 0);
  w.Command(CommandKind::kPostcopyRamDiscard, payload);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandLength, at).Path("POSTCOPY_RAM_DISCARD@")));
}

TEST(CommandsTest, DiscardLengthShorterThanItsName) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  std::vector<uint8_t> payload = StreamWriter::RamDiscardPayload("pc.ram", {{0, 0x1000}});
  // len 4 while the name alone needs 1 + 1 + 6: the name read crosses the
  // declared payload.
  w.Command(CommandKind::kPostcopyRamDiscard, 4, payload);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandLength, at + 7).Path("POSTCOPY_RAM_DISCARD@")));
}

TEST(CommandsTest, DiscardVersionOne) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {{0, 0x1000}}, /*version=*/1);
  ListenRunAndFinish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandPayload, at + 5).Path("POSTCOPY_RAM_DISCARD@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandPayload}));
}

TEST(CommandsTest, DiscardWithoutNulTerminator) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {{0, 0x1000}}, 0, /*terminator=*/'x');
  ListenRunAndFinish(w);
  ParseResult r = ParseBytes(w.bytes());
  // cmd header 5, version 1, length 1, name 6: the terminator byte.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandPayload, at + 5 + 1 + 1 + 6)));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandPayload}));
}

TEST(CommandsTest, DiscardWithEmptyName) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("", {{0, 0x1000}});
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandPayload, at + 6)));
}

struct RangeCase {
  const char* name;
  uint64_t start;
  uint64_t length;
};

class DiscardRangeTest : public ::testing::TestWithParam<RangeCase> {};

TEST_P(DiscardRangeTest, IsRejected) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {{0, 0x1000}, {GetParam().start, GetParam().length}});
  ListenRunAndFinish(w);
  ParseResult r = ParseBytes(w.bytes());
  // The second range: header 5 + 3 + name 6 + first range 16.
  const uint64_t range_offset = at + 5 + 3 + 6 + 16;
  EXPECT_TRUE(HasFinding(
      r,
      Want(FindingCode::kDiscardRange, range_offset)
          .Path(absl::StrCat(CommandPath(CommandKind::kPostcopyRamDiscard, at), " > range[1]"))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kDiscardRange}));
}

INSTANTIATE_TEST_SUITE_P(Ranges, DiscardRangeTest,
                         ::testing::Values(RangeCase{"MisalignedStart", 0x800, 0x1000},
                                           RangeCase{"MisalignedLength", 0x1000, 0x800},
                                           RangeCase{"Empty", 0x1000, 0},
                                           RangeCase{"PastBlockEnd", kBlockLength - 0x1000, 0x2000},
                                           RangeCase{"StartAtBlockEnd", kBlockLength, 0x1000},
                                           RangeCase{"Overflow", 0xfffffffffffff000ull, 0x2000}),
                         [](const ::testing::TestParamInfo<RangeCase>& info) {
                           return info.param.name;
                         });

TEST(CommandsTest, DiscardRangeEndingAtBlockEndIsValid) {
  StreamWriter w = PostcopyPrefix();
  w.RamDiscard("pc.ram", {{kBlockLength - 0x1000, 0x1000}});
  ListenRunAndFinish(w);
  EXPECT_TRUE(NoErrors(ParseBytes(w.bytes())));
}

TEST(CommandsTest, DiscardForUnknownBlock) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.RamDiscard("nope", {{0, 0x1000}});
  ListenRunAndFinish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kDiscardBlock, at + 6).Path("POSTCOPY_RAM_DISCARD@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kDiscardBlock}));
}

TEST(CommandsTest, DiscardBeforeAdvise) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", kBlockLength}})
      .RamEos()
      .Footer(kRamId);
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {{0, 0x1000}});
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, at).Path("POSTCOPY_RAM_DISCARD@")));
}

TEST(CommandsTest, DiscardAfterListen) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Run();
  w.Packaged(package);
  uint64_t at = w.size();
  w.RamDiscard("pc.ram", {{0, 0x1000}});
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandState, at).Path("POSTCOPY_RAM_DISCARD@")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kCommandState}));
}

// --- RECV_BITMAP, RESUME, SWITCHOVER_START --------------------------------------------

TEST(CommandsTest, RecvBitmapLengthMustBeNamePlusOne) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  std::vector<uint8_t> payload = {2, 'a', 'b', 0};
  w.Command(CommandKind::kRecvBitmap, payload);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandLength, at).Path("RECV_BITMAP@")));
}

TEST(CommandsTest, RecvBitmapForUnknownBlockAndEmptyName) {
  {
    StreamWriter w = PostcopyPrefix();
    uint64_t at = w.size();
    w.RecvBitmap("nope");
    Finish(w);
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandPayload, at + 5).Path("RECV_BITMAP@")));
  }
  {
    StreamWriter w = PostcopyPrefix();
    uint64_t at = w.size();
    w.RecvBitmap("");
    Finish(w);
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kCommandPayload, at + 5).Path("RECV_BITMAP@")));
  }
}

TEST(CommandsTest, ResumeOutsideRecoveryQemuOnlyWarns) {
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.Resume();
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandState, at).QemuAccepts().Path("POSTCOPY_RESUME@")));
}

TEST(CommandsTest, RecoveryConnectionStartsWithRecvBitmapThenResume) {
  StreamWriter w;
  w.RecvBitmap("pc.ram").Resume();
  w.SectionPart(kRamId).RamZero("pc.ram", 0).RamEos().Footer(kRamId);
  w.SectionEnd(kRamId).RamEos().Footer(kRamId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_TRUE(r.summary.headerless);
  EXPECT_EQ(r.summary.commands.at("RECV_BITMAP"), 1u);
  EXPECT_EQ(r.summary.commands.at("POSTCOPY_RESUME"), 1u);
}

TEST(CommandsTest, SwitchoverStartSelectsQemu100) {
  StreamWriter w(ProfileId::kUpstream);
  w.Header().Configuration({"pc"}).SwitchoverStart().Eof();
  ASSERT_TRUE(w.missing_commands().empty());
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.profile, "qemu-10.0");
  EXPECT_TRUE(r.summary.profile_detected);
  EXPECT_EQ(r.summary.profile_also_consistent, std::vector<std::string>{"qemu-11.1"});
  EXPECT_EQ(r.summary.commands.at("SWITCHOVER_START"), 1u);
}

TEST(CommandsTest, V5DraftNumbersAreDetected) {
  StreamWriter w(ProfileId::kV5Draft);
  w.Header().Configuration({"pc"}).OpenReturnPath().Ping(1).Advise();
  w.SectionStart(kRamId, "ram", 0, 4)
      .RamMemSize({{"pc.ram", kBlockLength}})
      .RamEos()
      .Footer(kRamId);
  w.RamDiscard("pc.ram", {{0x1000, 0x1000}});
  StreamWriter package(ProfileId::kV5Draft);
  package.Listen().Run();
  w.Packaged(package);
  Finish(w);
  ASSERT_TRUE(w.missing_commands().empty());
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.profile, "v5-draft");
  EXPECT_EQ(r.summary.packages, 1u);
}

// --- PACKAGED ------------------------------------------------------------------------------

// Each forbidden command inside a package is reported at its own offset,
// with the package offset and a path under the package.
struct ForbiddenCase {
  const char* name;
  void (*write)(StreamWriter&);
};

class ForbiddenInPackageTest : public ::testing::TestWithParam<ForbiddenCase> {};

TEST_P(ForbiddenInPackageTest, IsReported) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen();
  const uint64_t inner = package.size();
  GetParam().write(package);
  package.Run();
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  const uint64_t blob = at + 9;
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kForbiddenInPackage, blob + inner)
                                .InPackage(inner)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at), " > "))));
}

INSTANTIATE_TEST_SUITE_P(
    Commands, ForbiddenInPackageTest,
    ::testing::Values(ForbiddenCase{"Advise", [](StreamWriter& p) { p.Advise(); }},
                      ForbiddenCase{"RamDiscard",
                                    [](StreamWriter& p) {
                                      p.RamDiscard("pc.ram", {{0, 0x1000}});
                                    }},
                      ForbiddenCase{"Packaged",
                                    [](StreamWriter& p) {
                                      StreamWriter nested;
                                      nested.Eof();
                                      p.Packaged(nested);
                                    }},
                      ForbiddenCase{"RecvBitmap", [](StreamWriter& p) { p.RecvBitmap("pc.ram"); }}),
    [](const ::testing::TestParamInfo<ForbiddenCase>& info) { return info.param.name; });

TEST(PackagedTest, ListenThenEofInsteadOfRun) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Ping(3);
  const uint64_t eof = package.size();
  package.Eof();
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageNoRun, at + 9 + eof)
                                .InPackage(eof)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
}

TEST(PackagedTest, BytesAfterRunAreDiscardedByQemu) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Run();
  const uint64_t after = package.size();
  package.U8(0xaa).U8(0xbb);
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageBytesAfterRun, at + 9 + after)
                                .InPackage(after)
                                .QemuAccepts()
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageBytesAfterRun}));
}

TEST(PackagedTest, PackageEndingInsideARecord) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Ping(3);
  const uint64_t run = package.size();
  package.Run();
  uint64_t at = w.size();
  // Declares two bytes less: RUN's be16 length field crosses the end.
  w.Packaged(static_cast<uint32_t>(package.size() - 2), package.bytes());
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  // The failed read is RUN's length field; the command is not identified
  // yet, so the path ends at the package.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageEndsMidRecord, at + 9 + run + 3)
                                .InPackage(run + 3)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageEndsMidRecord}));
}

TEST(PackagedTest, PackageEndingInsideACommandPayload) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen();
  const uint64_t ping = package.size();
  package.Ping(3).Run();
  uint64_t at = w.size();
  // Ends two bytes into PING's 4-byte payload.
  w.Packaged(static_cast<uint32_t>(ping + 5 + 2), package.bytes());
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageEndsMidRecord, at + 9 + ping + 5)
                                .InPackage(ping + 5)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at), " > PING@"))));
}

TEST(PackagedTest, PackageEndingWithoutEofOrRun) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Ping(3);
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageNoEnd, at + 9 + package.size())
                                .InPackage(package.size())
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageNoEnd}));
}

TEST(PackagedTest, ListenWithoutRunAndWithoutEof) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen();
  uint64_t at = w.size();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageNoEnd, at + 9 + 5).InPackage(5)));
}

TEST(PackagedTest, PackageWithEofAndNoListenIsANestedStream) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Ping(3).Eof();
  w.Packaged(package);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r));
  EXPECT_EQ(r.summary.packages, 1u);
}

TEST(PackagedTest, PackageLengthOverrunningTheStreamIsATruncation) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Run();
  uint64_t at = w.size();
  w.Packaged(1000, package.bytes());
  ParseResult r = ParseBytes(w.bytes());
  // Reported where the input ends, under the package.
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, w.size())
                                .InPackage(w.size() - (at + 9))
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTruncated}));
}

TEST(PackagedTest, NestingDepthLimit) {
  for (uint32_t depth_limit : {1u, 2u}) {
    SCOPED_TRACE(absl::StrCat("max_package_depth ", depth_limit));
    // Three packages, each inside the previous one.
    StreamWriter innermost;
    innermost.Eof();
    StreamWriter middle;
    middle.Packaged(innermost).Eof();
    StreamWriter outer;
    outer.Packaged(middle).Eof();
    StreamWriter w = PostcopyPrefix();
    uint64_t at = w.size();
    w.Packaged(outer);
    Finish(w);
    ParseOptions options;
    options.limits.max_package_depth = depth_limit;
    ParseResult r = ParseBytes(w.bytes(), options);
    // The first package that would be depth_limit + 1 deep: the one at the
    // start of the outer (depth 1) or middle (depth 2) blob.
    const uint64_t too_deep = depth_limit == 1 ? at + 9 : at + 9 + 9;
    EXPECT_TRUE(HasFinding(
        r, Want(FindingCode::kPackageTooDeep, too_deep)
               .InPackage(depth_limit == 1 ? 0 : 0)
               .Path(absl::StrCat("PACKAGED@", HexOffset(at), " > PACKAGED@", HexOffset(at + 9)))));
  }
}

TEST(PackagedTest, DeviceStateAfterRun) {
  StreamWriter w = PostcopyPrefix();
  StreamWriter package;
  package.Listen().Run();
  w.Packaged(package);
  uint64_t at = w.size();
  w.SectionFull(9, "late", 0, 1).U8(0).Footer(9);
  Finish(w);
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kCommandState, at).QemuAccepts().Path("FULL 'late' #0")));
}

// === Regressions ===========================================================================
// Regression tests of parser bugs found while writing these tests.

// A PACKAGED nested in another whose length runs past the outer blob (the
// input goes on): the record crosses the outer package's end, so this is
// package.ends_mid_record at the nested command, not a truncated input.
TEST(PackagedTest, NestedPackageOverrunningItsOuterPackage) {
  StreamWriter nested_blob;
  nested_blob.Eof();
  StreamWriter outer;
  const uint64_t nested = outer.size();
  outer.Packaged(100, nested_blob.bytes()).Eof();
  StreamWriter w = PostcopyPrefix();
  uint64_t at = w.size();
  w.Packaged(outer);
  Finish(w);
  w.Bytes(Zeros(200));  // the input itself does not end early
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_FALSE(r.findings.HasCode(FindingCode::kTruncated)) << FormatFindings(r);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageEndsMidRecord, at + 9 + nested)
                                .InPackage(nested)
                                .Path(absl::StrCat("PACKAGED@", HexOffset(at), " > PACKAGED@"))));
}

}  // namespace
}  // namespace qmig
