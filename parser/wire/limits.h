// Every limit qmig applies to a migration stream, and to what its tools keep
// of one or read beside it, in one place.
//
// A migration stream is hostile input: no length read off the wire is used to
// allocate or to skip before it is checked against one of these limits and
// against the bytes that can still arrive. The values that a user may raise
// live in `ParseLimits`; the rest are fixed by the protocol.
#ifndef QMIG_PARSER_WIRE_LIMITS_H_
#define QMIG_PARSER_WIRE_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace qmig {

// Fixed by the protocol.
inline constexpr size_t kMaxCountedString = 255;  // u8 length prefix.
inline constexpr size_t kTargetPageSize = 4096;   // x86 and the profiles qmig knows.
inline constexpr uint32_t kTargetPageBits = 12;
inline constexpr uint64_t kMaxHostPageSize = uint64_t{1} << 30;  // 1 GiB huge pages.
inline constexpr uint32_t kRamFlagBitsMask = 0xfff;  // flags live below the page offset.
inline constexpr size_t kMaxXbzrleEncoded = kTargetPageSize;
inline constexpr size_t kMaxCompressedPage = 4096 + 4096 / 1000 + 64;  // > compressBound(4096).
inline constexpr size_t kReturnPathMaxPayload = 512;
inline constexpr size_t kMultifdInitSize = 64;
inline constexpr size_t kMultifdRamblockNameSize = 256;
inline constexpr uint64_t kOriginalPackageLimit = uint64_t{1} << 24;  // 16 MiB, the 2015 design.
inline constexpr uint64_t kMaxPackageLimit = 0xffffffffu;             // QEMU >= 3.0 accepts this.
// QEMU refuses a dirty-bitmap chunk over ten times its 1 KiB chunk size.
inline constexpr uint64_t kMaxDirtyBitmapChunk = 10 * 1024;

// Sanity caps where QEMU has none (it allocates before reading).
inline constexpr uint32_t kMaxMachineNameLength = 255;
inline constexpr uint32_t kMaxConfigCapabilities = 64;
inline constexpr uint32_t kMaxRamBlocks = 4096;
inline constexpr uint64_t kMaxRamBlockLength = uint64_t{1} << 46;  // 64 TiB.
inline constexpr uint32_t kMaxSectionVersion = 0xffff;
inline constexpr size_t kMaxMultifdPagesPerPacket = 1024;
inline constexpr uint64_t kMaxRecvBitmapBytes = uint64_t{1} << 32;
// A mapped-ram block's bitmap of present pages, kept to find its pages: 16
// MiB covers a block of 512 GiB. Past it the block's pages go unread (a
// note says so); the file's layout is still checked.
inline constexpr uint64_t kMaxMappedRamBitmapBytes = uint64_t{16} << 20;
// The mapped-ram header version QEMU 9.0 to 11.1 write and read.
inline constexpr uint32_t kMappedRamVersion = 1;
inline constexpr size_t kMaxVmstateDepth = 32;     // nesting of structs/subsections.
inline constexpr int kMaxDescriptionNesting = 64;  // JSON arrays/objects in a description.
inline constexpr uint64_t kMaxDescribedArrayLength = uint64_t{1} << 24;  // elements of one array.

// QEMU's -dump-vmstate output (qmig compat), read whole into a JSON tree: the
// x86 binaries of QEMU 7.2 to 11.1 write 0.8 to 0.9 MiB.
inline constexpr uint64_t kMaxVmstateDumpBytes = uint64_t{16} << 20;

// Input buffering for non-seekable input: the window the reader keeps, and the
// longest contiguous view a decoder may ask for (bigger things are consumed in
// chunks).
inline constexpr size_t kStreamWindowBytes = size_t{1} << 20;
inline constexpr size_t kMaxContiguousView = size_t{256} << 10;
// How far behind the reader a mapped file's pages are dropped again.
inline constexpr size_t kMappedReleaseStep = size_t{8} << 20;
// The window a regular file is read through with pread(2).
inline constexpr size_t kFileWindowBytes = size_t{1} << 20;

