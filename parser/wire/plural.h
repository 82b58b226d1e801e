// Counts in messages read right: "1 byte", "2 bytes", "0 pages".
#ifndef QMIG_PARSER_WIRE_PLURAL_H_
#define QMIG_PARSER_WIRE_PLURAL_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qmig {

// `count` and `noun`, with an "s" unless `count` is 1. For nouns whose
// plural is not noun + "s", pass it.
inline std::string Counted(uint64_t count, absl::string_view noun, absl::string_view plural = {}) {
  if (count == 1) return absl::StrCat(count, " ", noun);
  if (!plural.empty()) return absl::StrCat(count, " ", plural);
  return absl::StrCat(count, " ", noun, "s");
}

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_PLURAL_H_
