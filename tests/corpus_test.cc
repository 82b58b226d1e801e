// Every real stream of the corpora of QEMU 7.2, 8.2, 9.2, 10.0 and 11.1 against what
// the QEMU that made it said of it (its .meta.json) and against an
// independent walk of it by the corpus generator, read both from a file and
// from a pipe; and the QEMU each main stream names as its maker.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "parser/preempt_channel.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/profile.h"
#include "tests/test_files.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

using testing::ListFiles;
using testing::ReadFileBytes;
using testing::RunfilePath;

// Each corpus and the profile its main streams name as their maker (or
// count among those they cannot tell apart from it).
struct Corpus {
  const char* dir;
  const char* profile;
};
constexpr Corpus kCorpora[] = {{"corpus/qemu-7.2", "qemu-7.2"},
                               {"corpus/qemu-8.2", "qemu-8.2"},
                               {"corpus/qemu-9.2", "qemu-9.2"},
                               {"corpus/qemu-10.0", "qemu-10.0"},
                               {"corpus/qemu-11.1", "qemu-11.1"}};

// Streams whose correct qmig verdict differs from their QEMU's, with the
// finding that says why. Where QEMU accepted the stream, that finding is
// marked as one QEMU accepts.
struct Expected {
  FindingCode code;
  bool qemu_accepts;  // the finding is marked as one QEMU accepts
};
const std::map<std::string, Expected>& ExpectedInvalid() {
  static const auto* expected = new std::map<std::string, Expected>{
      // The first connection of a recovered postcopy migration: the proxy
      // cut it mid-section, so on its own it is a truncated stream (QEMU's
      // verdict is that of the whole recovered migration).
      {"corpus/qemu-7.2/postcopy-recover.mig", {FindingCode::kTruncated, false}},
      // PACKAGED one byte long: QEMU 8.2 to 11.1 load it, and discard the
      // byte after RUN that the package swallowed.
      {"corpus/qemu-8.2/broken-packaged-long.mig", {FindingCode::kPackageBytesAfterRun, true}},
      {"corpus/qemu-9.2/broken-packaged-long.mig", {FindingCode::kPackageBytesAfterRun, true}},
      {"corpus/qemu-10.0/broken-packaged-long.mig", {FindingCode::kPackageBytesAfterRun, true}},
      {"corpus/qemu-11.1/broken-packaged-long.mig", {FindingCode::kPackageBytesAfterRun, true}},
  };
  return *expected;
}

struct CorpusEntry {
  std::string dir;  // "corpus/qemu-7.2"
  std::string file;
  const char* profile;
  nlohmann::json meta;
  std::string path() const { return RunfilePath(dir) + "/" + file; }
};

std::vector<CorpusEntry> LoadCorpus() {
  std::vector<CorpusEntry> entries;
  for (const Corpus& corpus : kCorpora) {
    std::string dir = RunfilePath(corpus.dir);
    for (const std::string& name : ListFiles(dir, ".meta.json")) {
      std::vector<uint8_t> bytes = ReadFileBytes(dir + "/" + name);
      nlohmann::json meta = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
      if (meta.is_discarded() || !meta.contains("file")) continue;
      entries.push_back({corpus.dir, meta["file"].get<std::string>(), corpus.profile, meta});
    }
  }
  return entries;
}

// A channel file's main stream: NAME.chN.bin, NAME.preempt.bin and NAME.rp
// belong to NAME.mig (a broken variant to the valid stream it was cut from).
std::string MainStreamOf(const CorpusEntry& entry) {
  std::string name = entry.file.substr(0, entry.file.find('.'));
  for (const char* broken : {"broken-multifd-magic", "broken-multifd-normal"}) {
    if (name == broken) name = "multifd";
  }
  return RunfilePath(entry.dir) + "/" + name + ".mig";
}

NameCounts BlockLengths(const std::string& main_stream) {
  std::vector<uint8_t> data = ReadFileBytes(main_stream);
  MemorySource memory(data);
  ParseResult result = ParseMigrationStream(memory, {});
  NameCounts lengths;
  for (const RamBlockSummary& block : result.summary.ram_blocks) lengths[block.name] = block.length;
  return lengths;
}

// Feeds `data` through a pipe from a writer thread.
class Pipe {
 public:
  explicit Pipe(const std::vector<uint8_t>& data) {
    signal(SIGPIPE, SIG_IGN);
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    read_fd_ = fds[0];
    writer_ = std::thread([&data, fd = fds[1]] {
      size_t pos = 0;
      while (pos < data.size()) {
        ssize_t n = write(fd, data.data() + pos, std::min<size_t>(data.size() - pos, 65536));
        if (n <= 0) break;
        pos += static_cast<size_t>(n);
      }
      close(fd);
    });
  }
  ~Pipe() {
    close(read_fd_);
    writer_.join();
  }
  int fd() const { return read_fd_; }

