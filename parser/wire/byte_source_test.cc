#include "parser/wire/byte_source.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"
#include "parser/wire/reader.h"

namespace qmig {
namespace {

// Writes `data` into a pipe from another thread, in odd-sized chunks.
class PipeWriter {
 public:
  explicit PipeWriter(std::vector<uint8_t> data) : data_(std::move(data)) {
    signal(SIGPIPE, SIG_IGN);  // the reader may stop early
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    read_fd_ = fds[0];
    int write_fd = fds[1];
    thread_ = std::thread([this, write_fd] {
      size_t pos = 0;
      while (pos < data_.size()) {
        size_t chunk = std::min<size_t>(data_.size() - pos, 7777);
        ssize_t n = write(write_fd, data_.data() + pos, chunk);
        if (n <= 0) break;
        pos += static_cast<size_t>(n);
      }
      close(write_fd);
    });
  }
  ~PipeWriter() {
    close(read_fd_);
    thread_.join();
  }
  int fd() const { return read_fd_; }

 private:
  std::vector<uint8_t> data_;
  int read_fd_;
  std::thread thread_;
};

std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 8));
  return data;
}

// Memory holds the whole rest of the input: BufferUntil says so, whatever
// `complete` would answer, and without asking it.
TEST(MemorySourceTest, BufferUntilHasEverythingAlready) {
  const std::vector<uint8_t> bytes(100, 7);
  MemorySource source(bytes);
  int asked = 0;
  auto never = [&asked](absl::Span<const uint8_t>) {
    ++asked;
    return false;
  };
  absl::StatusOr<bool> whole = source.BufferUntil(10, 1, never, absl::ZeroDuration());
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(*whole);
  whole = source.BufferUntil(100, 1, never, absl::ZeroDuration());
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(*whole);
  EXPECT_EQ(asked, 0);
}

TEST(FdSourceTest, ReadsAPipeThroughABoundedWindow) {
  std::vector<uint8_t> data = Pattern(5 * kStreamWindowBytes + 123);
  PipeWriter writer(data);
  FdSource source(writer.fd());
  Reader reader(&source, nullptr);
  uint64_t checksum = 0, expected = 0;
  for (uint8_t b : data) expected = expected * 31 + b;
  // Odd-sized reads that straddle the window's refills; the size of a pipe
  // is unknown, so each read takes what is left when fewer remain.
  while (!*reader.AtEnd()) {
    absl::StatusOr<absl::Span<const uint8_t>> ahead = reader.PeekUpTo(4099);
    ASSERT_TRUE(ahead.ok());
    absl::StatusOr<absl::Span<const uint8_t>> bytes = reader.Bytes(ahead->size());
    ASSERT_TRUE(bytes.ok());
    for (uint8_t b : *bytes) checksum = checksum * 31 + b;
  }
  EXPECT_EQ(checksum, expected);
  EXPECT_LE(source.PeakBufferBytes(), kStreamWindowBytes);
}

TEST(FdSourceTest, ASmallWindowSlidesAndGrowsForLargerViews) {
  std::vector<uint8_t> data = Pattern(10000);
  PipeWriter writer(data);
  FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/16);
  Reader reader(&source, nullptr);
  // 3-byte reads straddle the 16-byte window; then one view of 1000 bytes,
  // which the window must grow to hold.
  for (size_t at = 0; at < 300; at += 3) {
    absl::StatusOr<absl::Span<const uint8_t>> bytes = reader.Bytes(3);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ((*bytes)[0], data[at]);
    EXPECT_EQ((*bytes)[2], data[at + 2]);
  }
  absl::StatusOr<absl::Span<const uint8_t>> wide = reader.Bytes(1000);
  ASSERT_TRUE(wide.ok());
  EXPECT_TRUE(std::equal(wide->begin(), wide->end(), data.begin() + 300));
  EXPECT_GE(source.PeakBufferBytes(), 1000u);
  EXPECT_LT(source.PeakBufferBytes(), 2000u);
}

