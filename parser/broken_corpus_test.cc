// Real QEMU 7.2 streams (corpus/qemu-7.2), broken by hand in memory, with the
// exact verdict each break must get. The records to break are located with
// the parser's observer on the intact stream and cross-checked against the
// offsets documented in the corpus metadata, so a changed corpus file fails
// loudly instead of silently testing something else.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/parse_context.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

std::vector<uint8_t> ReadCorpus(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string path = absl::StrCat(srcdir != nullptr ? srcdir : ".", "/qmig/corpus/qemu-7.2/", name);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

struct SectionSeen {
  uint8_t type;
  std::string idstr;
  uint64_t offset;
};
struct CommandSeen {
  CommandKind kind;
  uint64_t offset;
};
struct PageSeen {
  std::string block;
  uint64_t block_offset;
  RamRecordKind kind;
  uint64_t offset;
};

class Locator : public StreamObserver {
 public:
  void OnSection(uint8_t type, uint32_t, absl::string_view idstr, uint32_t, uint32_t,
                 uint64_t offset) override {
    sections.push_back({type, std::string(idstr), offset});
  }
  void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t>) override {
    commands.push_back({kind, offset});
  }
  void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                 absl::Span<const uint8_t>, uint64_t offset) override {
    pages.push_back({std::string(block), block_offset, kind, offset});
  }

  uint64_t Command(CommandKind kind) const {
    for (const CommandSeen& c : commands) {
      if (c.kind == kind) return c.offset;
    }
    ADD_FAILURE() << "no command " << CommandKindName(kind);
    return 0;
  }
  // The index of the first section of `type` named `idstr`.
  size_t Section(uint8_t type, absl::string_view idstr) const {
    for (size_t i = 0; i < sections.size(); ++i) {
      if (sections[i].type == type && sections[i].idstr == idstr) return i;
    }
    ADD_FAILURE() << "no section " << idstr;
    return 0;
  }
  const PageSeen* Page(absl::string_view block, RamRecordKind kind) const {
    for (const PageSeen& p : pages) {
      if (p.block == block && p.kind == kind) return &p;
    }
    ADD_FAILURE() << "no page in " << block;
    return nullptr;
  }

  std::vector<SectionSeen> sections;
  std::vector<CommandSeen> commands;
  std::vector<PageSeen> pages;
};

// Where the first byte after a page record's word (and name) is.
uint64_t AfterPageHeader(const std::vector<uint8_t>& bytes, uint64_t record) {
  const bool continued = bytes[record + 7] & ram_flag::kContinue;
  return continued ? record + 8 : record + 8 + 1 + bytes[record + 8];
}

std::string PackagePath(uint64_t command) { return absl::StrCat("PACKAGED@", HexOffset(command)); }

// --- postcopy.mig ------------------------------------------------------------------------

class PostcopyCorpusTest : public ::testing::Test {
 protected:
  // From postcopy.meta.json ("CMD PACKAGED(12876)") and `qmig check` (PACKAGED@0x15aeb).
  static constexpr uint64_t kPackage = 0x15aeb;
  static constexpr uint32_t kPackageLength = 12876;

  void SetUp() override {
    original_ = ReadCorpus("postcopy.mig");
    ASSERT_EQ(original_.size(), 248217u);
    ParseOptions options;
    options.observer = &where_;
    ParseResult r = ParseBytes(original_, options);
    ASSERT_TRUE(NoErrors(r));
    ASSERT_EQ(where_.Command(CommandKind::kPackaged), kPackage);
    ASSERT_EQ(LoadBe32(&original_[kPackage + 5]), kPackageLength);
    blob_ = kPackage + 9;
    ASSERT_EQ(where_.Command(CommandKind::kPostcopyListen), blob_);
    ASSERT_EQ(where_.Command(CommandKind::kPostcopyRun), blob_ + kPackageLength - 5);
  }

