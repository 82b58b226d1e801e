// Internal to the parser: the state of one parse, shared by the files that
// implement ParseMigrationStream (stream_parser.cc, commands.cc, ram.cc,
// iterable_sections.cc, device_sections.cc).
#ifndef QMIG_PARSER_STREAM_PARSER_INTERNAL_H_
#define QMIG_PARSER_STREAM_PARSER_INTERNAL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "parser/parse_context.h"
#include "parser/stream_parser.h"
#include "parser/vmstate/description.h"
#include "parser/wire/profile.h"
#include "parser/wire/reader.h"

namespace qmig {
namespace internal {

enum class SectionKind : uint8_t { kRam, kDirtyBitmap, kBlock, kDevice };

struct SectionState {
  uint32_t id = 0;
  std::string idstr;
  uint32_t instance_id = 0;
  uint32_t version = 0;
  SectionKind kind = SectionKind::kDevice;
  bool iterative = false;  // opened by START
  bool ended = false;
};

// How a record loop ended.
enum class LoopEnd : uint8_t { kEof, kRun, kEndOfInput };

struct RamBlockState {
  size_t summary_index;  // into summary.ram_blocks
  uint64_t length;       // UINT64_MAX: unknown (a recovery connection)
  uint64_t page_size;
  // Target pages placed once postcopy listens, 64 to a word (page index / 64
  // -> bits): sparse, so memory follows the pages that arrive, not the
  // length MEM_SIZE claims.
  absl::flat_hash_map<uint64_t, uint64_t> postcopy_placed = {};
};

class StreamParser {
 public:
  StreamParser(ByteSource& source, const ParseOptions& options, ParseResult& result);
  void Run();

 private:
  // stream_parser.cc
  // A postcopy preempt channel: RAM records up to EOS or the end of input.
  absl::Status ParsePreemptChannel(Reader& reader);
  absl::Status ParseHeader(Reader& reader);
  absl::Status ParseConfiguration(Reader& reader);
  absl::Status ParseConfigurationSubsection(Reader& reader, const std::string& name,
                                            uint64_t offset);
  absl::StatusOr<LoopEnd> ParseRecords(Reader& reader);
  absl::Status ParseStartOrFull(Reader& reader, uint8_t type, uint64_t offset);
  absl::Status ParsePartOrEnd(Reader& reader, uint8_t type, uint64_t offset);
  absl::Status ParseSectionPayload(Reader& reader, SectionState& section, uint8_t type,
                                   uint64_t section_offset);
  absl::Status CheckFooter(Reader& reader, uint32_t section_id);
  // Reports, once, that sections past a limit are no longer remembered.
  void NoteUntrackedSection(uint64_t offset, std::string message);
  bool SectionIdInUse(uint32_t id) const {
    return sections_.count(id) > 0 || full_section_ids_.contains(id);
  }
  absl::Status ParseAfterEof(Reader& reader);
  void CheckEndOfStream(uint64_t offset);

  // commands.cc
  // Sets *quit when the command ends the record loop (RUN).
  absl::Status ParseCommand(Reader& reader, uint64_t offset, bool* quit);
  absl::Status ParseAdvise(Reader& payload, uint16_t length, uint64_t offset);
  absl::Status ParseRamDiscard(Reader& payload, uint16_t length, uint64_t offset);
  absl::Status ParsePackaged(Reader& reader, uint64_t offset);
  absl::Status ParseRecvBitmapCommand(Reader& payload, uint16_t length, uint64_t offset);

  // ram.cc
  absl::Status ParseRamPayload(Reader& reader);
  absl::Status ParseMemSize(Reader& reader, uint64_t total, uint64_t offset);
  // mapped-ram (9.0): the header that ends a block's MEM_SIZE entry, then the
  // block's bitmap and written pages at their file offsets; the reader ends
  // at the block's region's end, where the next entry is.
  absl::Status ParseMappedRamBlock(Reader& reader, RamBlockSummary& block);
  void ValidateXbzrle(absl::Span<const uint8_t> encoded, uint64_t offset, absl::string_view leaf);
  // Remembers a page placed once postcopy listens; reports one placed twice.
  void NotePostcopyPlacement(RamBlockState& block, absl::string_view block_name,
                             uint64_t address, uint64_t offset);
  void ValidateCompressed(absl::Span<const uint8_t> compressed, uint64_t offset,
                          absl::string_view leaf);
  RamBlockState* FindBlock(absl::string_view name);
  RamBlockState* AddBlockOfUnknownLength(const std::string& name);

