// Finding the VMDESCRIPTION trailer at the end of a stream without parsing
// what comes before it: u8 0x00 (EOF), u8 0x06, be32 length, then exactly
// `length` bytes of JSON that end the input.
#ifndef QMIG_PARSER_TRAILER_H_
#define QMIG_PARSER_TRAILER_H_

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace qmig {

struct TrailerLocation {
  uint64_t offset;        // absolute offset of the 0x06 byte
  absl::string_view json; // a view into the searched bytes
};

// Searches `tail` (whose first byte is at absolute offset `base`) for a
// trailer that ends exactly at the end of `tail`, with at most `max_json`
// bytes of JSON.
std::optional<TrailerLocation> LocateTrailer(absl::Span<const uint8_t> tail, uint64_t base,
                                             uint64_t max_json);

}  // namespace qmig

#endif  // QMIG_PARSER_TRAILER_H_
