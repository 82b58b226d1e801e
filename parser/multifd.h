// A multifd channel: one extra connection of a multifd migration. It opens
// with a 64-byte MultiFDInit, then carries packets. A RAM packet is a fixed
// 320-byte header, an offset table with room for a full packet (128 entries
// for 4 KiB pages, whatever the packet holds: QEMU reads a fixed length),
// then the normal pages; from 9.0, zero pages are offsets after the normal
// ones, with no data. A sync packet is a RAM packet without pages. From
// 10.0, a device-state packet (VFIO) carries an idstr, an instance and a
// payload. The channel ends with EOF between packets.
#ifndef QMIG_PARSER_MULTIFD_H_
#define QMIG_PARSER_MULTIFD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"
#include "parser/wire/natural_order.h"

namespace qmig {

struct MultifdSummary {
  uint8_t channel_id = 0;
  std::string uuid;
  uint64_t packets = 0;
  uint64_t sync_packets = 0;
  uint64_t pages = 0;       // normal pages, with data
  uint64_t zero_pages = 0;  // zero pages, offsets only (9.0 on)
  uint64_t device_state_packets = 0;
  NameCounts pages_by_block;  // normal and zero
  uint64_t bytes = 0;
};

struct MultifdOptions {
  ParseLimits limits;
  // RAMBlock lengths from the main stream, when known.
  NameCounts block_lengths;
  // Channels the destination expects, when known: ids must be below it.
  std::optional<uint32_t> channels;
  // Receives every uncompressed page (block, offset in block, 4 KiB), as a
  // view valid during the call; a zero page comes as 4 KiB of zeros.
  // Compressed packets are skipped.
  std::function<void(absl::string_view block, uint64_t offset, absl::Span<const uint8_t> page)>
      on_page;
};

struct MultifdResult {
  MultifdSummary summary;
  FindingList findings;
  bool valid() const { return findings.error_count() == 0; }
};

MultifdResult ParseMultifdChannel(ByteSource& source, const MultifdOptions& options);

// Size of a RAM packet's fixed header (the offset table follows it).
inline constexpr size_t kMultifdPacketHeaderSize = 320;
// Pages per packet: MULTIFD_PACKET_SIZE (512 KiB) / the 4 KiB target page.
inline constexpr uint32_t kMultifdPagesPerPacket = (512 * 1024) / 4096;

}  // namespace qmig

#endif  // QMIG_PARSER_MULTIFD_H_