TEST(FdSourceTest, SkipsForwardWithoutHoldingTheSkippedBytes) {
  std::vector<uint8_t> data = Pattern(4 * kStreamWindowBytes);
  PipeWriter writer(data);
  FdSource source(writer.fd());
  Reader reader(&source, nullptr);
  ASSERT_TRUE(reader.Skip(3 * kStreamWindowBytes + 5).ok());
  EXPECT_EQ(*reader.U8(), data[3 * kStreamWindowBytes + 5]);
  EXPECT_LE(source.PeakBufferBytes(), kStreamWindowBytes);
}

TEST(FdSourceTest, BufferToEndHoldsTheTailOrSaysItIsTooLong) {
  std::vector<uint8_t> data = Pattern(3 * kStreamWindowBytes);
  {
    PipeWriter writer(data);
    FdSource source(writer.fd());
    absl::StatusOr<bool> fits = source.BufferToEnd(100, data.size());
    ASSERT_TRUE(fits.ok());
    EXPECT_TRUE(*fits);
    absl::StatusOr<absl::Span<const uint8_t>> view = source.View(100, 1);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->size(), data.size() - 100);
    EXPECT_EQ((*view)[view->size() - 1], data.back());
  }
  {
    PipeWriter writer(data);
    FdSource source(writer.fd());
    absl::StatusOr<bool> fits = source.BufferToEnd(0, kStreamWindowBytes);
    ASSERT_TRUE(fits.ok());
    EXPECT_FALSE(*fits);
    Reader reader(&source, nullptr);
    EXPECT_EQ(*reader.U8(), data[0]);
  }
}

TEST(FdSourceTest, TruncationOnAPipeIsReportedAsTruncated) {
  std::vector<uint8_t> data = Pattern(10);
  PipeWriter writer(data);
  FdSource source(writer.fd());
  Reader reader(&source, nullptr);
  ASSERT_TRUE(reader.Skip(8).ok());
  EXPECT_TRUE(absl::IsOutOfRange(reader.Be32().status()));
}

// A regular file holding `data`, removed again at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& data) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(dir != nullptr ? dir : "/tmp", "/byte_source_test-XXXXXX");
    fd_ = mkstemp(path_.data());
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(write(fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  ~TempFile() {
    close(fd_);
    unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_;
};

TEST(FdSourceTest, ReadsAFileAtAnyOffsetWithPread) {
  std::vector<uint8_t> data = Pattern(3 * 4096 + 77);
  TempFile file(data);
  std::unique_ptr<FdSource> source = FdSource::ForFile(file.fd(), data.size(), 4096);
  ASSERT_EQ(source->Size(), data.size());
  // Forward, backward and across window ends: a file has no retained window.
  for (uint64_t offset : {uint64_t{0}, uint64_t{5000}, uint64_t{100}, uint64_t{4090},
                          uint64_t{3 * 4096 + 76}, uint64_t{8191}}) {
    absl::StatusOr<absl::Span<const uint8_t>> view = source->View(offset, 9);
    ASSERT_TRUE(view.ok());
    ASSERT_GE(view->size(), std::min<size_t>(9, data.size() - offset)) << offset;
    EXPECT_TRUE(std::equal(view->begin(), view->end(), data.begin() + offset)) << offset;
    EXPECT_EQ(view->end() - view->begin(),
              static_cast<ptrdiff_t>(std::min<uint64_t>(view->size(), data.size() - offset)));
  }
  absl::StatusOr<absl::Span<const uint8_t>> past = source->View(data.size(), 1);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
  // A view wider than the window grows it.
  absl::StatusOr<absl::Span<const uint8_t>> wide = source->View(10, 10000);
  ASSERT_TRUE(wide.ok());
  ASSERT_GE(wide->size(), 10000u);
  EXPECT_TRUE(std::equal(wide->begin(), wide->begin() + 10000, data.begin() + 10));
  EXPECT_LT(source->PeakBufferBytes(), 10000u + 2 * 4096);
}

TEST(FdSourceTest, AFileThatShrankEndsWhereItNowEnds) {
  std::vector<uint8_t> data = Pattern(10000);
  TempFile file(data);
  std::unique_ptr<FdSource> source = FdSource::ForFile(file.fd(), data.size(), 4096);
  ASSERT_EQ(ftruncate(file.fd(), 6000), 0);
  Reader reader(source.get(), nullptr);
  ASSERT_TRUE(reader.Skip(5996).ok());
  EXPECT_EQ(*reader.Be32(), LoadBe32(&data[5996]));
  EXPECT_TRUE(absl::IsOutOfRange(reader.U8().status()));  // truncated, not a crash
  EXPECT_EQ(source->Size(), 6000u);
}

// The kernel copies fast only when a byte sits at the same offset modulo a
// cache line in the buffer as in the input.
TEST(FdSourceTest, ViewsKeepTheInputsAlignment) {
  std::vector<uint8_t> data = Pattern(200000);
  PipeWriter writer(data);
  FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/4096);
  for (uint64_t offset = 0; offset + 300 < data.size(); offset += 1237) {
    absl::StatusOr<absl::Span<const uint8_t>> view = source.View(offset, 300);
    ASSERT_TRUE(view.ok());
    ASSERT_GE(view->size(), 300u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data()) % 64, offset % 64) << offset;
    EXPECT_EQ((*view)[299], data[offset + 299]);
  }
  TempFile file(data);
  std::unique_ptr<FdSource> positional = FdSource::ForFile(file.fd(), data.size(), 4096);
  for (uint64_t offset = 3; offset + 300 < data.size(); offset += 4099) {
    absl::StatusOr<absl::Span<const uint8_t>> view = positional->View(offset, 300);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data()) % 64, offset % 64) << offset;
  }
}

