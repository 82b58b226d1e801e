// Findings: what qmig reports about a stream. Each has a stable code (part of
// the --json schema, see docs/FINDINGS.md), a severity, the absolute byte
// offset, the offset inside the innermost PACKAGED blob when there is one, a
// path ("PACKAGED@0x1f3a20 > FULL 'cpu' #0 > env.regs") and a message.
#ifndef QMIG_PARSER_WIRE_FINDING_H_
#define QMIG_PARSER_WIRE_FINDING_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/release.h"

namespace qmig {

enum class Severity : uint8_t { kNote, kWarning, kError };
absl::string_view SeverityName(Severity severity);

// X(enumerator, "stable.code", default severity, "what it means")
#define QMIG_FINDING_CODES(X)                                                                     \
  X(kIoError, "input.io_error", kError, "reading the input failed")                              \
  X(kUndecidable, "input.undecidable", kError, "a pipe cannot be read as a file would: more follows than qmig may keep") \
  X(kTruncated, "stream.truncated", kError, "the input ended inside a record")                   \
  X(kEmpty, "stream.empty", kError, "the input holds no bytes")                                  \
  X(kBadMagic, "header.bad_magic", kError, "the stream does not start with QEVM")                \
  X(kObsoleteVersion, "header.obsolete_version", kError, "file version 2 is obsolete")           \
  X(kBadVersion, "header.bad_version", kError, "unknown file version")                           \
  X(kConfigBadName, "config.bad_machine_name", kError, "machine name empty, too long or not text") \
  X(kConfigBadSubsection, "config.bad_subsection", kError, "unknown or malformed configuration subsection") \
  X(kConfigBadPageBits, "config.bad_target_page_bits", kError, "target page bits out of range")  \
  X(kConfigBadCapability, "config.bad_capability", kError, "unknown or malformed capability")    \
  X(kConfigMisplaced, "config.misplaced", kError, "CONFIGURATION anywhere but after the header") \
  X(kUnknownSectionType, "section.unknown_type", kError, "a record starts with an unknown byte")  \
  X(kBadIdstr, "section.bad_idstr", kError, "section name empty or holding a NUL")               \
  X(kDuplicateSectionId, "section.duplicate_id", kError, "a section id opened twice")            \
  X(kUnknownSectionId, "section.unknown_id", kError, "PART/END for a section id never started")  \
  X(kSectionAfterEnd, "section.after_end", kError, "PART/END after the section's END")           \
  X(kSectionNotEnded, "section.not_ended", kWarning, "a START section never got its END")        \
  X(kSectionUntracked, "section.untracked", kNote, "sections past the tracking limit go unchecked") \
  X(kFooterMissing, "section.footer_missing", kError, "no footer where footers are in use")      \
  X(kFooterMismatch, "section.footer_mismatch", kError, "footer names another section id")       \
  X(kFooterUnexpected, "section.footer_unexpected", kError, "a footer where footers are not in use") \
  X(kUnknownCommand, "cmd.unknown", kError, "command number unknown to the profile")             \
  X(kCommandLength, "cmd.bad_length", kError, "command length breaks its rule")                  \
  X(kCommandPayload, "cmd.bad_payload", kError, "command payload invalid")                       \
  X(kCommandState, "cmd.wrong_state", kError, "command not allowed in the current state")        \
  X(kPingNoReturnPath, "cmd.ping_without_return_path", kError, "PING before OPEN_RETURN_PATH")   \
  X(kDuplicateReturnPath, "cmd.return_path_reopened", kWarning, "OPEN_RETURN_PATH sent twice")   \
  X(kEnableColo, "cmd.enable_colo", kWarning, "ENABLE_COLO: the destination goes on into COLO, which qmig does not follow") \
  X(kDiscardRange, "cmd.discard_range", kError, "RAM_DISCARD range misaligned or outside its block") \
  X(kDiscardBlock, "cmd.discard_unknown_block", kError, "RAM_DISCARD names an unknown block")    \
  X(kForbiddenInPackage, "package.forbidden_command", kError, "command that reads the outer stream inside a package") \
  X(kPackageTooLarge, "package.too_large", kError, "package length over the limit")              \
  X(kPackageEndsMidRecord, "package.ends_mid_record", kError, "a record crosses the package end") \
  X(kPackageNoRun, "package.listen_without_run", kError, "package with LISTEN does not end with RUN") \
  X(kPackageBytesAfterRun, "package.bytes_after_run", kError, "bytes after RUN inside a package") \
  X(kPackageTooDeep, "package.too_deep", kError, "packages nested deeper than the limit")        \
  X(kPackageNoEnd, "package.unterminated", kError, "package ends without EOF or RUN")            \
  X(kPackageRamAfterListen, "package.ram_after_listen", kError, "RAM records in a package after LISTEN race the listen thread") \
  X(kRamBadFlags, "ram.bad_flags", kError, "unknown combination of RAM flags")                    \
  X(kRamBadContinue, "ram.bad_continue", kError, "CONTINUE without a previous block")            \
  X(kRamUnknownBlock, "ram.unknown_block", kError, "page for a block not in MEM_SIZE")           \
  X(kRamOffset, "ram.bad_offset", kError, "page offset outside its block")                       \
  X(kRamNonzeroOffset, "ram.nonzero_offset", kError, "offset bits set on a record without a page") \
  X(kRamZeroFill, "ram.nonzero_fill", kError, "zero page with a non-zero fill byte")             \
  X(kRamXbzrle, "ram.bad_xbzrle", kError, "XBZRLE page does not decode")                         \
  X(kRamCompress, "ram.bad_compressed_page", kError, "compressed page does not inflate to a page") \
  X(kRamMemSize, "ram.bad_mem_size", kError, "MEM_SIZE block list invalid")                      \
  X(kRamMappedRam, "ram.bad_mapped_ram", kError, "mapped-ram header, bitmap or page region invalid") \
  X(kRamPostcopyRecord, "ram.postcopy_record", kError, "record not allowed in postcopy")         \
  X(kRamPostcopyPageTwice, "ram.postcopy_page_twice", kError, "a page placed twice once postcopy listens") \
  X(kRamPostcopyUntracked, "ram.postcopy_untracked", kNote, "postcopy pages past the tracking limit go unchecked for repeats") \
  X(kRamVersion, "ram.bad_version", kError, "RAM section version is not 4")                      \
  X(kIterableUnverified, "section.unknown_iterable", kError, "iterable section whose payload format is unknown") \
  X(kIterablePayload, "section.bad_iterable_payload", kError, "dirty-bitmap or block payload invalid") \
  X(kTrailingBytes, "stream.trailing_bytes", kError, "bytes after the end of the stream")        \
  X(kVmdescTruncated, "vmdesc.truncated", kError, "VMDESCRIPTION shorter than its length")       \
  X(kVmdescTooLarge, "vmdesc.too_large", kError, "VMDESCRIPTION over the limit")                 \
  X(kVmdescBadJson, "vmdesc.bad_json", kError, "VMDESCRIPTION is not a valid description")       \
  X(kVmdescAbsent, "vmdesc.absent", kNote, "no VMDESCRIPTION trailer")                           \
  X(kVmdescRepeatedKey, "vmdesc.repeated_key", kWarning, "a description member given twice in one object (the last counts)") \
  X(kVmdescBadPageSize, "vmdesc.bad_page_size", kWarning, "the description's page_size is not a power of two") \
  X(kVmdescUnknownType, "vmdesc.unknown_type", kWarning, "a field type no QEMU writes")          \
  X(kVmdescRepeatedDevice, "vmdesc.repeated_device", kWarning, "a device instance described more than once") \
  X(kDeviceUnverified, "device.unverified", kWarning, "device section delimited by scanning, not decoded") \
  X(kDeviceUnframed, "device.unframed", kError, "no end of a device section found by scanning") \
  X(kDeviceNoDescription, "device.no_description", kWarning, "the description has no such device") \
  X(kDeviceLength, "device.bad_length", kError, "device state does not match its description")   \
  X(kDeviceVersion, "device.version_mismatch", kError, "section version differs from its description") \
  X(kDeviceValue, "device.bad_value", kError, "device field value invalid for its type")         \
  X(kDeviceSubsection, "device.bad_subsection", kError, "subsection missing or not the described one") \
  X(kSchemaInvalid, "schema.invalid", kError, "the vmstate description cannot be used")          \
  X(kRpBadType, "rp.bad_type", kError, "unknown return-path message")                            \
  X(kRpBadLength, "rp.bad_length", kError, "return-path message length breaks its rule")         \
  X(kRpBadPayload, "rp.bad_payload", kError, "return-path message payload invalid")              \
  X(kRpBitmap, "rp.bad_bitmap", kError, "received-bitmap blob invalid")                          \
  X(kMultifdBadInit, "multifd.bad_init", kError, "MultiFDInit invalid")                          \
  X(kMultifdBadPacket, "multifd.bad_packet", kError, "multifd packet header invalid")            \
  X(kMultifdPacketSize, "multifd.packet_size", kWarning, "next_packet_size does not match the packet's pages") \
  X(kPreemptBadRecord, "preempt.bad_record", kError, "postcopy preempt channel record invalid")  \
  X(kEmuUffdUnavailable, "emu.uffd_unavailable", kError, "userfaultfd cannot be used here")     \
  X(kEmuPlacementFailed, "emu.placement_failed", kError, "the kernel refused to place a page")   \
  X(kEmuPageConflict, "emu.page_conflict", kError, "a page placed twice with different content") \
  X(kEmuPageDoubled, "emu.page_doubled", kWarning, "a postcopy page sent twice")                 \
  X(kEmuPageNeverDelivered, "emu.page_never_delivered", kError, "a requested page never arrived (deadlock)") \
  X(kEmuPageLost, "emu.page_lost", kError, "a discarded page was never sent again")              \
  X(kEmuPageNeverSent, "emu.page_never_sent", kWarning, "pages of a block never arrived at all")  \
  X(kEmuMemoryMismatch, "emu.memory_mismatch", kError, "final memory differs from the source's")  \
  X(kEmuPongMismatch, "emu.pong_mismatch", kError, "PONGs differ from the PINGs or the recording") \
  X(kEmuSourceFailed, "emu.source_failed", kError, "the source stopped or failed")              \
  X(kEmuResidentLimit, "emu.resident_limit", kError, "guest memory would pass the resident limit; the destination stopped")

enum class FindingCode : uint16_t {
#define QMIG_FINDING_ENUM(name, code, severity, summary) name,
  QMIG_FINDING_CODES(QMIG_FINDING_ENUM)
#undef QMIG_FINDING_ENUM
};

// How many codes the table has; codes are 0 .. kFindingCodeCount - 1.
inline constexpr size_t kFindingCodeCount = 0
#define QMIG_FINDING_ONE(name, code, severity, summary) +1
    QMIG_FINDING_CODES(QMIG_FINDING_ONE)
#undef QMIG_FINDING_ONE
    ;

struct FindingInfo {
  FindingCode code;
  absl::string_view name;
  Severity severity;
  absl::string_view summary;
};

const FindingInfo& DescribeFinding(FindingCode code);
absl::Span<const FindingInfo> AllFindingInfos();

struct Finding {
  FindingCode code = FindingCode{};
  Severity severity = Severity::kError;
  uint64_t offset = 0;
  std::optional<uint64_t> package_offset;
  std::string path;
  std::string message;
  // The QEMU releases whose destination would load the stream regardless:
  // where qmig is stricter than QEMU on purpose.
  QemuReleases qemu_accepts;
};

// Collects findings. At most `max_kept` are stored; every one is counted,
// by severity and by code, whether it was stored or not. Errors are stored in
// preference to warnings and notes: when the list is full, a new error takes
// the place of the latest stored non-error, so that a flood of warnings
// cannot hide the error that follows it. Stored findings keep their order.
class FindingList {
 public:
  explicit FindingList(uint32_t max_kept = 1000) : max_kept_(max_kept) {}
  uint32_t max_kept() const { return max_kept_; }