 private:
  int read_fd_;
  std::thread writer_;
};

std::string Kind(const nlohmann::json& meta) {
  std::string kind = meta.value("kind", "");
  if (kind == "return-path") return "return-path";
  if (kind == "multifd-channel" || kind == "broken-multifd-channel") return "multifd";
  if (kind == "preempt-channel") return "preempt";
  return "main";
}

// One parse of a stream of any kind: its findings and summary as JSON.
struct Outcome {
  nlohmann::json summary;
  nlohmann::json findings;
  uint64_t errors = 0;
  FindingList list;
};

Outcome Parse(const std::string& kind, ByteSource& source, const NameCounts& blocks = {}) {
  Outcome outcome;
  if (kind == "return-path") {
    ReturnPathResult result = ParseReturnPath(source, {});
    outcome.findings = FindingsToJson(result.findings);
    outcome.errors = result.findings.error_count();
    outcome.summary = result.summary.bytes;
    outcome.list = result.findings;
  } else if (kind == "multifd") {
    MultifdOptions options;
    options.block_lengths = blocks;
    MultifdResult result = ParseMultifdChannel(source, options);
    outcome.findings = FindingsToJson(result.findings);
    outcome.errors = result.findings.error_count();
    outcome.summary = result.summary.pages;
    outcome.list = result.findings;
  } else if (kind == "preempt") {
    PreemptChannelOptions options;
    options.block_lengths = blocks;
    PreemptChannelResult result = ParsePreemptChannel(source, options);
    outcome.findings = FindingsToJson(result.findings);
    outcome.errors = result.findings.error_count();
    outcome.summary = result.summary.pages;
    outcome.list = result.findings;
  } else {
    ParseResult result = ParseMigrationStream(source, {});
    outcome.findings = FindingsToJson(result.findings);
    outcome.errors = result.findings.error_count();
    outcome.summary = SummaryToJson(result.summary);
    outcome.list = result.findings;
  }
  return outcome;
}

TEST(CorpusTest, CorpusIsPresent) {
  std::map<std::string, int> per_dir;
  for (const CorpusEntry& entry : LoadCorpus()) ++per_dir[entry.dir];
  EXPECT_GE(per_dir["corpus/qemu-7.2"], 15);
  EXPECT_GE(per_dir["corpus/qemu-8.2"], 25);
  EXPECT_GE(per_dir["corpus/qemu-9.2"], 30);
  EXPECT_GE(per_dir["corpus/qemu-10.0"], 30);
  EXPECT_GE(per_dir["corpus/qemu-11.1"], 30);
}

TEST(CorpusTest, EveryStreamGetsItsQemusVerdictFromAFileAndFromAPipe) {
  for (const CorpusEntry& entry : LoadCorpus()) {
    SCOPED_TRACE(entry.dir + "/" + entry.file);
    std::vector<uint8_t> data = ReadFileBytes(entry.path());
    ASSERT_FALSE(data.empty());
    ASSERT_EQ(data.size(), entry.meta.value("size", uint64_t{0}));
    std::string kind = Kind(entry.meta);
    NameCounts blocks;
    if (kind == "multifd" || kind == "preempt") blocks = BlockLengths(MainStreamOf(entry));

    MemorySource memory(data);
    Outcome from_file = Parse(kind, memory, blocks);
    const std::string qemu = entry.meta["qemu_verdict"].value("status", "");
    auto expected = ExpectedInvalid().find(entry.dir + "/" + entry.file);
    if (expected == ExpectedInvalid().end()) {
      // Valid where QEMU loads it, invalid where QEMU fails or hangs.
      if (qemu == "completed") {
        EXPECT_EQ(from_file.errors, 0u) << from_file.findings.dump(1);
      } else {
        EXPECT_GT(from_file.errors, 0u) << "QEMU " << qemu;
      }
    } else {
      EXPECT_GT(from_file.errors, 0u);
      EXPECT_TRUE(from_file.list.HasCode(expected->second.code)) << from_file.findings.dump(1);
      for (const Finding& finding : from_file.list.findings()) {
        if (finding.code == expected->second.code) {
          EXPECT_EQ(finding.qemu_accepts.any(), expected->second.qemu_accepts);
        }
      }
    }

    Pipe pipe(data);
    FdSource stream(pipe.fd());
    Outcome from_pipe = Parse(kind, stream, blocks);
    EXPECT_EQ(from_pipe.findings, from_file.findings);
    EXPECT_EQ(from_pipe.summary, from_file.summary);
  }
}

