#include "parser/trailer.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace qmig {
namespace {

// EOF, then VMDESCRIPTION with a be32 length and the JSON.
std::vector<uint8_t> Trailer(const std::string& json) {
  std::vector<uint8_t> bytes = {0x00, 0x06};
  const uint32_t length = static_cast<uint32_t>(json.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<uint8_t>(length >> shift));
  bytes.insert(bytes.end(), json.begin(), json.end());
  return bytes;
}

std::vector<uint8_t> Concat(std::vector<uint8_t> front, const std::vector<uint8_t>& back) {
  front.insert(front.end(), back.begin(), back.end());
  return front;
}

TEST(LocateTrailerTest, FindsTheTrailerThatEndsTheInput) {
  const std::string json = R"({"page_size":4096,"devices":[]})";
  std::vector<uint8_t> stream = Concat({'Q', 'E', 'V', 'M', 0x06, 0x00}, Trailer(json));
  std::optional<TrailerLocation> location = LocateTrailer(stream, 1000, 1 << 20);
  ASSERT_TRUE(location.has_value());
  EXPECT_EQ(location->offset, 1000 + 7);  // the 0x06 after the EOF byte
  EXPECT_EQ(location->json, json);
}

TEST(LocateTrailerTest, SkipsCandidatesWhoseLengthDoesNotReachTheEnd) {
  // A JSON that itself holds a trailer-like run (EOF 0x06 length '{'): only
  // the outer one's length ends the input.
  const std::string inner(reinterpret_cast<const char*>(Trailer("{}").data()), 7);
  const std::string json = "{\"x\":\"" + inner + "\"}";
  std::vector<uint8_t> stream = Trailer(json);
  std::optional<TrailerLocation> location = LocateTrailer(stream, 0, 1 << 20);
  ASSERT_TRUE(location.has_value());
  EXPECT_EQ(location->offset, 1);
  EXPECT_EQ(location->json, json);
}

TEST(LocateTrailerTest, NeedsTheEofByteBeforeIt) {
  std::vector<uint8_t> stream = Trailer("{}");
  stream[0] = 0x01;
  EXPECT_FALSE(LocateTrailer(stream, 0, 1 << 20).has_value());
  // Nor may the 0x06 be the input's first byte.
  stream.erase(stream.begin());
  EXPECT_FALSE(LocateTrailer(stream, 0, 1 << 20).has_value());
}

TEST(LocateTrailerTest, RespectsTheJsonLimit) {
  const std::string json = "{\"a\":\"" + std::string(100, 'x') + "\"}";
  std::vector<uint8_t> stream = Trailer(json);
  EXPECT_TRUE(LocateTrailer(stream, 0, json.size()).has_value());
  EXPECT_FALSE(LocateTrailer(stream, 0, json.size() - 1).has_value());
}

TEST(LocateTrailerTest, RefusesInputsThatCannotHoldOne) {
  EXPECT_FALSE(LocateTrailer({}, 0, 1 << 20).has_value());
  std::vector<uint8_t> stream = Trailer("{}");
  stream.back() = ']';
  EXPECT_FALSE(LocateTrailer(stream, 0, 1 << 20).has_value());
  stream = Trailer("{}");
  stream.pop_back();  // the length now overshoots
  stream.push_back('}');
  stream.insert(stream.end() - 1, 'x');
  EXPECT_FALSE(LocateTrailer(stream, 0, 1 << 20).has_value());
}

}  // namespace
}  // namespace qmig
