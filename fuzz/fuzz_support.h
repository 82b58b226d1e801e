// Shared pieces of the fuzz targets in this directory: the fixed stream
// prefix that the package and RAM fuzzers put before their input, invariant
// checks that turn a silent contract breach into a crash the fuzzer reports,
// and an observer that touches every byte the parser lends out, so that
// AddressSanitizer checks each view it hands to tools.
//
// The prefix is written byte by byte here rather than with
// parser/testing's StreamWriter on purpose: fuzz inputs and committed
// reproducers depend on these exact bytes, so they must not move when the
// writer's defaults change.
#ifndef QMIG_FUZZ_FUZZ_SUPPORT_H_
#define QMIG_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/stream_parser.h"
#include "parser/wire/finding.h"

namespace qmig::fuzz {

// Big-endian appends to a byte vector.
class Bytes {
 public:
  Bytes& U8(uint8_t value);
  Bytes& Be16(uint16_t value);
  Bytes& Be32(uint32_t value);
  Bytes& Be64(uint64_t value);
  Bytes& Raw(absl::Span<const uint8_t> bytes);
  Bytes& Text(absl::string_view text);
  // u8 length + bytes.
  Bytes& Counted(absl::string_view text);
  std::vector<uint8_t>& vector() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// The RAM section the prefix opens, and its single block.
inline constexpr uint32_t kPrefixRamSectionId = 2;
inline constexpr absl::string_view kPrefixBlock = "pc.ram";
inline constexpr uint64_t kPrefixBlockLength = uint64_t{16} << 20;

// A valid QEMU 7.2 postcopy stream up to its first RAM section (command
// numbers of Debian QEMU 7.2, parser/wire/profile.cc):
//   "QEVM" be32 3; CONFIGURATION "pc-i440fx-7.2"; OPEN_RETURN_PATH; PING 1;
//   POSTCOPY_ADVISE (be64 0x1000, be64 0x1000);
//   START id 2 "ram" instance 0 version 4 { MEM_SIZE { "pc.ram" 16 MiB }, EOS }
//   footer 0x7e be32 2.
const std::vector<uint8_t>& PostcopyRamPrefix();

// Aborts with `what` when `condition` is false: a broken parser contract is
// a finding like a crash.
void Check(bool condition, absl::string_view what);

// Contracts every result must meet whatever the input: offsets of findings
// and consumed bytes lie within the input (`input_size`).
void CheckFindings(const FindingList& findings, uint64_t input_size);

// Reads every byte of each view the parser passes, so that a view past its
// buffer is an ASan report rather than a silent over-read.
class TouchingObserver final : public StreamObserver {
 public:
  void OnSection(uint8_t type, uint32_t section_id, absl::string_view idstr, uint32_t instance_id,
                 uint32_t version, uint64_t offset) override;
  void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t> payload) override;
  void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                 absl::Span<const uint8_t> page, uint64_t stream_offset) override;
  void OnRamBlock(absl::string_view block, uint64_t length, uint64_t page_size) override;

 private:
  uint64_t sum_ = 0;
};

// Parses `bytes` as a main stream with the observer above and checks the
// result's contracts. The options are the defaults a user gets.
void ParseAndCheck(absl::Span<const uint8_t> bytes);

// Reads every byte of `bytes`; returns something that depends on all of them.
uint64_t Touch(absl::Span<const uint8_t> bytes);
uint64_t Touch(absl::string_view text);

}  // namespace qmig::fuzz

#endif  // QMIG_FUZZ_FUZZ_SUPPORT_H_