  // Parses `bytes` from memory and through a pipe; both must agree.
  ParseResult Parse(const std::vector<uint8_t>& bytes, const ParseOptions& options = {}) {
    ParseResult memory = ParseBytes(bytes, options);
    ParseResult pipe = ParseBytesThroughPipe(bytes, options);
    EXPECT_EQ(FormatFindings(pipe), FormatFindings(memory)) << "pipe and memory differ";
    return memory;
  }

  std::vector<uint8_t> original_;
  Locator where_;
  uint64_t blob_ = 0;
};

TEST_F(PostcopyCorpusTest, PackageSixteenMebibytesTooLong) {
  std::vector<uint8_t> bytes = original_;
  StoreBe32(&bytes[kPackage + 5], kPackageLength + (16u << 20) + 1);
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r,
      Want(FindingCode::kPackageTooLarge, kPackage + 5).QemuAccepts().Path(PackagePath(kPackage))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageTooLarge}));
}

TEST_F(PostcopyCorpusTest, PackageTooLongUnderTheRaisedLimitOverrunsTheStream) {
  std::vector<uint8_t> bytes = original_;
  StoreBe32(&bytes[kPackage + 5], kPackageLength + (16u << 20) + 1);
  ParseOptions options;
  options.limits.max_package_bytes = kMaxPackageLimit;
  // The blob is read in place until the input ends, from memory as from a
  // pipe, so both report the same truncation inside the package.
  ParseResult r = ParseBytes(bytes, options);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, bytes.size())
                                .InPackage(bytes.size() - blob_)
                                .Path(PackagePath(kPackage))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTruncated}));
  EXPECT_EQ(FormatFindings(ParseBytesThroughPipe(bytes, options)), FormatFindings(r));
}

TEST_F(PostcopyCorpusTest, PackageOneByteShort) {
  std::vector<uint8_t> bytes = original_;
  StoreBe32(&bytes[kPackage + 5], kPackageLength - 1);
  ParseResult r = Parse(bytes);
  // RUN is the package's last record: its be16 length field crosses the end.
  const uint64_t run = blob_ + kPackageLength - 5;
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kPackageEndsMidRecord, run + 3)
                                .InPackage(run + 3 - blob_)
                                .Path(PackagePath(kPackage))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kPackageEndsMidRecord}));
}

TEST_F(PostcopyCorpusTest, AdviseSplicedIntoThePackage) {
  std::vector<uint8_t> advise = StreamWriter().Advise().Take();
  std::vector<uint8_t> bytes = original_;
  const uint64_t at = blob_ + 5;  // after LISTEN
  bytes.insert(bytes.begin() + at, advise.begin(), advise.end());
  StoreBe32(&bytes[kPackage + 5], kPackageLength + static_cast<uint32_t>(advise.size()));
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kForbiddenInPackage, at)
             .InPackage(5)
             .Path(absl::StrCat(PackagePath(kPackage), " > POSTCOPY_ADVISE@", HexOffset(at)))));
}

TEST_F(PostcopyCorpusTest, RamDiscardSplicedIntoThePackage) {
  std::vector<uint8_t> discard = StreamWriter().RamDiscard("pc.ram", {{0, 0x1000}}).Take();
  std::vector<uint8_t> bytes = original_;
  const uint64_t at = blob_ + 5;
  bytes.insert(bytes.begin() + at, discard.begin(), discard.end());
  StoreBe32(&bytes[kPackage + 5], kPackageLength + static_cast<uint32_t>(discard.size()));
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kForbiddenInPackage, at)
                        .InPackage(5)
                        .Path(absl::StrCat(PackagePath(kPackage), " > POSTCOPY_RAM_DISCARD@"))));
}

TEST_F(PostcopyCorpusTest, FooterOfTheRamStartNamesAnotherSection) {
  const size_t start = where_.Section(0x01, "ram");
  ASSERT_EQ(where_.sections[start + 1].type, 0x02);
  const uint64_t footer = where_.sections[start + 1].offset - 5;
  std::vector<uint8_t> bytes = original_;
  ASSERT_EQ(bytes[footer], 0x7e);
  bytes[footer + 4] ^= 0x01;
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMismatch, footer).Path("START 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMismatch}));
}

