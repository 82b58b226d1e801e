// Names carried by a stream (block names, section idstrs, the machine name,
// capability and subsection names, bitmap names) are bytes, not text. Every
// output shows them through EscapeName, so that text, JSON, HTML and the
// terminal all get the same printable form: printable ASCII stays, quotes and
// the backslash get a backslash, \n \r \t are written so, and every other
// byte is \xNN. The result is ASCII: valid UTF-8, with no control character
// and no escape sequence a terminal would act on.
#ifndef QMIG_PARSER_WIRE_ESCAPE_H_
#define QMIG_PARSER_WIRE_ESCAPE_H_

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

namespace qmig {

inline std::string EscapeName(absl::string_view bytes) { return absl::CHexEscape(bytes); }

// Whether `bytes` would come out of EscapeName unchanged.
inline bool IsPlainName(absl::string_view bytes) {
  for (char c : bytes) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '\\' || c == '"' || c == '\'') return false;
  }
  return true;
}

// Text that should already be printable (a finding's message and path,
// built with EscapeName) made sure of it at the output: bytes outside
// printable ASCII become \xNN, everything else stays as it is, so text that
// is already printable passes unchanged.
inline std::string PrintableText(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_ESCAPE_H_
