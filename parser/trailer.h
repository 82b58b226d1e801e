// Finding the VMDESCRIPTION trailer at the end of a stream without parsing
// what comes before it: u8 0x00 (EOF), u8 0x06, be32 length, then exactly
// `length` bytes of JSON that end the input.
#ifndef QMIG_PARSER_TRAILER_H_
#define QMIG_PARSER_TRAILER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/byte_source.h"

namespace qmig {

struct TrailerLocation {
  uint64_t offset;         // absolute offset of the 0x06 byte
  absl::string_view json;  // a view into the searched bytes
};

// Searches `tail` (whose first byte is at absolute offset `base`) for a
// trailer that ends exactly at the end of `tail`, with at most `max_json`
// bytes of JSON. Only the last `TrailerReach(max_json)` bytes of `tail` can
// hold one; the candidate nearest the end wins.
std::optional<TrailerLocation> LocateTrailer(absl::Span<const uint8_t> tail, uint64_t base,
                                             uint64_t max_json);

// The most bytes at the end of an input that a trailer with at most
// `max_json` bytes of JSON spans, with the EOF byte before it.
inline uint64_t TrailerReach(uint64_t max_json) { return max_json + 6; }

struct FoundTrailer {
  uint64_t offset;  // absolute offset of the 0x06 byte
  // The JSON, in `storage` or in the source's own memory: valid while this
  // lives and until the source is next called. Not copied, so that a large
  // description costs its bytes once.
  absl::string_view json;
  std::vector<uint8_t> storage;
};

// How much of the end of an input FindTrailerAtEnd reads first: QEMU's
// descriptions are some tens of KiB, so one small read settles most inputs.
inline constexpr uint64_t kTrailerFirstProbeBytes = uint64_t{1} << 20;

// LocateTrailer over the bytes of `source` from `from` to the end of input,
// which must be known (MakeEndKnown), with the same result as a search of all
// of them, reading only the end: the last `first_bytes`, and when no trailer
// ends there, the last TrailerReach(max_json). A candidate found in a shorter
// tail is the one nearest the end, which the whole search returns too.
absl::StatusOr<std::optional<FoundTrailer>> FindTrailerAtEnd(
    ByteSource& source, uint64_t from, uint64_t max_json,
    uint64_t first_bytes = kTrailerFirstProbeBytes);

}  // namespace qmig

#endif  // QMIG_PARSER_TRAILER_H_
