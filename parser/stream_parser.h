// The strict, streaming parser of a QEMU migration stream (the main channel).
//
// ParseMigrationStream() walks a ByteSource once, front to back, and reports
// every defect it can see as a Finding; the StreamSummary says what the
// stream holds. Memory stays bounded whatever the stream's size: RAM pages
// are validated and passed to the observer as borrowed views, never kept.
//
// Device sections carry no length on the wire. They are decoded with a
// vmstate description: ParseOptions::schema, or else the stream's own
// VMDESCRIPTION trailer (found up front in a file; on a pipe, the device
// state after RAM is buffered, within ParseLimits, until the trailer
// arrives). Without either, a device section is delimited by scanning for its
// footer or the next header, and reported as unverified.
#ifndef QMIG_PARSER_STREAM_PARSER_H_
#define QMIG_PARSER_STREAM_PARSER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/interpreter.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/profile.h"

namespace qmig {

enum class PostcopyState : uint8_t { kNone, kAdvise, kDiscard, kListening, kRunning, kEnd };
absl::string_view PostcopyStateName(PostcopyState state);

enum class RamRecordKind : uint8_t { kZero, kPage, kXbzrle, kCompressed };

enum class RamChannel : uint8_t { kMain, kPostcopyPreempt };

struct StreamSummary;

// Optional hooks for tools that want more than a verdict (dump, extract,
// replay). Views passed in are valid only during the call.
class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  // The file header and CONFIGURATION have been read; `summary` holds what
  // they say, and the first record starts at `end_offset`.
  virtual void OnHeader(const StreamSummary& summary, uint64_t end_offset) {}
  virtual void OnSection(uint8_t type, uint32_t section_id, absl::string_view idstr,
                         uint32_t instance_id, uint32_t version, uint64_t offset) {}
  virtual void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t> payload) {}
  // A section's payload and footer have been read whole.
  virtual void OnSectionEnd(uint32_t section_id, uint64_t end_offset) {}
  // A device section is about to be decoded with its description; the
  // returned visitor (if any) receives its fields.
  virtual VmstateFieldVisitor* OnDeviceDecode(const DeviceDescription& device) { return nullptr; }
  // A RAM page record. `page` holds the page's bytes for kPage, the fill
  // byte for kZero, and the encoded bytes for kXbzrle/kCompressed.
  virtual void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                         absl::Span<const uint8_t> page, uint64_t stream_offset) {}
  // Each block of a MEM_SIZE list, then the end of the list.
  virtual void OnRamBlock(absl::string_view block, uint64_t length, uint64_t page_size) {}
  virtual void OnRamBlockListEnd() {}
  // A PACKAGED blob's contents follow until OnPackageEnd.
  virtual void OnPackageBegin(uint64_t offset, uint32_t length) {}
  virtual void OnPackageEnd(uint64_t offset) {}
  // The outermost EOF record.
  virtual void OnEof(uint64_t offset) {}
  // The whole VMDESCRIPTION trailer: its 0x06 byte is at `offset`.
  virtual void OnTrailer(uint64_t offset, absl::string_view json) {}
};

struct ParseOptions {
  ParseLimits limits;
  // nullopt: detect the profile from the stream (QEMU 7.2 until evidence).
  std::optional<ProfileId> profile;
  // A vmstate description to decode device sections with (--schema).
  const VmDescription* schema = nullptr;
  StreamObserver* observer = nullptr;
  // The input is a live connection whose peer may wait for an answer before
  // it closes (a real migration source waits for the return path's SHUT):
  // never wait for the end of input, only for bytes that must come.
  bool live = false;
  // Which connection this is. A postcopy preempt channel has no header: it
  // is RAM records only, read by the same rules as the main stream's
  // postcopy RAM (QEMU reads both with one loader and a channel number),
  // each channel with its own CONTINUE state.
  RamChannel channel = RamChannel::kMain;
  // For a channel other than the main stream: the RAMBlocks the main stream
  // listed, by name, with their lengths (empty: not known).
  NameCounts channel_blocks;
};

// How long a live peer may stay quiet before optional bytes (a trailer)
// count as not coming.
inline constexpr absl::Duration kLiveIdle = absl::Seconds(1);

struct RamBlockSummary {
  std::string name;
  uint64_t length = 0;
  uint64_t page_size = 0;
  std::optional<uint64_t> guest_address;  // x-ignore-shared
  uint64_t zero_pages = 0;
  uint64_t normal_pages = 0;
  uint64_t xbzrle_pages = 0;
  uint64_t compressed_pages = 0;
  uint64_t nonzero_fill_pages = 0;
};

struct StreamSummary {
  std::string profile;
  bool profile_detected = false;                     // chosen by evidence, not by default
  std::vector<std::string> profile_evidence;         // what chose it
  std::vector<std::string> profile_also_consistent;  // other profiles the stream fits
  bool headerless = false;                           // a postcopy-recovery connection, or a channel
  bool ram_eos_seen = false;                         // the last RAM payload read ended with EOS
  uint32_t file_version = 0;
  std::optional<std::string> machine;
  std::vector<std::string> capabilities;
  std::optional<uint32_t> target_page_bits;
  std::optional<std::string> uuid;
  std::optional<bool> footers;  // nullopt: nothing showed either way
  NameCounts sections;          // by type name
  NameCounts commands;          // by command name
  std::vector<uint32_t> pings;  // values, first kMaxRecordedPings
  std::vector<RamBlockSummary> ram_blocks;
  uint64_t ram_records = 0;
  uint64_t packages = 0;
  uint64_t devices_decoded = 0;
  uint64_t devices_unverified = 0;
  uint64_t device_fields = 0;
  bool vmdesc_present = false;
  uint64_t vmdesc_bytes = 0;
  std::string device_description_source;  // "trailer", "schema" or "" (none)
  bool eof_seen = false;
  PostcopyState postcopy = PostcopyState::kNone;
  bool return_path_opened = false;
  NameCounts iterable_sections;  // dirty-bitmap, block, ...
  uint64_t bytes = 0;            // bytes consumed
};

struct ParseResult {
  StreamSummary summary;
  FindingList findings;
  bool valid() const { return findings.error_count() == 0; }
};

ParseResult ParseMigrationStream(ByteSource& source, const ParseOptions& options);

}  // namespace qmig

#endif  // QMIG_PARSER_STREAM_PARSER_H_
