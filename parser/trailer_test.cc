#include "parser/trailer.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/endian.h"

namespace qmig {
namespace {

// EOF, then VMDESCRIPTION with a be32 length and the JSON.
std::vector<uint8_t> Trailer(const std::string& json) {
  std::vector<uint8_t> bytes = {0x00, 0x06};
  const uint32_t length = static_cast<uint32_t>(json.size());
  AppendBe32(bytes, length);
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

// Searching growing tails gives what a search of the whole rest gives, for
// every start and both probe sizes, on inputs made of trailer pieces: real
// trailers, lookalikes nested in JSON, trailers followed by bytes, lengths
// that miss, and trailers longer than the limit.
TEST(FindTrailerAtEndTest, GrowingTailsFindWhatTheWholeSearchFinds) {
  const std::vector<std::vector<uint8_t>> pieces = {
      Trailer("{}"),
      Trailer("{\"a\":1}"),
      Trailer("{\"long\":\"" + std::string(40, 'x') + "\"}"),
      {0x00, 0x06, 0x00, 0x00, 0x00, 0x09, '{', '}'},  // length overshoots
      {'}'},
      {0x00},
      {0x06},
      {'x', 'y'},
  };
  uint32_t state = 7;
  int found = 0, beyond_first = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> input;
    const int count = 1 + static_cast<int>((state >> 4) % 6);
    for (int i = 0; i < count; ++i) {
      state = state * 1664525u + 1013904223u;
      const std::vector<uint8_t>& piece = pieces[(state >> 8) % pieces.size()];
      input.insert(input.end(), piece.begin(), piece.end());
    }
    state = state * 1664525u + 1013904223u;
    const uint64_t max_json = 2 + (state >> 8) % 60;
    const uint64_t first = 1 + (state >> 16) % 24;
    const uint64_t base = 1000;
    MemorySource source(input, base);
    for (uint64_t from = 0; from <= input.size(); ++from) {
      std::optional<TrailerLocation> whole =
          LocateTrailer(absl::MakeConstSpan(input).subspan(from), base + from, max_json);
      absl::StatusOr<std::optional<FoundTrailer>> tail =
          FindTrailerAtEnd(source, base + from, max_json, first);
      ASSERT_TRUE(tail.ok()) << tail.status();
      ASSERT_EQ(tail->has_value(), whole.has_value()) << round << " from " << from;
      if (!whole.has_value()) continue;
      EXPECT_EQ((*tail)->offset, whole->offset);
      EXPECT_EQ((*tail)->json, whole->json);
      ++found;
      if (input.size() - (whole->offset - base) + 1 > first) ++beyond_first;
    }
  }
  // Both steps were taken.
  EXPECT_GT(found, 1000);
  EXPECT_GT(beyond_first, 100);
}

// A MemorySource that records which tails were asked for.
class TailLog : public ByteSource {
 public:
  explicit TailLog(absl::Span<const uint8_t> data) : memory_(data) {}
  absl::StatusOr<absl::Span<const uint8_t>> View(uint64_t offset, size_t want) override {
    return memory_.View(offset, want);
  }
  absl::StatusOr<bool> BufferToEnd(uint64_t offset, uint64_t max_bytes) override {
    return memory_.BufferToEnd(offset, max_bytes);
  }
  absl::StatusOr<bool> BufferUntil(uint64_t offset, uint64_t max_bytes,
                                   const std::function<bool(absl::Span<const uint8_t>)>& complete,
                                   absl::Duration idle) override {
    return memory_.BufferUntil(offset, max_bytes, complete, idle);
  }
  absl::StatusOr<bool> WaitForData(uint64_t offset, absl::Duration timeout) override {
    return memory_.WaitForData(offset, timeout);
  }
  absl::StatusOr<InputEnd> MakeEndKnown(uint64_t offset, const KeepLimits& limits) override {
    return memory_.MakeEndKnown(offset, limits);
  }
  absl::StatusOr<absl::Span<const uint8_t>> Tail(uint64_t from,
                                                 std::vector<uint8_t>* storage) override {
    tails.push_back(*Size() - from);
    return memory_.Tail(from, storage);
  }
  std::optional<uint64_t> Size() const override { return memory_.Size(); }

  std::vector<uint64_t> tails;  // lengths asked for

 private:
  MemorySource memory_;
};

// On a big input only the end is read: 1 MiB when the trailer is there, and
// never more than a trailer can span.
TEST(FindTrailerAtEndTest, ReadsOnlyTheEnd) {
  const std::string json = "{\"devices\":[]}";
  std::vector<uint8_t> input(40 << 20, 0x5a);
  std::vector<uint8_t> trailer = Trailer(json);
  input.insert(input.end(), trailer.begin(), trailer.end());
  TailLog source(input);
  absl::StatusOr<std::optional<FoundTrailer>> found = FindTrailerAtEnd(source, 0, 16 << 20);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->offset, input.size() - json.size() - 5);
  EXPECT_EQ((*found)->json, json);
  EXPECT_EQ(source.tails, std::vector<uint64_t>{kTrailerFirstProbeBytes});

  input.push_back('x');  // no trailer ends it now
  TailLog without(input);
  found = FindTrailerAtEnd(without, 100, 16 << 20);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_EQ(without.tails,
            (std::vector<uint64_t>{kTrailerFirstProbeBytes, TrailerReach(16 << 20)}));

  FdSource unknown_end(-1);  // the end is not known: the search refuses
  EXPECT_FALSE(FindTrailerAtEnd(unknown_end, 0, 100).ok());
}

}  // namespace
}  // namespace qmig