// The QEMU that made a stream, from what the stream carries, not from its
// machine type: an 11.1 stream of pc-i440fx-7.2 is an 11.1 stream. Where
// the stream cannot tell two releases apart (10.0 and 9.x for an old
// machine type), its maker is among the profiles it reports.
TEST(CorpusTest, MainStreamsNameTheQemuThatMadeThem) {
  int checked = 0;
  for (const CorpusEntry& entry : LoadCorpus()) {
    if (Kind(entry.meta) != "main" || entry.meta.value("kind", "") == "postcopy-resume") continue;
    SCOPED_TRACE(entry.dir + "/" + entry.file);
    std::vector<uint8_t> data = ReadFileBytes(entry.path());
    MemorySource memory(data);
    ParseResult result = ParseMigrationStream(memory, {});
    const StreamSummary& s = result.summary;
    const bool named = s.profile == entry.profile ||
                       std::count(s.profile_also_consistent.begin(),
                                  s.profile_also_consistent.end(), entry.profile) > 0;
    EXPECT_TRUE(named) << s.profile << " (also " << s.profile_also_consistent.size() << ")";
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

// --profile=qemu-X.Y on the streams of QEMU X.Y: fixing the profile to the
// release that made a stream changes nothing that detection decided.
TEST(CorpusTest, MainStreamsReadTheSameUnderTheirReleasesProfile) {
  int checked = 0;
  for (const CorpusEntry& entry : LoadCorpus()) {
    if (Kind(entry.meta) != "main") continue;
    SCOPED_TRACE(entry.dir + "/" + entry.file);
    const Profile* profile = FindProfileByName(entry.profile);
    ASSERT_NE(profile, nullptr);
    std::vector<uint8_t> data = ReadFileBytes(entry.path());
    MemorySource detected_source(data);
    ParseResult detected = ParseMigrationStream(detected_source, {});
    ParseOptions options;
    options.profile = profile->id;
    MemorySource fixed_source(data);
    ParseResult fixed = ParseMigrationStream(fixed_source, options);
    EXPECT_EQ(fixed.summary.profile, entry.profile);
    EXPECT_EQ(FindingsToJson(fixed.findings), FindingsToJson(detected.findings));
    ++checked;
  }
  EXPECT_GE(checked, 80);
}

// The corpus generator walks each stream with its own small decoder; the
// counts it recorded must match the parser's.
TEST(CorpusTest, RamRecordsMatchTheGeneratorsIndependentWalk) {
  int checked = 0;
  for (const CorpusEntry& entry : LoadCorpus()) {
    // The generator counts records; mapped-ram pages are at file offsets.
    if (Kind(entry.meta) != "main" || !entry.meta.contains("scan") ||
        entry.meta.value("kind", "").find("mapped-ram") != std::string::npos) {
      continue;
    }
    const nlohmann::json& scan = entry.meta["scan"];
    if (!scan.contains("ram_records") || !scan.contains("ram_blocks")) continue;
    SCOPED_TRACE(entry.dir + "/" + entry.file);
    std::vector<uint8_t> data = ReadFileBytes(entry.path());
    MemorySource memory(data);
    ParseResult result = ParseMigrationStream(memory, {});
    uint64_t zero = 0, page = 0, xbzrle = 0, compressed = 0;
    for (const RamBlockSummary& block : result.summary.ram_blocks) {
      zero += block.zero_pages;
      page += block.normal_pages;
      xbzrle += block.xbzrle_pages;
      compressed += block.compressed_pages;
    }
    const nlohmann::json& records = scan["ram_records"];
    EXPECT_EQ(zero, records.value("ZERO", uint64_t{0}));
    EXPECT_EQ(page, records.value("PAGE", uint64_t{0}));
    EXPECT_EQ(xbzrle, records.value("XBZRLE", uint64_t{0}));
    EXPECT_EQ(compressed, records.value("COMPRESS_PAGE", uint64_t{0}));
    NameCounts blocks;
    for (const RamBlockSummary& block : result.summary.ram_blocks)
      blocks[block.name] = block.length;
    if (result.summary.headerless) continue;  // block lengths come from the first connection
    for (const nlohmann::json& block : scan["ram_blocks"]) {
      EXPECT_EQ(blocks[block["name"].get<std::string>()], block["used_length"].get<uint64_t>())
          << block.dump();
    }
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

TEST(CorpusTest, PrecopyStreamsWithATrailerDecodeEveryDevice) {
  int checked = 0;
  for (const CorpusEntry& entry : LoadCorpus()) {
    if (entry.meta.value("kind", "") != "precopy") continue;
    SCOPED_TRACE(entry.dir + "/" + entry.file);
    std::vector<uint8_t> data = ReadFileBytes(entry.path());
    MemorySource memory(data);
    ParseResult result = ParseMigrationStream(memory, {});
    if (!result.summary.vmdesc_present) continue;
    EXPECT_GT(result.summary.devices_decoded, 5u);
    EXPECT_EQ(result.summary.devices_unverified, 0u);
    EXPECT_EQ(result.summary.device_description_source, "trailer");
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

}  // namespace
}  // namespace qmig
