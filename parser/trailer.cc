#include "parser/trailer.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig {

std::optional<TrailerLocation> LocateTrailer(absl::Span<const uint8_t> tail, uint64_t base,
                                             uint64_t max_json) {
  // QEMU's JSON is compact and ends with the closing brace of its object.
  if (tail.size() < 7 || tail.back() != '}') return std::nullopt;
  const uint8_t* const bytes = tail.data();
  const size_t size = tail.size();
  // p is the position of the 0x06 byte; the JSON is bytes[p + 5, size).
  // length = size - p - 5 <= max_json.
  size_t lowest = size - 5 > max_json ? size - 5 - max_json : 0;
  if (lowest == 0) lowest = 1;  // EOF must precede the 0x06
  // memrchr visits the candidates: whole-stream inputs are scanned here on
  // every parse, and a byte loop costs a coverage callback per byte under
  // the fuzzers.
  size_t end = size - 6;  // one past the highest candidate
  while (end > lowest) {
    const void* found =
        memrchr(bytes + lowest, static_cast<uint8_t>(SectionType::kVmDescription), end - lowest);
    if (found == nullptr) break;
    const size_t p = static_cast<size_t>(static_cast<const uint8_t*>(found) - bytes);
    end = p;
    if (bytes[p + 5] != '{' || bytes[p - 1] != static_cast<uint8_t>(SectionType::kEof)) continue;
    const uint64_t length = LoadBe32(bytes + p + 1);
    if (length == size - p - 5) {
      return TrailerLocation{base + p,
                             absl::string_view(reinterpret_cast<const char*>(bytes + p + 5),
                                               static_cast<size_t>(length))};
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<FoundTrailer>> FindTrailerAtEnd(ByteSource& source, uint64_t from,
                                                             uint64_t max_json,
                                                             uint64_t first_bytes) {
  std::optional<uint64_t> end = source.Size();
  if (!end.has_value()) {
    return absl::FailedPreconditionError("a trailer search needs the end of input known");
  }
  if (from >= *end) return std::optional<FoundTrailer>();
  const uint64_t rest = *end - from;
  const uint64_t reach = std::min(rest, TrailerReach(max_json));
  std::vector<uint8_t> storage;
  for (uint64_t length : {std::min(first_bytes, reach), reach}) {
    absl::StatusOr<absl::Span<const uint8_t>> tail = source.Tail(*end - length, &storage);
    if (!tail.ok()) return tail.status();
    std::optional<TrailerLocation> location = LocateTrailer(*tail, *end - length, max_json);
    if (location.has_value()) {
      // A vector's buffer moves with it: the view stays valid.
      return std::optional<FoundTrailer>(
          FoundTrailer{location->offset, location->json, std::move(storage)});
    }
    if (length == reach) break;  // that was all of it
  }
  return std::optional<FoundTrailer>();
}

}  // namespace qmig
