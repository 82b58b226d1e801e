// ParseBoundedJson: nlohmann::json's DOM parser with a nesting limit that is
// enforced while parsing. The parser itself is iterative, but everything that
// walks the tree afterwards recurses per level, so hostile JSON must not nest
// deeper than the caller can walk. Checking during the one parse spares a
// separate pass over the text.
//
// Also the error statuses every bounded JSON parse in qmig reports, so that
// a DOM parse and a SAX parse (description.cc) word them alike.
//
// Never throws: errors come back as a status naming the byte offset.
#ifndef QMIG_PARSER_VMSTATE_BOUNDED_JSON_H_
#define QMIG_PARSER_VMSTATE_BOUNDED_JSON_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "parser/wire/escape.h"

namespace qmig {

// The status for a syntax error nlohmann reports at `position` (one past the
// offending byte), with its message stripped of the exception tag. The
// message quotes the input it stopped at ("last read: '...'"), which may be
// any bytes: those outside printable ASCII are escaped as EscapeName does.
inline absl::Status JsonSyntaxError(std::size_t position, absl::string_view what) {
  // what() reads "[json.exception.parse_error.101] parse error at ...".
  const size_t tag_end = what.find("] ");
  if (tag_end != absl::string_view::npos) what.remove_prefix(tag_end + 2);
  std::string text;
  for (size_t i = 0; i < what.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(what[i]);
    if (c >= 0x20 && c <= 0x7e) {
      text.push_back(what[i]);
    } else {
      text += EscapeName(what.substr(i, 1));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("not valid JSON (byte ", position > 0 ? position - 1 : 0, "): ", text));
}

inline absl::Status JsonNestingError(int max_depth) {
  return absl::InvalidArgumentError(
      absl::StrCat("JSON nests deeper than the limit of ", max_depth, " levels"));
}

namespace bounded_json_internal {

// SAX events to nlohmann's own DOM builder, refusing to open a container
// beyond max_depth levels. The builder sits in nlohmann's detail namespace
// (there since 3.2; Debian 12 has 3.11.2): reusing it keeps the DOM exactly
// what Json::parse makes.
template <typename Json>
class DepthLimitedDom {
 public:
  using number_integer_t = typename Json::number_integer_t;
  using number_unsigned_t = typename Json::number_unsigned_t;
  using number_float_t = typename Json::number_float_t;
  using string_t = typename Json::string_t;
  using binary_t = typename Json::binary_t;

  DepthLimitedDom(Json& root, int max_depth)
      : dom_(root, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return dom_.null(); }
  bool boolean(bool value) { return dom_.boolean(value); }
  bool number_integer(number_integer_t value) { return dom_.number_integer(value); }
  bool number_unsigned(number_unsigned_t value) { return dom_.number_unsigned(value); }
  bool number_float(number_float_t value, const string_t& text) {
    return dom_.number_float(value, text);
  }
  bool string(string_t& value) { return dom_.string(value); }
  bool binary(binary_t& value) { return dom_.binary(value); }
  bool key(string_t& value) { return dom_.key(value); }
  bool start_object(std::size_t length) { return Open() && dom_.start_object(length); }
  bool end_object() { return Close() && dom_.end_object(); }
  bool start_array(std::size_t length) { return Open() && dom_.start_array(length); }
  bool end_array() { return Close() && dom_.end_array(); }

  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& /*token*/, const Exception& error) {
    error_ = JsonSyntaxError(position, error.what());
    return false;
  }

  const absl::Status& error() const { return error_; }

 private:
  bool Open() {
    if (++depth_ <= max_depth_) return true;
    error_ = JsonNestingError(max_depth_);
    return false;
  }
  bool Close() {
    --depth_;
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  const int max_depth_;
  int depth_ = 0;
  absl::Status error_;
};

}  // namespace bounded_json_internal

// Parses `text` into `out` (Json is nlohmann::json or nlohmann::ordered_json).
// On error `out` is left unspecified.
template <typename Json>
absl::Status ParseBoundedJson(absl::string_view text, int max_depth, Json& out) {
  bounded_json_internal::DepthLimitedDom<Json> sax(out, max_depth);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &sax);
  if (ok) return absl::OkStatus();
  if (!sax.error().ok()) return sax.error();
  return absl::InvalidArgumentError("not valid JSON");
}

}  // namespace qmig

#endif  // QMIG_PARSER_VMSTATE_BOUNDED_JSON_H_
