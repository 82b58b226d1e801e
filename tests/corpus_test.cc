// Every real stream in corpus/qemu-7.2 against what real QEMU said of it
// (its .meta.json) and against an independent walk of it by the corpus
// generator, read both from a file (mmap) and from a pipe.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "tests/test_files.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

using testing::ListFiles;
using testing::ReadFileBytes;
using testing::RunfilePath;

const char kCorpusDir[] = "corpus/qemu-7.2";

// Streams whose correct qmig verdict is not "valid", with the reason.
const std::map<std::string, FindingCode>& ExpectedInvalid() {
  static const auto* expected = new std::map<std::string, FindingCode>{
      // The first connection of a recovered postcopy migration: the proxy
      // cut it mid-section, so on its own it is a truncated stream.
      {"postcopy-recover.mig", FindingCode::kTruncated},
  };
  return *expected;
}

struct CorpusEntry {
  std::string file;
  nlohmann::json meta;
};

std::vector<CorpusEntry> LoadCorpus() {
  std::vector<CorpusEntry> entries;
  std::string dir = RunfilePath(kCorpusDir);
  for (const std::string& name : ListFiles(dir, ".meta.json")) {
    std::vector<uint8_t> bytes = ReadFileBytes(dir + "/" + name);
    nlohmann::json meta = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
    if (meta.is_discarded() || !meta.contains("file")) continue;
    entries.push_back({meta["file"].get<std::string>(), meta});
  }
  return entries;
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
  if (kind == "multifd-channel") return "multifd";
  return "main";
}

// One parse of a stream of any kind: its findings and summary as JSON.
struct Outcome {
  nlohmann::json summary;
  nlohmann::json findings;
  uint64_t errors = 0;
  FindingList list;
};

Outcome Parse(const std::string& kind, ByteSource& source) {
  Outcome outcome;
  if (kind == "return-path") {
    ReturnPathResult result = ParseReturnPath(source, {});
    outcome.findings = FindingsToJson(result.findings);
    outcome.errors = result.findings.error_count();
    outcome.summary = result.summary.bytes;
    outcome.list = result.findings;
  } else if (kind == "multifd") {
    MultifdResult result = ParseMultifdChannel(source, {});
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
  std::vector<CorpusEntry> entries = LoadCorpus();
  EXPECT_GE(entries.size(), 15u) << "corpus/qemu-7.2 is missing streams";
}

TEST(CorpusTest, EveryStreamGetsTheRightVerdictFromAFileAndFromAPipe) {
  for (const CorpusEntry& entry : LoadCorpus()) {
    SCOPED_TRACE(entry.file);
    std::vector<uint8_t> data = ReadFileBytes(RunfilePath(kCorpusDir) + "/" + entry.file);
    ASSERT_FALSE(data.empty());
    ASSERT_EQ(data.size(), entry.meta.value("size", uint64_t{0}));
    std::string kind = Kind(entry.meta);

    MemorySource memory(data);
    Outcome from_file = Parse(kind, memory);
    auto expected = ExpectedInvalid().find(entry.file);
    if (expected == ExpectedInvalid().end()) {
      EXPECT_EQ(entry.meta["qemu_verdict"].value("status", ""), "completed");
      EXPECT_EQ(from_file.errors, 0u) << from_file.findings.dump(1);
    } else {
      EXPECT_GT(from_file.errors, 0u);
      EXPECT_TRUE(from_file.list.HasCode(expected->second)) << from_file.findings.dump(1);
    }

    Pipe pipe(data);
    FdSource stream(pipe.fd());
    Outcome from_pipe = Parse(kind, stream);
    EXPECT_EQ(from_pipe.findings, from_file.findings);
    EXPECT_EQ(from_pipe.summary, from_file.summary);
  }
}

// The corpus generator walks each stream with its own small decoder; the
// counts it recorded must match the parser's.
TEST(CorpusTest, RamRecordsMatchTheGeneratorsIndependentWalk) {
  int checked = 0;
  for (const CorpusEntry& entry : LoadCorpus()) {
    if (Kind(entry.meta) != "main" || !entry.meta.contains("scan")) continue;
    const nlohmann::json& scan = entry.meta["scan"];
    if (!scan.contains("ram_records") || !scan.contains("ram_blocks")) continue;
    SCOPED_TRACE(entry.file);
    std::vector<uint8_t> data = ReadFileBytes(RunfilePath(kCorpusDir) + "/" + entry.file);
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
    std::map<std::string, uint64_t> blocks;
    for (const RamBlockSummary& block : result.summary.ram_blocks) blocks[block.name] = block.length;
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
    SCOPED_TRACE(entry.file);
    std::vector<uint8_t> data = ReadFileBytes(RunfilePath(kCorpusDir) + "/" + entry.file);
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