// Limits a user may change. Defaults are strict; each is applied where it is
// used (max_package_bytes, for one, is capped there by the package limit of
// the active profile).
struct ParseLimits {
  // Largest PACKAGED blob. Default: the original 16 MiB; QEMU >= 3.0 accepts
  // up to 4 GiB - 1.
  uint64_t max_package_bytes = kOriginalPackageLimit;
  // PACKAGED inside PACKAGED is forbidden by the rules; the depth limit bounds
  // recursion even when a profile or a future rule would allow it.
  uint32_t max_package_depth = 2;
  // The VMDESCRIPTION JSON trailer.
  uint64_t max_vmdesc_bytes = uint64_t{16} << 20;
  // Device state kept in memory on non-seekable input until the trailer that
  // describes it arrives.
  uint64_t max_buffered_device_state = uint64_t{32} << 20;
  // A --schema file.
  uint64_t max_schema_file_bytes = uint64_t{64} << 20;
  // How far the unverified fallback scans for the end of a device section.
  uint64_t max_device_scan_bytes = uint64_t{16} << 20;
  // Guest RAM the emulator maps for a stream, all blocks together. Mappings
  // are reserved lazily, but the page-state map costs a byte per page.
  uint64_t max_guest_ram_bytes = uint64_t{64} << 30;
  // Pages placed after LISTEN that the parser remembers, to catch one placed
  // twice, in words of 64 pages: 2^20 words cover 256 GiB of guest RAM in
  // about 32 MiB. Past it, new pages go unchecked (a note says so).
  uint64_t max_postcopy_tracked_words = uint64_t{1} << 20;
  // Findings kept; further ones are counted, not stored.
  uint32_t max_findings = 1000;

  // Section ids of FULL sections remembered, to report one used twice or a
  // PART/END naming one: about 10 bytes each. QEMU keeps no set of ids, only
  // the last one per registered device, and a machine registers hundreds.
  // Past it a note says further ids go unchecked.
  uint64_t max_section_ids = uint64_t{1} << 16;
  // On non-seekable input, what follows the first device section once it
  // is over max_buffered_device_state: written to an unlinked temporary file
  // (disk, not memory) so that the trailer is read and the device sections
  // decoded as from a file. Past it, input.undecidable.
  uint64_t max_spilled_device_state = uint64_t{4} << 30;
};

// Per-stream bounds on what the parser keeps besides findings, and on what
// the emulator makes resident.
//
// START sections with their state (idstr, kind, version): QEMU sends one per
// iterative handler (ram, block, dirty-bitmap, a few devices). Past it a note
// says further ones are not followed.
inline constexpr uint32_t kMaxStartedSections = 4096;
// Oddities reported per VMDESCRIPTION (DescriptionWarning); past it one more
// warning says how many were left out.
inline constexpr size_t kMaxDescriptionWarnings = 64;
// QEMU 7.2's multifd zlib and zstd receivers read next_packet_size bytes into
// a buffer of twice the packet size (2 x 512 KiB), without checking.
inline constexpr uint64_t kMultifdCompressedBufferBytes = uint64_t{2} * 512 * 1024;
// Guest RAM the emulator may make resident (pages written or placed), when
// the caller sets no limit: half the machine's MemAvailable, within these
// bounds. Mappings are lazy, so this, not the guest RAM size, is what a
// stream of non-zero pages costs.
inline constexpr uint64_t kMinDefaultResidentGuestBytes = uint64_t{256} << 20;
inline constexpr uint64_t kMaxDefaultResidentGuestBytes = uint64_t{16} << 30;
// Device sections `diff` remembers as present but not decoded (no vmstate
// description), per stream; past it they are counted, not named.
inline constexpr size_t kMaxUndecodedDevicesNamed = 10000;

// Values kept for the summaries; past each, further ones are not kept.
//
// PING values of the main stream (StreamSummary::pings).
inline constexpr size_t kMaxRecordedPings = 64;
// PONG values and page requests of a return path (ReturnPathSummary); every
// page request is still counted (page_requests).
inline constexpr size_t kMaxRecordedPongs = 256;
inline constexpr size_t kMaxRecordedPageRequests = 100000;
// Pieces of evidence for the detected profile (ProfileDetector).
inline constexpr size_t kMaxProfileEvidence = 16;

