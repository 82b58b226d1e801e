// The postcopy preempt channel: with the postcopy-preempt capability, the
// source opens one more connection, with no header and no magic, and sends
// the pages the destination asked for on it, so that they overtake the
// background stream. It carries only postcopy RAM records (ZERO, PAGE, with
// CONTINUE relative to this channel's own last block), read by the stream
// parser's RAM loader with the rules of the main stream's postcopy RAM
// (ParseOptions::channel), as QEMU reads both. QEMU 7.2, and later ones
// for machine types up to 7.2, end it with EOS; 8.0 and later otherwise
// just close it.
#ifndef QMIG_PARSER_PREEMPT_CHANNEL_H_
#define QMIG_PARSER_PREEMPT_CHANNEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"
#include "parser/wire/natural_order.h"

namespace qmig {

struct PreemptChannelSummary {
  uint64_t pages = 0;
  uint64_t zero_pages = 0;
  NameCounts pages_by_block;
  bool eos_seen = false;
  uint64_t bytes = 0;
};

struct PreemptChannelOptions {
  ParseLimits limits;
  // RAMBlock lengths from the main stream, when known.
  NameCounts block_lengths;
  // A live connection: its source closes it only after the migration ends,
  // so nothing is read after EOS (a capture is checked for bytes after it).
  bool live = false;
  // Receives each page record (kZero with its fill byte, or kPage with 4 KiB)
  // as a view valid during the call.
  std::function<void(absl::string_view block, uint64_t offset, RamRecordKind kind,
                     absl::Span<const uint8_t> page, uint64_t stream_offset)>
      on_page;
};

struct PreemptChannelResult {
  PreemptChannelSummary summary;
  FindingList findings;
  bool valid() const { return findings.error_count() == 0; }
};

// Reads records up to EOS (bytes after it are an error) or to the end of
// input between two records.
PreemptChannelResult ParsePreemptChannel(ByteSource& source, const PreemptChannelOptions& options);

}  // namespace qmig

#endif  // QMIG_PARSER_PREEMPT_CHANNEL_H_