  // iterable_sections.cc
  absl::Status ParseDirtyBitmapPayload(Reader& reader);
  absl::Status ParseBlockPayload(Reader& reader);

  // device_sections.cc
  absl::Status ParseDeviceBody(Reader& reader, const SectionState& section, uint64_t offset);
  // Whether the description in use has this device instance.
  absl::StatusOr<bool> DescribedDevice(Reader& reader, const SectionState& section);
  // The entry of `descriptions` for a device section: the nth section with a
  // name and instance takes the nth entry for them, later ones the last.
  // `consume` counts the section as taken.
  const DeviceDescription* DeviceEntry(const VmDescription& descriptions,
                                       const SectionState& section, bool consume);
  // The description in use: --schema, or the trailer, probed for at the
  // first device section. Fails when a pipe cannot reach the trailer.
  absl::StatusOr<const VmDescription*> DeviceDescriptions(Reader& reader);
  absl::Status ProbeTrailer(Reader& reader);
  absl::Status ProbeLiveTrailer(Reader& reader);
  void UseTrailer(uint64_t offset, absl::string_view json);
  // Narrows the profiles by what the stream's own description shows.
  void ObserveDescription(const VmDescription& description);
  absl::string_view NoDescriptionReason() const;
  absl::StatusOr<uint64_t> ScanForDeviceEnd(Reader& reader, uint32_t section_id);
  void CheckDumpedVersion(const VmDescription& dump, const SectionState& section, uint64_t offset);

  bool InPostcopyRamMode() const {
    return postcopy_ >= PostcopyState::kListening && postcopy_ < PostcopyState::kEnd;
  }
  void CountCommand(CommandKind kind);

  ByteSource& source_;
  const ParseOptions& options_;
  ParseResult& result_;
  StreamSummary& summary_;
  ParseContext context_;
  ProfileDetector profile_;

  bool has_configuration_ = false;
  // Which of timer and apic came first (true: apic): their order tells
  // 11.x apart, once both have come.
  std::optional<bool> first_of_timer_and_apic_;
  bool order_observed_ = false;
  bool ignore_shared_ = false;
  bool mapped_ram_ = false;  // the configuration lists the capability
  std::optional<bool> footers_;
  // START sections (and sections a recovery connection continues), at most
  // kMaxStartedSections; of FULL sections only the ids, at most
  // ParseLimits::max_section_ids. Either way memory stays bounded however
  // many sections a stream opens.
  std::map<uint32_t, SectionState> sections_;
  absl::flat_hash_set<uint32_t> full_section_ids_;
  bool untracked_section_noted_ = false;
  bool headerless_note_given_ = false;

  PostcopyState postcopy_ = PostcopyState::kNone;
  bool advise_with_ram_ = false;    // ADVISE carried the 16-byte RAM payload
  bool advise_without_ram_ = false;  // a 0-byte ADVISE: dirty-bitmap postcopy only
  bool unadvised_discard_reported_ = false;
  bool unadvised_page_reported_ = false;
  bool ram_section_seen_ = false;
  bool return_path_open_ = false;
  bool package_has_listen_ = false;  // in the innermost package being parsed

  absl::flat_hash_map<std::string, RamBlockState> ram_blocks_;
  bool ram_blocks_known_ = false;
  std::optional<std::string> last_ram_block_;
  // FindBlock(*last_ram_block_), valid while last_block_cached_.
  RamBlockState* last_block_state_ = nullptr;
  bool last_block_cached_ = false;

  uint64_t postcopy_tracked_words_ = 0;  // over all blocks' postcopy_placed

  // Sections taken so far per device instance described more than once,
  // keyed by its first entry: bounded by the description.
  absl::flat_hash_map<const DeviceDescription*, size_t> repeated_device_uses_;

  enum class TrailerProbe : uint8_t {
    kNotProbed,
    kFound,        // trailer_description_
    kInvalid,      // trailer_error_
    kNone,         // the input does not end with one
    kNotArrived,   // live: not while buffering (paused, or over the limit)
    kUndecidable,  // a pipe could not keep what comes before it
  };
  TrailerProbe trailer_probe_ = TrailerProbe::kNotProbed;
  absl::Status trailer_probe_failure_;  // kUndecidable: the reported failure
  // The probe's result, kept so that the trailer is parsed once: the
  // description, or why the JSON at trailer_offset_ did not parse.
  std::optional<VmDescription> trailer_description_;
  absl::Status trailer_error_;
  std::optional<uint64_t> trailer_offset_;   // offset of the 0x06 byte, when probed
};

}  // namespace internal
}  // namespace qmig

#endif  // QMIG_PARSER_STREAM_PARSER_INTERNAL_H_
