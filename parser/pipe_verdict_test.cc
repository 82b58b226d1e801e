// One verdict, whatever the input path: a stream whose device state before
// its VMDESCRIPTION trailer is more than a pipe keeps in memory gets the same
// findings from memory, from a file, from a pipe (which keeps the rest in a
// temporary file) and from a pipe with a tiny memory limit. Where a pipe
// cannot keep the rest, it says it cannot decide instead of scanning the
// devices and giving another verdict.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"
#include "parser/encode/stream_writer.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/finding.h"

namespace qmig {
namespace {

constexpr size_t kBlobs = 10;
constexpr size_t kBlobBytes = size_t{4} << 20;  // 40 MiB of device state in all

std::string TestTmpDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

std::vector<DeviceSpec> BigDevices() {
  std::vector<DeviceSpec> devices = DefaultDevices();
  for (size_t i = 0; i < kBlobs; ++i) {
    std::vector<uint8_t> data(kBlobBytes);
    // Footer bytes and section ids inside the data, so that a scan would
    // have lookalikes to stop at.
    for (size_t j = 0; j < data.size(); ++j) data[j] = static_cast<uint8_t>(j * 0x7e + i);
    devices.push_back({absl::StrCat("blob", i), 0, 1, {{"data", "buffer", std::move(data)}}});
  }
  return devices;
}

// A precopy stream with BigDevices(); with `break_blob`, the trailer
// describes that device one byte shorter than its body, which a decode finds
// (section.footer_missing) and a scan does not.
std::vector<uint8_t> BigStream(std::optional<size_t> break_blob = std::nullopt,
                               uint64_t* first_body = nullptr) {
  StreamRecipe recipe;
  recipe.devices = BigDevices();
  recipe.vmdescription = false;
  StreamWriter w = BuildPrecopyStream(recipe);
  std::vector<DeviceSpec> described = recipe.devices;
  if (break_blob.has_value()) described[3 + *break_blob].fields[0].bytes.pop_back();
  w.Mark("vmdesc").VmDescription(DescribeDevices(described));
  // FULL: type, be32 id, counted "timer", be32 instance, be32 version.
  if (first_body != nullptr) *first_body = w.MarkOf("device:timer") + 1 + 4 + 1 + 5 + 4 + 4;
  return w.Take();
}

struct PipeRun {
  ParseResult result;
  size_t peak_buffer = 0;
  uint64_t spilled = 0;
};

// Parses `bytes` read from a pipe with these limits and spill directory.
PipeRun ParseFromPipe(const std::vector<uint8_t>& bytes, const ParseOptions& options,
                      const std::string& spill_directory = TestTmpDir()) {
  ::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::thread writer([fd = fds[1], &bytes] {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, std::min<size_t>(bytes.size() - done, 100000));
      if (n <= 0) break;  // the parse stopped reading
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  PipeRun run{ParseResult{StreamSummary{}, FindingList()}};
  {
    FdSource source(fds[0]);
    source.set_spill_directory(spill_directory);
    run.result = ParseMigrationStream(source, options);
    run.peak_buffer = source.PeakBufferBytes();
    run.spilled = source.SpilledBytes();
  }
  ::close(fds[0]);
  writer.join();
  return run;
}

ParseResult ParseFromFile(const std::vector<uint8_t>& bytes, const ParseOptions& options) {
  std::string path = TestTmpDir() + "/pipe_verdict_test-XXXXXX";
  int fd = ::mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenedInput::Open(path);
  EXPECT_TRUE(input.ok()) << input.status();
  ParseResult result = ParseMigrationStream((*input)->source(), options);
  ::unlink(path.c_str());
  return result;
}

// Everything a verdict rests on.
std::string Describe(const ParseResult& r) {
  return absl::StrCat(FormatFindings(r), "bytes ", r.summary.bytes, ", errors ",
                      r.findings.error_count(), ", warnings ", r.findings.warning_count(),
                      ", decoded ", r.summary.devices_decoded, ", unverified ",
                      r.summary.devices_unverified, ", description '",
                      r.summary.device_description_source, "', vmdesc ", r.summary.vmdesc_present);
}

void ExpectOneVerdict(const std::vector<uint8_t>& bytes, const std::string& want) {
  ParseOptions options;
  EXPECT_EQ(Describe(ParseFromFile(bytes, options)), want) << "from a file";

  // Past max_buffered_device_state (32 MiB): the rest goes to a temporary
  // file, and memory stays at that limit.
  PipeRun pipe = ParseFromPipe(bytes, options);
  EXPECT_EQ(Describe(pipe.result), want) << "from a pipe";
  EXPECT_GT(pipe.spilled, options.limits.max_buffered_device_state);
  EXPECT_LE(pipe.peak_buffer, options.limits.max_buffered_device_state + 2 * kStreamWindowBytes);

  ParseOptions tiny = options;
  tiny.limits.max_buffered_device_state = 4096;
  PipeRun small = ParseFromPipe(bytes, tiny);
  EXPECT_EQ(Describe(small.result), want) << "from a pipe that keeps 4 KiB in memory";
  EXPECT_LE(small.peak_buffer, 2 * kStreamWindowBytes);
}

TEST(PipeVerdictTest, BigDeviceStateIsValidOnEveryPath) {
  const std::vector<uint8_t> bytes = BigStream();
  ParseResult memory = ParseBytes(bytes);
  ASSERT_TRUE(memory.valid()) << FormatFindings(memory);
  ASSERT_EQ(memory.summary.devices_decoded, 3 + kBlobs);
  ExpectOneVerdict(bytes, Describe(memory));
}

// The case: decoded, the stream is invalid; scanned (what a pipe did
// past 32 MiB) it came out valid.
TEST(PipeVerdictTest, BigDeviceStateIsInvalidOnEveryPath) {
  const std::vector<uint8_t> bytes = BigStream(/*break_blob=*/4);
  ParseResult memory = ParseBytes(bytes);
  ASSERT_FALSE(memory.valid());
  ASSERT_NE(FindFinding(memory, FindingCode::kFooterMissing), nullptr) << FormatFindings(memory);
  ExpectOneVerdict(bytes, Describe(memory));
}

// With no room to keep the rest, a pipe defers: the findings before the
// first device section are the file's, then input.undecidable, and no
// device is scanned and passed.
TEST(PipeVerdictTest, WithoutRoomAPipeSaysItCannotDecide) {
  uint64_t first_body = 0;
  const std::vector<uint8_t> bytes = BigStream(/*break_blob=*/4, &first_body);
  ParseResult memory = ParseBytes(bytes);
  struct Case {
    std::string name;
    uint64_t disk_bytes;
    std::string directory;
    std::string says;
  };
  for (const Case& c :
       {Case{"over the disk limit", 1 << 20, TestTmpDir(), "more than 1048576"},
        Case{"no temporary file", uint64_t{1} << 32, "/nonexistent-qmig-spill-directory",
             "/nonexistent-qmig-spill-directory"}}) {
    SCOPED_TRACE(c.name);
    ParseOptions options;
    options.limits.max_buffered_device_state = 1 << 20;
    options.limits.max_spilled_device_state = c.disk_bytes;
    PipeRun pipe = ParseFromPipe(bytes, options, c.directory);
    const ParseResult& r = pipe.result;
    EXPECT_TRUE(ErrorCodesAre(r, {FindingCode::kUndecidable})) << FormatFindings(r);
    EXPECT_TRUE(HasFinding(r, Want(FindingCode::kUndecidable, first_body)));
    const Finding* undecidable = FindFinding(r, FindingCode::kUndecidable);
    ASSERT_NE(undecidable, nullptr);
    EXPECT_TRUE(absl::StrContains(undecidable->message, c.says)) << undecidable->message;
    EXPECT_TRUE(absl::StrContains(undecidable->message, "read the stream from a file"));
    EXPECT_EQ(r.summary.devices_decoded + r.summary.devices_unverified, 0u);
    // A deferral, not another judgement: what came before is the file's.
    ASSERT_LE(r.findings.findings().size(), memory.findings.findings().size() + 1);
    for (size_t i = 0; i + 1 < r.findings.findings().size(); ++i) {
      EXPECT_EQ(FormatFinding(r.findings.findings()[i]),
                FormatFinding(memory.findings.findings()[i]));
    }
    EXPECT_LE(pipe.peak_buffer, (1u << 20) + 2 * kStreamWindowBytes);
  }
}

// The device.unverified message says what the probe searched, which is true
// whatever the summary lists later.
TEST(PipeVerdictTest, TheUnverifiedMessageSaysWhatWasSearched) {
  {
    // A trailer followed by junk: the summary lists it, but it does not end
    // the input.
    StreamWriter w = BuildPrecopyStream();
    w.Text("junk");
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.summary.vmdesc_present);
    const Finding* unverified = FindFinding(r, FindingCode::kDeviceUnverified);
    ASSERT_NE(unverified, nullptr) << FormatFindings(r);
    EXPECT_TRUE(absl::StrContains(unverified->message,
                                  "the input does not end with a "
                                  "VMDESCRIPTION trailer"))
        << unverified->message;
    EXPECT_EQ(Describe(ParseBytesThroughPipe(w.bytes())), Describe(r));
  }
  {
    // Devices in a package, and a trailer after all: it is not looked for.
    StreamWriter w = BuildPostcopyStream();
    w.VmDescription(DescribeDevices(DefaultDevices()));
    ParseResult r = ParseBytes(w.bytes());
    EXPECT_TRUE(r.summary.vmdesc_present);
    const Finding* unverified = FindFinding(r, FindingCode::kDeviceUnverified);
    ASSERT_NE(unverified, nullptr) << FormatFindings(r);
    EXPECT_TRUE(absl::StrContains(unverified->message, "inside a package")) << unverified->message;
    EXPECT_EQ(Describe(ParseBytesThroughPipe(w.bytes())), Describe(r));
  }
}

}  // namespace
}  // namespace qmig