TEST_F(PostcopyCorpusTest, ZeroPageFillByteOne) {
  const PageSeen* page = where_.Page("pc.ram", RamRecordKind::kZero);
  ASSERT_NE(page, nullptr);
  std::vector<uint8_t> bytes = original_;
  const uint64_t fill = AfterPageHeader(bytes, page->offset);
  ASSERT_EQ(bytes[fill], 0);
  bytes[fill] = 1;
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamZeroFill, page->offset)
                                .QemuAccepts()
                                .PathHas(absl::StrCat("pc.ram@", HexOffset(page->block_offset)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamZeroFill}));
}

TEST_F(PostcopyCorpusTest, PageMovedPastItsBlock) {
  // /rom@etc/table-loader is one page long.
  const PageSeen* page = where_.Page("/rom@etc/table-loader", RamRecordKind::kPage);
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(page->block_offset, 0u);
  std::vector<uint8_t> bytes = original_;
  bytes[page->offset + 6] |= 0x10;  // offset 0x1000: the block's length
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kRamOffset, page->offset).PathHas("/rom@etc/table-loader@0x1000")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamOffset}));
}

TEST_F(PostcopyCorpusTest, GarbageAfterEof) {
  std::vector<uint8_t> bytes = original_;
  bytes.push_back('x');
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kTrailingBytes, original_.size()).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTrailingBytes}));
}

TEST_F(PostcopyCorpusTest, CutInsideThePackage) {
  std::vector<uint8_t> bytes(original_.begin(), original_.begin() + blob_ + 100);
  ParseResult r = ParseBytes(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kTruncated, bytes.size()).InPackage(100).Path(PackagePath(kPackage))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTruncated}));
}

// --- pc-i440fx-7.2.mig -------------------------------------------------------------------

class PrecopyCorpusTest : public ::testing::Test {
 protected:
  // From pc-i440fx-7.2.meta.json: the VMDESCRIPTION at 280528, 98649 bytes.
  static constexpr uint64_t kVmdesc = 280528;
  static constexpr uint32_t kJsonLength = 98649;

  void SetUp() override {
    original_ = ReadCorpus("pc-i440fx-7.2.mig");
    ASSERT_EQ(original_.size(), 379182u);
    ASSERT_EQ(original_[kVmdesc], 0x06);
    ASSERT_EQ(LoadBe32(&original_[kVmdesc + 1]), kJsonLength);
    ParseOptions options;
    options.observer = &where_;
    ParseResult r = ParseBytes(original_, options);
    ASSERT_TRUE(NoErrors(r));
    ASSERT_EQ(r.summary.devices_decoded, 30u);
  }

  ParseResult Parse(const std::vector<uint8_t>& bytes) {
    ParseResult memory = ParseBytes(bytes);
    ParseResult pipe = ParseBytesThroughPipe(bytes);
    EXPECT_EQ(FormatFindings(pipe), FormatFindings(memory)) << "pipe and memory differ";
    return memory;
  }

  std::vector<uint8_t> original_;
  Locator where_;
};

TEST_F(PrecopyCorpusTest, TrailerLengthOneTooLong) {
  std::vector<uint8_t> bytes = original_;
  StoreBe32(&bytes[kVmdesc + 1], kJsonLength + 1);
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kVmdescTruncated, bytes.size()).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescTruncated}));
}

TEST_F(PrecopyCorpusTest, GarbageAfterTheTrailer) {
  std::vector<uint8_t> bytes = original_;
  bytes.insert(bytes.end(), {'j', 'u', 'n', 'k'});
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kTrailingBytes, original_.size()).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTrailingBytes}));
}

TEST_F(PrecopyCorpusTest, TrailerThatIsNotJson) {
  std::vector<uint8_t> bytes = original_;
  bytes[kVmdesc + 5] = '[';  // the opening brace
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(
      HasFinding(r, Want(FindingCode::kVmdescBadJson, kVmdesc + 5).QemuAccepts().Path("trailer")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescBadJson}));
}

