#include "parser/wire/reader.h"

#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

std::vector<uint8_t> Bytes(std::initializer_list<int> values) {
  std::vector<uint8_t> out;
  for (int v : values) out.push_back(static_cast<uint8_t>(v));
  return out;
}

TEST(ReaderTest, ReadsBigEndianIntegers) {
  std::vector<uint8_t> data = Bytes({0x12, 0x34, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4, 5, 6, 7, 8});
  MemorySource source(data);
  Reader reader(&source, nullptr);
  EXPECT_EQ(*reader.Be16(), 0x1234);
  EXPECT_EQ(*reader.Be32(), 0x12345678u);
  EXPECT_EQ(*reader.Be64(), 0x0102030405060708ull);
  EXPECT_TRUE(*reader.AtEnd());
  EXPECT_EQ(reader.offset(), 14u);
}

TEST(ReaderTest, TruncatedIsOutOfRangeAtTheReadOffset) {
  std::vector<uint8_t> data = Bytes({1, 2, 3});
  MemorySource source(data);
  Reader reader(&source, nullptr);
  ASSERT_TRUE(reader.U8().ok());
  absl::StatusOr<uint32_t> value = reader.Be32();
  ASSERT_FALSE(value.ok());
  EXPECT_TRUE(absl::IsOutOfRange(value.status())) << value.status();
  EXPECT_EQ(reader.offset(), 1u);
}

TEST(ReaderTest, SubReaderStopsAtItsLimitWithADifferentError) {
  std::vector<uint8_t> data = Bytes({1, 2, 3, 4, 5, 6, 7, 8});
  MemorySource source(data);
  Reader reader(&source, nullptr);
  absl::StatusOr<Reader> sub = reader.Sub(3, "test blob");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(*sub->Be16(), 0x0102);
  absl::StatusOr<uint16_t> past = sub->Be16();
  ASSERT_FALSE(past.ok());
  EXPECT_TRUE(absl::IsDataLoss(past.status())) << past.status();
  EXPECT_EQ(*sub->U8(), 3);
  EXPECT_TRUE(*sub->AtEnd());
  reader.MoveTo(sub->offset());
  EXPECT_EQ(*reader.U8(), 4);
}

TEST(ReaderTest, SubReaderLongerThanInputIsTruncatedWhenRead) {
  // The input's size is not consulted, so a file and a pipe agree: the
  // truncation shows at the read that runs off the end.
  std::vector<uint8_t> data = Bytes({1, 2, 3});
  MemorySource source(data);
  Reader reader(&source, nullptr);
  absl::StatusOr<Reader> sub = reader.Sub(4, "test blob");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(*sub->U8(), 1);
  absl::StatusOr<uint32_t> rest = sub->Be32();
  ASSERT_FALSE(rest.ok());
  EXPECT_TRUE(absl::IsOutOfRange(rest.status()));
}

TEST(ReaderTest, SubReaderLongerThanParentIsPastLimit) {
  std::vector<uint8_t> data(16, 0);
  MemorySource source(data);
  Reader reader(&source, nullptr);
  absl::StatusOr<Reader> outer = reader.Sub(8, "outer");
  ASSERT_TRUE(outer.ok());
  absl::StatusOr<Reader> inner = outer->Sub(9, "inner");
  ASSERT_FALSE(inner.ok());
  EXPECT_TRUE(absl::IsDataLoss(inner.status()));
}

TEST(ReaderTest, CheckCanArriveGuardsHugeLengths) {
  std::vector<uint8_t> data(10, 0);
  MemorySource source(data);
  Reader reader(&source, nullptr);
  EXPECT_TRUE(reader.CheckCanArrive(10).ok());
  EXPECT_TRUE(absl::IsOutOfRange(reader.CheckCanArrive(11)));
  EXPECT_TRUE(absl::IsOutOfRange(reader.CheckCanArrive(UINT64_MAX)));
  EXPECT_TRUE(absl::IsOutOfRange(reader.Skip(UINT64_MAX)));
}

TEST(ReaderTest, CountedString) {
  std::vector<uint8_t> data = Bytes({3, 'r', 'a', 'm', 0});
  MemorySource source(data);
  Reader reader(&source, nullptr);
  EXPECT_EQ(*reader.CountedString(), "ram");
  EXPECT_EQ(*reader.CountedString(), "");
  EXPECT_TRUE(absl::IsOutOfRange(reader.CountedString().status()));
}

TEST(ReaderTest, ContiguousViewsAreCapped) {
  std::vector<uint8_t> data(kMaxContiguousView + 1, 0);
  MemorySource source(data);
  Reader reader(&source, nullptr);
  EXPECT_FALSE(reader.Bytes(kMaxContiguousView + 1).ok());
  EXPECT_TRUE(reader.Skip(kMaxContiguousView + 1).ok());
  EXPECT_TRUE(*reader.AtEnd());
}

