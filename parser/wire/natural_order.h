// Names in the order people read them: "mem2" before "mem10", "a[2]" before
// "a[10]". Runs of digits compare as numbers, everything else byte by byte.
#ifndef QMIG_PARSER_WIRE_NATURAL_ORDER_H_
#define QMIG_PARSER_WIRE_NATURAL_ORDER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace qmig {

// A strict weak order. Equal numbers with different leading zeros ("a01",
// "a1") are told apart by the length of their runs, so distinct names never
// compare equal.
inline bool NaturalLess(absl::string_view a, absl::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (absl::ascii_isdigit(a[i]) && absl::ascii_isdigit(b[j])) {
      size_t end_a = i, end_b = j;
      while (end_a < a.size() && absl::ascii_isdigit(a[end_a])) ++end_a;
      while (end_b < b.size() && absl::ascii_isdigit(b[end_b])) ++end_b;
      // Without leading zeros, a longer run is a larger number.
      absl::string_view run_a = a.substr(i, end_a - i), run_b = b.substr(j, end_b - j);
      while (run_a.size() > 1 && run_a[0] == '0') run_a.remove_prefix(1);
      while (run_b.size() > 1 && run_b[0] == '0') run_b.remove_prefix(1);
      if (run_a.size() != run_b.size()) return run_a.size() < run_b.size();
      if (run_a != run_b) return run_a < run_b;
      if (end_a - i != end_b - j) return end_a - i < end_b - j;
      i = end_a;
      j = end_b;
      continue;
    }
    if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

struct NaturalOrder {
  using is_transparent = void;
  bool operator()(absl::string_view a, absl::string_view b) const { return NaturalLess(a, b); }
};

// Counts by a name from the stream (a block, a section type), listed in
// natural order.
using NameCounts = std::map<std::string, uint64_t, NaturalOrder>;

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_NATURAL_ORDER_H_
