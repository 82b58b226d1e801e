// Page encodings of the RAM section that carry more than raw bytes: XBZRLE
// deltas and zlib-compressed pages. Used to validate them while parsing and
// to apply them to a page in the emulator.
#ifndef QMIG_PARSER_PAGE_CODEC_H_
#define QMIG_PARSER_PAGE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace qmig {

// Decodes an XBZRLE delta: pairs of (zero run, literal run), each count a
// ULEB128 of at most two bytes. Zero runs leave the page unchanged; literal
// runs overwrite it. With an empty `page` it only validates. On failure,
// `*error_at` is the offset in `encoded` where decoding failed.
absl::Status DecodeXbzrle(absl::Span<const uint8_t> encoded, absl::Span<uint8_t> page,
                          size_t page_size, size_t* error_at);

// Inflates a zlib stream that must be exactly one page and use all its
// input. `page` must be page_size bytes.
absl::Status InflatePage(absl::Span<const uint8_t> compressed, absl::Span<uint8_t> page);

}  // namespace qmig

#endif  // QMIG_PARSER_PAGE_CODEC_H_
