#include "parser/page_codec.h"

#include <zlib.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace qmig {
namespace {

// A count: one byte below 0x80, or two bytes (low 7 bits first). Two bytes
// must remain in the buffer even for a one-byte count, as QEMU requires.
bool ReadCount(absl::Span<const uint8_t> in, size_t& i, uint32_t& count) {
  if (in.size() - i < 2) return false;
  uint8_t first = in[i++];
  if ((first & 0x80) == 0) {
    count = first;
    return true;
  }
  uint8_t second = in[i++];
  if (second & 0x80) return false;
  count = (first & 0x7f) | uint32_t{second} << 7;
  return true;
}

}  // namespace

absl::Status DecodeXbzrle(absl::Span<const uint8_t> encoded, absl::Span<uint8_t> page,
                          size_t page_size, size_t* error_at) {
  size_t i = 0;
  size_t decoded = 0;
  auto fail = [&](size_t at, const char* why) {
    if (error_at != nullptr) *error_at = at;
    return absl::InvalidArgumentError(why);
  };
  while (i < encoded.size()) {
    uint32_t zero_run, literal_run;
    size_t at = i;
    if (!ReadCount(encoded, i, zero_run)) return fail(at, "bad zero-run count");
    if (at != 0 && zero_run == 0) return fail(at, "empty zero run after the first");
    decoded += zero_run;
    if (decoded > page_size) return fail(at, "zero run passes the page end");
    at = i;
    if (!ReadCount(encoded, i, literal_run) || literal_run == 0) {
      return fail(at, "bad literal-run count");
    }
    if (decoded + literal_run > page_size || i + literal_run > encoded.size()) {
      return fail(at, "literal run passes the page or buffer end");
    }
    if (!page.empty()) std::memcpy(page.data() + decoded, encoded.data() + i, literal_run);
    decoded += literal_run;
    i += literal_run;
  }
  return absl::OkStatus();
}

absl::Status InflatePage(absl::Span<const uint8_t> compressed, absl::Span<uint8_t> page) {
  uLongf out_length = page.size();
  uLong in_length = compressed.size();
  int rc = uncompress2(page.data(), &out_length, compressed.data(), &in_length);
  if (rc != Z_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("zlib data does not inflate to a page (zlib error ", rc, ")"));
  }
  if (out_length != page.size() || in_length != compressed.size()) {
    return absl::OutOfRangeError(absl::StrCat("zlib data inflates to ", out_length,
                                              " bytes using ", in_length, " of ",
                                              compressed.size(), "; a page is ", page.size()));
  }
  return absl::OkStatus();
}

}  // namespace qmig
