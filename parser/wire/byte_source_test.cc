#include "parser/wire/byte_source.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
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

}  // namespace
}  // namespace qmig