// A reader's small reads come from the source's current view without a
// call, and never from a view the source has since replaced.
TEST(FdSourceTest, CurrentIsTheLastViewOnly) {
  std::vector<uint8_t> data = Pattern(100);
  PipeWriter writer(data);
  FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/16);
  EXPECT_EQ(source.Current(0, 1), nullptr);  // nothing handed out yet
  absl::StatusOr<absl::Span<const uint8_t>> view = source.View(0, 8);
  ASSERT_TRUE(view.ok());
  ASSERT_NE(source.Current(4, 4), nullptr);
  EXPECT_EQ(*source.Current(4, 4), data[4]);
  EXPECT_EQ(source.Current(4, view->size()), nullptr);  // runs past the view
  ASSERT_TRUE(source.View(40, 8).ok());
  EXPECT_EQ(source.Current(4, 1), nullptr);  // that window is gone
  EXPECT_EQ(*source.Current(41, 1), data[41]);
}

TEST(FdSourceTest, MakeEndKnownKeepsAShortRestInMemory) {
  std::vector<uint8_t> data = Pattern(3 * 4096);
  PipeWriter writer(data);
  FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/1024);
  ASSERT_TRUE(source.View(1000, 10).ok());
  absl::StatusOr<InputEnd> end = source.MakeEndKnown(1000, {data.size(), 0});
  ASSERT_TRUE(end.ok());
  ASSERT_EQ(end->end, data.size()) << end->why_unknown;
  EXPECT_EQ(source.Size(), data.size());
  EXPECT_EQ(source.SpilledBytes(), 0u);
  std::vector<uint8_t> storage;
  absl::StatusOr<absl::Span<const uint8_t>> tail = source.Tail(data.size() - 100, &storage);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(std::equal(tail->begin(), tail->end(), data.end() - 100, data.end()));
  absl::StatusOr<absl::Span<const uint8_t>> view = source.View(5000, 10);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ((*view)[0], data[5000]);
}

