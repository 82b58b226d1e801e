#include "parser/wire/endian.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace qmig {
namespace {

constexpr uint8_t kBytes[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static_assert(LoadBe16(kBytes) == 0x0123);
static_assert(LoadBe32(kBytes) == 0x01234567u);
static_assert(LoadBe64(kBytes) == 0x0123456789abcdefull);
static_assert(LoadLe64(kBytes) == 0xefcdab8967452301ull);

TEST(EndianTest, LoadsTakeTheFirstByteAsMostSignificant) {
  EXPECT_EQ(LoadBe16(kBytes + 1), 0x2345);
  EXPECT_EQ(LoadBe32(kBytes + 4), 0x89abcdefu);
  EXPECT_EQ(LoadBe64(kBytes), 0x0123456789abcdefull);
}

TEST(EndianTest, HighBitsDoNotSignExtend) {
  const uint8_t ones[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(LoadBe16(ones), 0xffff);
  EXPECT_EQ(LoadBe32(ones), 0xffffffffu);
  EXPECT_EQ(LoadBe64(ones), ~uint64_t{0});
  EXPECT_EQ(LoadLe64(ones), ~uint64_t{0});
  const uint8_t high[4] = {0x80, 0x00, 0x00, 0x00};
  EXPECT_EQ(LoadBe32(high), 0x80000000u);
}

TEST(EndianTest, LittleEndianWordTakesTheFirstByteAsLeastSignificant) {
  EXPECT_EQ(LoadLe64(kBytes), 0xefcdab8967452301ull);
  uint8_t out[8] = {};
  StoreLe64(out, 0xefcdab8967452301ull);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 8), std::vector<uint8_t>(kBytes, kBytes + 8));
}

TEST(EndianTest, StoresWriteExactlyTheirWidth) {
  uint8_t out[10];
  for (uint8_t& b : out) b = 0x5a;
  StoreBe16(out + 1, 0x0123);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 4), (std::vector<uint8_t>{0x5a, 0x01, 0x23, 0x5a}));
  for (uint8_t& b : out) b = 0x5a;
  StoreBe32(out + 1, 0x01234567u);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 6),
            (std::vector<uint8_t>{0x5a, 0x01, 0x23, 0x45, 0x67, 0x5a}));
  for (uint8_t& b : out) b = 0x5a;
  StoreBe64(out + 1, 0x0123456789abcdefull);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 10),
            (std::vector<uint8_t>{0x5a, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x5a}));
}

TEST(EndianTest, AppendsAddToTheEnd) {
  std::vector<uint8_t> out = {0x5a};
  AppendBe16(out, 0x0123);
  AppendBe32(out, 0x456789abu);
  AppendBe64(out, 0xcdef0011223344ffull);
  EXPECT_EQ(out, (std::vector<uint8_t>{0x5a, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00,
                                       0x11, 0x22, 0x33, 0x44, 0xff}));
}

TEST(EndianTest, RoundTrips) {
  const uint64_t values[] = {0,
                             1,
                             0x80,
                             0xff,
                             0x8000,
                             0xffff,
                             0x80000000u,
                             0xffffffffu,
                             0x8000000000000000ull,
                             ~uint64_t{0},
                             0x0123456789abcdefull};
  for (uint64_t v : values) {
    uint8_t bytes[8];
    StoreBe16(bytes, static_cast<uint16_t>(v));
    EXPECT_EQ(LoadBe16(bytes), static_cast<uint16_t>(v));
    StoreBe32(bytes, static_cast<uint32_t>(v));
    EXPECT_EQ(LoadBe32(bytes), static_cast<uint32_t>(v));
    StoreBe64(bytes, v);
    EXPECT_EQ(LoadBe64(bytes), v);
    StoreLe64(bytes, v);
    EXPECT_EQ(LoadLe64(bytes), v);
  }
}

}  // namespace
}  // namespace qmig
