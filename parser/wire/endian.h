// Big-endian (network order) loads and stores, the byte order of every
// multi-byte field of a migration stream, its return path and multifd
// packets; plus the little-endian 64-bit word of a dirty bitmap.
//
// Contract: a Load reads exactly N bytes at `p`, a Store writes exactly N
// bytes at `p`, an Append pushes exactly N bytes onto `out`; the caller has
// checked that the bytes are there. Nothing is aligned, nothing allocates
// but Append, and the result does not depend on the host's byte order.
#ifndef QMIG_PARSER_WIRE_ENDIAN_H_
#define QMIG_PARSER_WIRE_ENDIAN_H_

#include <cstdint>
#include <vector>

namespace qmig {

constexpr uint16_t LoadBe16(const uint8_t* p) {
  return static_cast<uint16_t>(uint16_t{p[0]} << 8 | uint16_t{p[1]});
}
constexpr uint32_t LoadBe32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
constexpr uint64_t LoadBe64(const uint8_t* p) {
  return uint64_t{LoadBe32(p)} << 32 | LoadBe32(p + 4);
}
constexpr uint64_t LoadLe64(const uint8_t* p) {
  return uint64_t{p[0]} | uint64_t{p[1]} << 8 | uint64_t{p[2]} << 16 | uint64_t{p[3]} << 24 |
         uint64_t{p[4]} << 32 | uint64_t{p[5]} << 40 | uint64_t{p[6]} << 48 | uint64_t{p[7]} << 56;
}

constexpr void StoreBe16(uint8_t* p, uint16_t value) {
  p[0] = static_cast<uint8_t>(value >> 8);
  p[1] = static_cast<uint8_t>(value);
}
constexpr void StoreBe32(uint8_t* p, uint32_t value) {
  StoreBe16(p, static_cast<uint16_t>(value >> 16));
  StoreBe16(p + 2, static_cast<uint16_t>(value));
}
constexpr void StoreBe64(uint8_t* p, uint64_t value) {
  StoreBe32(p, static_cast<uint32_t>(value >> 32));
  StoreBe32(p + 4, static_cast<uint32_t>(value));
}
constexpr void StoreLe64(uint8_t* p, uint64_t value) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(value >> (8 * i));
}

inline void AppendBe16(std::vector<uint8_t>& out, uint16_t value) {
  uint8_t bytes[2];
  StoreBe16(bytes, value);
  for (uint8_t byte : bytes) out.push_back(byte);
}
inline void AppendBe32(std::vector<uint8_t>& out, uint32_t value) {
  uint8_t bytes[4];
  StoreBe32(bytes, value);
  for (uint8_t byte : bytes) out.push_back(byte);
}
inline void AppendBe64(std::vector<uint8_t>& out, uint64_t value) {
  uint8_t bytes[8];
  StoreBe64(bytes, value);
  for (uint8_t byte : bytes) out.push_back(byte);
}

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_ENDIAN_H_
