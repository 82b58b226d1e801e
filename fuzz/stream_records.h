// A migration stream as a tree of records, for structure-aware fuzzing:
// DecodeRecords() frames any byte string (valid, broken or garbage) into
// records, and EncodeRecords() writes records back with parser/testing's
// StreamWriter.
//
// Contract: EncodeRecords(DecodeRecords(x)) == x, byte for byte, for every
// x. Every field is kept as read, declared lengths beside the bytes actually
// present, and whatever cannot be framed becomes an opaque record holding
// the rest of its scope. So decoding is canonical: decoding the re-encoded
// bytes gives equal records (//fuzz:roundtrip_fuzzer checks both).
//
// The framing is this file's own, tolerant and simpler than the parser's
// (which stops at the first broken frame and never guesses). Section
// payloads carry no length on the wire: a "ram" section's payload runs to
// its EOS record (found by walking RAM records); any other payload runs to
// the first footer naming the section's id, else to the next byte that
// plausibly starts a record, else to the end of its scope. A wrong guess
// only makes a mutation less precise; it never loses a byte.
#ifndef QMIG_FUZZ_STREAM_RECORDS_H_
#define QMIG_FUZZ_STREAM_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"

namespace qmig::fuzz {

enum class RecordKind : uint8_t {
  kHeader,         // magic, version (only first, and only when it reads "QEVM")
  kConfiguration,  // declared (be32 name length), payload = name, subsections
  kSection,        // type, section_id; START/FULL: idstr, instance, version; payload; footer
  kCommand,        // number, length (the be16 field), payload
  kPackaged,       // number 7 with length 4: declared (be32 blob length), children
  kEof,
  kVmDescription,  // declared (be32), payload = the JSON bytes present
  kOpaque,         // payload = raw bytes that did not frame
};

// A CONFIGURATION subsection: 0x05, counted name, be32 version, body.
struct Subsection {
  std::string name;
  uint32_t version = 0;
  std::vector<uint8_t> body;
};
bool operator==(const Subsection& a, const Subsection& b);

struct Record {
  RecordKind kind = RecordKind::kOpaque;
  uint8_t type = 0;                // kSection: START, PART, END or FULL
  uint32_t magic = 0;              // kHeader
  uint32_t version = 0;            // kHeader; kSection START/FULL
  uint32_t section_id = 0;         // kSection
  std::string idstr;               // kSection START/FULL (at most 255 bytes)
  uint32_t instance = 0;           // kSection START/FULL
  std::optional<uint32_t> footer;  // kSection: the id its footer names
  uint16_t number = 0;             // kCommand, kPackaged
  uint16_t length = 0;             // kCommand, kPackaged: the be16 length field
  uint32_t declared = 0;           // kConfiguration, kPackaged, kVmDescription
  std::vector<uint8_t> payload;
  std::vector<Subsection> subsections;  // kConfiguration
  std::vector<Record> children;         // kPackaged: the blob's records
  // Encode the length field from what is there (`length` of a command,
  // `declared` otherwise) rather than as stored. The decoder never sets it;
  // the mutator sets it on every length that was consistent, so that a
  // record that grows or shrinks keeps its package and itself framed.
  bool auto_length = false;
};
bool operator==(const Record& a, const Record& b);
inline bool operator!=(const Record& a, const Record& b) { return !(a == b); }

// The command number of PACKAGED in every profile qmig knows but the 2015
// draft; the decoder nests only this one.
inline constexpr uint16_t kPackagedNumber = 7;
// Packages nested deeper than this stay one opaque blob (bounds recursion).
inline constexpr int kMaxDecodeDepth = 8;

std::vector<Record> DecodeRecords(absl::Span<const uint8_t> bytes);
std::vector<uint8_t> EncodeRecords(const std::vector<Record>& records);

// The RAM records of a RAM section payload, walked leniently (MEM_SIZE's
// optional page-size field is taken when it looks like a huge page size).
// Returns the size of the payload up to and including EOS, or nullopt when
// the walk fails first; `words`, when given, receives the offset of each
// record's be64 flag word.
std::optional<size_t> WalkRamRecords(absl::Span<const uint8_t> payload,
                                     std::vector<size_t>* words = nullptr);

// One line per record, indented by depth, for debugging a mutator.
std::string DescribeRecords(const std::vector<Record>& records);

}  // namespace qmig::fuzz

#endif  // QMIG_FUZZ_STREAM_RECORDS_H_