// JSON that parses but describes a field of negative size: the devices go
// undecoded, and say that the trailer is there but unusable.
TEST_F(PrecopyCorpusTest, TrailerThatDescribesANegativeSize) {
  std::vector<uint8_t> bytes = original_;
  const std::string size = "\"size\": 8";
  auto at = std::search(bytes.begin() + kVmdesc, bytes.end(), size.begin(), size.end());
  ASSERT_NE(at, bytes.end());
  const std::string negative = "\"size\":-8";
  std::copy(negative.begin(), negative.end(), at);
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kVmdescBadJson, kVmdesc + 5).QemuAccepts()));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kVmdescBadJson}));
  bool said_why = false;
  for (const Finding& finding : r.findings.findings()) {
    if (finding.code != FindingCode::kDeviceUnverified) continue;
    EXPECT_TRUE(absl::StrContains(finding.message, "the VMDESCRIPTION trailer is invalid"))
        << finding.message;
    said_why = true;
  }
  EXPECT_TRUE(said_why);
}

TEST_F(PrecopyCorpusTest, FooterOfTheFirstDeviceNamesAnotherSection) {
  const size_t timer = where_.Section(0x04, "timer");
  ASSERT_LT(timer + 1, where_.sections.size());
  const uint64_t footer = where_.sections[timer + 1].offset - 5;
  std::vector<uint8_t> bytes = original_;
  ASSERT_EQ(bytes[footer], 0x7e);
  bytes[footer + 4] ^= 0x40;
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMismatch, footer).Path("FULL 'timer' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMismatch}));
}

TEST_F(PrecopyCorpusTest, DeviceBodyOneByteLongerThanItsDescription) {
  const size_t timer = where_.Section(0x04, "timer");
  const uint64_t footer = where_.sections[timer + 1].offset - 5;
  std::vector<uint8_t> bytes = original_;
  bytes.insert(bytes.begin() + footer, 0x00);
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kFooterMissing, footer).Path("FULL 'timer' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kFooterMissing}));
}

TEST_F(PrecopyCorpusTest, ZeroPageFillByteOne) {
  const PageSeen* page = where_.Page("pc.bios", RamRecordKind::kZero);
  ASSERT_NE(page, nullptr);
  std::vector<uint8_t> bytes = original_;
  const uint64_t fill = AfterPageHeader(bytes, page->offset);
  ASSERT_EQ(bytes[fill], 0);
  bytes[fill] = 1;
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(
      r, Want(FindingCode::kRamZeroFill, page->offset)
             .QemuAccepts()
             .Path(absl::StrCat("PART 'ram' #0 > pc.bios@", HexOffset(page->block_offset)))));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamZeroFill}));
}

TEST_F(PrecopyCorpusTest, PageMovedPastItsBlock) {
  const PageSeen* page = where_.Page("/rom@etc/acpi/rsdp", RamRecordKind::kPage);
  ASSERT_NE(page, nullptr);
  ASSERT_EQ(page->block_offset, 0u);
  std::vector<uint8_t> bytes = original_;
  bytes[page->offset + 6] |= 0x10;
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamOffset, page->offset)
                                .Path("PART 'ram' #0 > /rom@etc/acpi/rsdp@0x1000")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamOffset}));
}

TEST_F(PrecopyCorpusTest, UnknownRamFlag) {
  const PageSeen* page = where_.Page("pc.ram", RamRecordKind::kPage);
  ASSERT_NE(page, nullptr);
  std::vector<uint8_t> bytes = original_;
  bytes[page->offset + 6] |= 0x04;  // flag 0x400
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kRamBadFlags, page->offset).Path("PART 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kRamBadFlags}));
}

TEST_F(PrecopyCorpusTest, CutInsideTheRamPart) {
  const PageSeen* page = where_.Page("pc.ram", RamRecordKind::kPage);
  ASSERT_NE(page, nullptr);
  std::vector<uint8_t> bytes(original_.begin(), original_.begin() + page->offset + 100);
  ParseResult r = Parse(bytes);
  EXPECT_TRUE(HasFinding(r, Want(FindingCode::kTruncated, bytes.size()).PathHas("PART 'ram' #0")));
  EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kTruncated}));
}

}  // namespace
}  // namespace qmig