TEST(ReaderTest, BaseOffsetKeepsAbsoluteOffsets) {
  std::vector<uint8_t> data = Bytes({0xaa, 0xbb});
  MemorySource source(data, 1000);
  Reader reader(&source, nullptr, 1000);
  EXPECT_EQ(*reader.U8(), 0xaa);
  EXPECT_EQ(reader.offset(), 1001u);
  EXPECT_EQ(*reader.KnownRemaining(), 1u);
}

// The same reads through a 16-byte window over a pipe (slow path at every
// window end, fast path inside it) and from memory (fast path throughout)
// give the same values and the same failures.
TEST(ReaderTest, FastAndSlowPathsAgree) {
  std::vector<uint8_t> data(300);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
  auto run = [](ByteSource& source) {
    std::string log;
    Reader reader(&source, nullptr);
    uint32_t state = 1;
    for (int step = 0; step < 200; ++step) {
      state = state * 1103515245u + 12345u;
      absl::Status status;
      switch ((state >> 16) % 7) {
        case 0: {
          absl::StatusOr<uint64_t> v = reader.Be64();
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, *v, ",");
          break;
        }
        case 1: {
          absl::StatusOr<uint32_t> v = reader.Be32();
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, *v, ",");
          break;
        }
        case 2: {
          absl::StatusOr<uint16_t> v = reader.Be16();
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, *v, ",");
          break;
        }
        case 3: {
          absl::StatusOr<uint8_t> v = reader.PeekU8();
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, "p", *v, ",");
          break;
        }
        case 4: {
          absl::StatusOr<absl::Span<const uint8_t>> v = reader.Bytes((state >> 8) % 40);
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, "b", v->size(), ":", v->empty() ? 0 : v->back(), ",");
          break;
        }
        case 5: {
          // A bounded blob: reads inside it must stop at its end.
          absl::StatusOr<Reader> sub = reader.Sub((state >> 8) % 12, "blob");
          status = sub.status();
          if (!sub.ok()) break;
          absl::StatusOr<uint64_t> v = sub->Be64();
          absl::StrAppend(&log, v.ok() ? absl::StrCat(*v) : v.status().ToString(), ",");
          absl::StatusOr<uint32_t> w = sub->Be32();
          absl::StrAppend(&log, w.ok() ? absl::StrCat(*w) : w.status().ToString(), ",");
          reader.MoveTo(sub->offset());
          break;
        }
        default: {
          absl::StatusOr<absl::Span<const uint8_t>> v = reader.Peek((state >> 8) % 20);
          status = v.status();
          if (v.ok()) absl::StrAppend(&log, "k", v->size(), ",");
        }
      }
      if (!status.ok()) absl::StrAppend(&log, status.ToString(), ",");
      absl::StrAppend(&log, "@", reader.offset(), "\n");
    }
    return log;
  };
  MemorySource memory(data);
  const std::string from_memory = run(memory);

  signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    for (size_t at = 0; at < data.size(); at += 5) {
      if (write(fds[1], data.data() + at, std::min<size_t>(5, data.size() - at)) <= 0) break;
    }
    close(fds[1]);
  });
  FdSource pipe_source(fds[0], std::nullopt, /*window_bytes=*/16);
  const std::string from_pipe = run(pipe_source);
  close(fds[0]);
  writer.join();
  EXPECT_EQ(from_pipe, from_memory);
  EXPECT_NE(from_memory.find("OUT_OF_RANGE"), std::string::npos);  // it reached the end
  EXPECT_NE(from_memory.find("DATA_LOSS"), std::string::npos);     // and a blob's end
}

// SkipTo jumps over a region of a sized input without reading it, and a
// pipe reads through it; both end at the same offset, and both report a
// jump past the input's end as truncated where the input ends.
TEST(ReaderTest, SkipToAgreesOnSizedInputsAndPipes) {
  std::vector<uint8_t> data(100);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  auto run = [](ByteSource& source) {
    std::string log;
    Reader reader(&source, nullptr);
    for (uint64_t target : {10u, 5u, 60u, 60u, 99u, 250u}) {
      absl::Status status = reader.SkipTo(target);
      absl::StrAppend(&log, status.ToString(), "@", reader.offset(), ",");
      absl::StatusOr<uint8_t> next = reader.PeekU8();
      if (next.ok()) absl::StrAppend(&log, "next=", *next, ";");
    }
    return log;
  };
  MemorySource memory(data);
  const std::string from_memory = run(memory);
  EXPECT_NE(from_memory.find("OK@60,next=60;"), std::string::npos) << from_memory;
  EXPECT_NE(from_memory.find("OK@10,next=10;OK@10,"), std::string::npos) << from_memory;
  EXPECT_NE(from_memory.find("truncated at offset 100"), std::string::npos) << from_memory;

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    (void)!write(fds[1], data.data(), data.size());
    close(fds[1]);
  });
  FdSource pipe_source(fds[0], std::nullopt, /*window_bytes=*/16);
  const std::string from_pipe = run(pipe_source);
  close(fds[0]);
  writer.join();
  EXPECT_EQ(from_pipe, from_memory);
}

}  // namespace
}  // namespace qmig
