// Overflow-checked arithmetic for offsets and lengths read off the wire.
#ifndef QMIG_PARSER_WIRE_CHECKED_MATH_H_
#define QMIG_PARSER_WIRE_CHECKED_MATH_H_

#include <cstdint>
#include <optional>

namespace qmig {

// a + b, or nullopt when it does not fit in 64 bits.
inline std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  uint64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

// a * b, or nullopt when it does not fit in 64 bits.
inline std::optional<uint64_t> CheckedMul(uint64_t a, uint64_t b) {
  uint64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

// True when [start, start + length) lies inside [0, limit) without overflow.
inline bool RangeWithin(uint64_t start, uint64_t length, uint64_t limit) {
  std::optional<uint64_t> end = CheckedAdd(start, length);
  return end.has_value() && *end <= limit;
}

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_CHECKED_MATH_H_