TEST(FdSourceTest, MakeEndKnownSpillsWhatMemoryCannotHold) {
  std::vector<uint8_t> data = Pattern(3 * kStreamWindowBytes + 5);
  PipeWriter writer(data);
  FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/4096);
  source.set_spill_directory(std::getenv("TEST_TMPDIR") != nullptr ? std::getenv("TEST_TMPDIR")
                                                                   : "/tmp");
  ASSERT_TRUE(source.View(777, 10).ok());
  absl::StatusOr<InputEnd> end = source.MakeEndKnown(777, {64 << 10, data.size()});
  ASSERT_TRUE(end.ok());
  ASSERT_EQ(end->end, data.size()) << end->why_unknown;
  EXPECT_GE(source.SpilledBytes(), data.size() - 777);
  // Memory stayed at the memory limit; now views come from the file.
  EXPECT_LE(source.PeakBufferBytes(), (64u << 10) + 4096);
  Reader reader(&source, nullptr, 777);
  uint64_t checksum = 0, expected = 0;
  for (size_t i = 777; i < data.size(); ++i) expected = expected * 31 + data[i];
  while (!*reader.AtEnd()) {
    absl::StatusOr<absl::Span<const uint8_t>> ahead = reader.PeekUpTo(5001);
    ASSERT_TRUE(ahead.ok());
    absl::StatusOr<absl::Span<const uint8_t>> bytes = reader.Bytes(ahead->size());
    ASSERT_TRUE(bytes.ok());
    for (uint8_t b : *bytes) checksum = checksum * 31 + b;
  }
  EXPECT_EQ(checksum, expected);
  std::vector<uint8_t> storage;
  absl::StatusOr<absl::Span<const uint8_t>> tail = source.Tail(data.size() - 70000, &storage);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 70000u);
  EXPECT_TRUE(std::equal(tail->begin(), tail->end(), data.end() - 70000, data.end()));
  // Behind the spilled part there is nothing.
  EXPECT_FALSE(source.View(10, 1).ok());
}

TEST(FdSourceTest, MakeEndKnownSaysWhyItCannot) {
  std::vector<uint8_t> data = Pattern(300000);
  {
    // No temporary file: the window still serves views.
    PipeWriter writer(data);
    FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/4096);
    source.set_spill_directory("/nonexistent-qmig-spill-directory");
    absl::StatusOr<InputEnd> end = source.MakeEndKnown(0, {8192, data.size()});
    ASSERT_TRUE(end.ok());
    EXPECT_FALSE(end->end.has_value());
    EXPECT_NE(end->why_unknown.find("/nonexistent-qmig-spill-directory"), std::string::npos)
        << end->why_unknown;
    EXPECT_FALSE(source.Size().has_value());
    Reader reader(&source, nullptr);
    ASSERT_TRUE(reader.Skip(data.size() - 1).ok());
    EXPECT_EQ(*reader.U8(), data.back());
  }
  {
    // Over the disk limit after reading on: those bytes are gone, and the
    // source says so rather than serve a gap.
    PipeWriter writer(data);
    FdSource source(writer.fd(), std::nullopt, /*window_bytes=*/4096);
    absl::StatusOr<InputEnd> end = source.MakeEndKnown(0, {8192, 100000});
    ASSERT_TRUE(end.ok());
    EXPECT_FALSE(end->end.has_value());
    EXPECT_NE(end->why_unknown.find("more than 100000 bytes"), std::string::npos)
        << end->why_unknown;
    EXPECT_FALSE(source.View(0, 1).ok());
    EXPECT_FALSE(source.MakeEndKnown(0, {8192, 100000}).ok());
  }
}

TEST(MemorySourceTest, EndAndTailAreAtHand) {
  std::vector<uint8_t> data = Pattern(1000);
  MemorySource source(data, 50);
  absl::StatusOr<InputEnd> end = source.MakeEndKnown(60, {0, 0});
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->end, 1050u);
  std::vector<uint8_t> storage;
  absl::StatusOr<absl::Span<const uint8_t>> tail = source.Tail(1040, &storage);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->data(), data.data() + 990);  // no copy
  EXPECT_EQ(tail->size(), 10u);
}

TEST(OpenedInputTest, ARegularFileIsReadInPlace) {
  std::vector<uint8_t> data = Pattern(3 * kStreamWindowBytes + 11);
  TempFile file(data);
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenedInput::Open(file.path());
  ASSERT_TRUE(input.ok());
  EXPECT_TRUE((*input)->seekable());
  ByteSource& source = (*input)->source();
  EXPECT_EQ(source.Size(), data.size());
  Reader reader(&source, nullptr);
  ASSERT_TRUE(reader.Skip(data.size() - 8).ok());
  absl::StatusOr<uint64_t> last = reader.Be64();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last & 0xff, data.back());
  EXPECT_LE(source.PeakBufferBytes(), 8 * kStreamWindowBytes);
}

}  // namespace
}  // namespace qmig