  void Add(Finding finding);
  // Counts what `other` counted but did not store, as if those findings had
  // been added here and dropped (its stored ones are the caller's to Add).
  void AddUnstoredCountsOf(const FindingList& other);
  // Counts one finding that was not stored as of severity `to` instead of
  // `from`, for a caller that learnt later what it meant.
  void Recount(Severity from, Severity to);

  const std::vector<Finding>& findings() const { return findings_; }
  uint64_t error_count() const { return errors_; }
  uint64_t warning_count() const { return warnings_; }
  uint64_t note_count() const { return notes_; }
  // Findings counted but not stored (never kept, or evicted for an error).
  uint64_t dropped() const { return dropped_; }
  // Findings with this code, stored or not.
  uint64_t count(FindingCode code) const { return counts_[static_cast<size_t>(code)]; }
  bool HasCode(FindingCode code) const { return count(code) > 0; }

 private:
  void Count(FindingCode code, Severity severity, uint64_t n);
  uint64_t& SeverityCount(Severity severity);
  // Stores an error in a full list in place of the latest stored non-error;
  // false when every stored finding is an error.
  bool EvictForError(Finding& finding);

  uint32_t max_kept_;
  std::vector<Finding> findings_;
  uint64_t errors_ = 0;
  uint64_t warnings_ = 0;
  uint64_t notes_ = 0;
  uint64_t dropped_ = 0;
  std::array<uint64_t, kFindingCodeCount> counts_ = {};
  size_t stored_non_errors_ = 0;
  // Every stored finding at or after this index is an error. An eviction
  // searches backwards from here; it moves the errors after its victim down
  // by one. There are at most max_kept evictions, each moving fewer than
  // max_kept findings.
  size_t errors_from_ = 0;
};

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_FINDING_H_
