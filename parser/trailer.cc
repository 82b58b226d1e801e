#include "parser/trailer.h"

#include "parser/wire/constants.h"

namespace qmig {

std::optional<TrailerLocation> LocateTrailer(absl::Span<const uint8_t> tail, uint64_t base,
                                             uint64_t max_json) {
  // QEMU's JSON is compact and ends with the closing brace of its object.
  if (tail.size() < 7 || tail.back() != '}') return std::nullopt;
  const size_t size = tail.size();
  // p is the position of the 0x06 byte; the JSON is tail[p + 5, size).
  size_t lowest = size - 7 > max_json ? size - 7 - max_json : 0;
  if (lowest == 0) lowest = 1;  // EOF must precede the 0x06
  for (size_t p = size - 7; p + 1 > lowest; --p) {
    if (tail[p] != static_cast<uint8_t>(SectionType::kVmDescription) || tail[p + 5] != '{' ||
        tail[p - 1] != static_cast<uint8_t>(SectionType::kEof)) {
      continue;
    }
    uint64_t length = uint64_t{tail[p + 1]} << 24 | uint64_t{tail[p + 2]} << 16 |
                      uint64_t{tail[p + 3]} << 8 | uint64_t{tail[p + 4]};
    if (length == size - p - 5) {
      return TrailerLocation{base + p, absl::string_view(reinterpret_cast<const char*>(&tail[p + 5]),
                                                         static_cast<size_t>(length))};
    }
  }
  return std::nullopt;
}

}  // namespace qmig
