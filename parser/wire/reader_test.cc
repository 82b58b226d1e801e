#include "parser/wire/reader.h"

#include <cstdint>
#include <vector>

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

}  // namespace
}  // namespace qmig