// The emulator.
//
// Return-path bytes a replay keeps: far above any real one (a few KiB).
inline constexpr size_t kMaxReturnPathBytes = size_t{64} << 20;
// Differing pages CompareWithSource reports as findings (the default of its
// max_reports), and pages never delivered listed one by one before one more
// finding counts the rest: one finding per page would flood the report.
inline constexpr uint32_t kMaxSourceMismatchFindings = 20;
inline constexpr size_t kMaxNeverDeliveredListed = 20;
// A guest trace file (BLOCK OFFSET lines) is read whole into memory; and the
// guest threads a run may start.
inline constexpr size_t kMaxTraceEntries = 1 << 20;
inline constexpr uint32_t kMaxGuestThreads = 64;

// The tools: what qmig inspect, report, diff, compat, tap, loopback and
// qemu-verdict keep of a stream (or of what QEMU answers) to show it.
//
// qmig inspect. Ranges kept per block in one RAM section's record, and in all its blocks
// together.
inline constexpr size_t kMaxRangesPerSection = 1024;
inline constexpr size_t kMaxRangesPerSectionRecord = 16384;
// Device text held back so that its record line, which carries the size,
// can come first; beyond this the line comes first without the size.
inline constexpr size_t kMaxHeldDeviceText = size_t{1} << 20;
// Ranges shown per RAM_DISCARD; the rest are counted.
inline constexpr size_t kMaxShownDiscardRanges = 256;
// kText paths longer than this show their start and end around "...": a
// path repeats on every line of an array, so its length multiplies.
inline constexpr size_t kMaxShownPath = 1024;

// qmig report. Bounds on what the page is given, so it stays quick to load.
inline constexpr size_t kMaxReportRecords = 20000;
// Commands and packages kept past kMaxReportRecords, so that the map and its
// list still show them on a stream of many small sections.
inline constexpr size_t kMaxReportLateCommands = 10000;
inline constexpr size_t kMaxReportDevices = 20000;
// Field values listed per decoded device and in all devices together, and
// the characters of path and value text they may take in all; the rest of a
// device's values are counted (`values_dropped`).
inline constexpr size_t kMaxReportDeviceValues = 2000;
inline constexpr size_t kMaxReportValues = 20000;
inline constexpr size_t kMaxReportValueText = size_t{4} << 20;
// A longer value is cut to this many characters (its full length is given);
// a longer path keeps its first and last halves around "...".
inline constexpr size_t kMaxReportValueChars = 800;
inline constexpr size_t kMaxReportPathChars = 256;
// PINGs remembered with their offsets, to place the return path's PONGs.
inline constexpr size_t kMaxReportPings = 256;
inline constexpr size_t kMaxReportRanges = 4096;        // per block
inline constexpr size_t kMaxReportRangesTotal = 65536;  // in all blocks
// The page's timeline, bounded for the same reason.
inline constexpr size_t kMaxTimelinePages = 50000;
// Postcopy pages whose first send is remembered, to answer page requests.
inline constexpr size_t kMaxTimelineFirstSends = size_t{1} << 20;

// qmig diff, compat and tap. Differing ranges listed per block, and device fields listed in all.
inline constexpr size_t kMaxListedRanges = 64;
inline constexpr size_t kMaxListedFields = 1000;
// A device whose field lines are this long or shorter on both sides is
// compared as a set of paths (a path present on one side only shows as
// absent on the other); a longer one is compared line by line in wire order.
inline constexpr uint64_t kMaxSortedDeviceBytes = uint64_t{8} << 20;
// Distinct sections a stream may open before the rest are only counted.
inline constexpr size_t kMaxCompatSections = size_t{1} << 16;
// Findings kept for the verdict over all connections.
inline constexpr uint32_t kMaxTapFindings = 4000;

// qmig loopback and the verdicts of a real QEMU. Largest guest image qmig loopback accepts, to keep
// it a test tool.
inline constexpr uint64_t kMaxLoopbackImage = uint64_t{4} << 30;
// Largest QMP reply line accepted.
inline constexpr size_t kMaxQmpLine = size_t{1} << 20;
// Section names remembered for the machine's inference.
inline constexpr size_t kMaxFactNames = 4096;

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_LIMITS_H_
