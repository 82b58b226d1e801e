#include "parser/multifd.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/parse_context.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "parser/wire/escape.h"
#include "parser/wire/reader.h"

namespace qmig {
namespace {

class MultifdParser {
 public:
  MultifdParser(ByteSource& source, const MultifdOptions& options, MultifdResult& result)
      : source_(source), options_(options), result_(result), context_(&result.findings) {}

  void Run() {
    Reader reader(&source_, &context_);
    absl::Status status = Init(reader);
    while (status.ok()) {
      absl::StatusOr<bool> at_end = reader.AtEnd();
      if (!at_end.ok()) {
        status = at_end.status();
        break;
      }
      if (*at_end) break;
      status = Packet(reader);
    }
    context_.ReportUnexplained(status, reader.offset());
    result_.summary.bytes = reader.offset();
  }

 private:
  absl::Status Init(Reader& reader) {
    PathScope scope(context_, "MultiFDInit");
    QMIG_ASSIGN_OR_RETURN(uint32_t magic, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
    if (magic != kMultifdMagic) {
      return context_.Fail(FindingCode::kMultifdBadInit, 0,
                           absl::StrFormat("magic 0x%08x (expected 0x%08x)", magic, kMultifdMagic));
    }
    if (version != kMultifdVersion) {
      return context_.Fail(FindingCode::kMultifdBadInit, 4,
                           absl::StrCat("version ", version, " (expected 1)"));
    }
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> uuid, reader.Bytes(16));
    for (size_t i = 0; i < uuid.size(); ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) result_.summary.uuid += '-';
      absl::StrAppendFormat(&result_.summary.uuid, "%02x", uuid[i]);
    }
    QMIG_ASSIGN_OR_RETURN(uint8_t id, reader.U8());
    result_.summary.channel_id = id;
    if (options_.channels.has_value() && id >= *options_.channels) {
      context_.Report(FindingCode::kMultifdBadInit, 24,
                      absl::StrCat("channel id ", id, " but only ", *options_.channels,
                                   " channels (QEMU checks id > channels: off by one)"),
                      {}, /*qemu_accepts=*/id == *options_.channels);
    }
    return reader.Skip(kMultifdInitSize - 25);
  }

  // A packet: a 12-byte header (magic, version, flags), then a RAM packet or
  // (10.0, flag DEVICE_STATE) a device-state packet.
  absl::Status Packet(Reader& reader) {
    uint64_t offset = reader.offset();
    PathScope scope(context_, absl::StrCat("packet@", HexOffset(offset)));
    QMIG_ASSIGN_OR_RETURN(uint32_t magic, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t flags, reader.Be32());
    if (magic != kMultifdMagic || version != kMultifdVersion) {
      return context_.Fail(FindingCode::kMultifdBadPacket, offset,
                           absl::StrFormat("packet magic 0x%08x version %u", magic, version));
    }
    if ((flags & ~(kMultifdFlagSync | kMultifdFlagCompressionMask | kMultifdFlagDeviceState)) !=
        0) {
      context_.Report(FindingCode::kMultifdBadPacket, offset + 8,
                      absl::StrFormat("unknown packet flags 0x%x", flags));
    }
    ++result_.summary.packets;
    if (flags & kMultifdFlagSync) ++result_.summary.sync_packets;
    if (flags & kMultifdFlagDeviceState) return DeviceStatePacket(reader, offset, flags);
    return RamPacket(reader, offset, flags);
  }

  // QEMU 10.0's device state (VFIO): idstr, instance, then a payload of
  // next_packet_size bytes that only the device reads.
  absl::Status DeviceStatePacket(Reader& reader, uint64_t offset, uint32_t flags) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> name_bytes,
                          reader.Bytes(kMultifdRamblockNameSize));
    QMIG_ASSIGN_OR_RETURN(uint32_t instance, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t payload, reader.Be32());
    ++result_.summary.device_state_packets;
    if (name_bytes.back() != 0) {
      return context_.Fail(FindingCode::kMultifdBadPacket, offset + 12,
                           "device state idstr is not NUL-terminated within 256 bytes");
    }
    if (flags & kMultifdFlagSync) {
      return context_.Fail(FindingCode::kMultifdBadPacket, offset + 8,
                           "a device state packet with the SYNC flag, which QEMU refuses");
    }
    if (payload == 0) {
      return context_.Fail(FindingCode::kMultifdBadPacket, offset + 272,
                           "an empty device state packet, which QEMU refuses");
    }
    (void)instance;
    return reader.Skip(payload);
  }

  // A RAM packet: the rest of a fixed 320-byte header, an offset table with
  // room for a full packet whatever it holds (QEMU reads a fixed length from
  // its own page size), normal page offsets first, then zero pages (9.0 on),
  // then the normal pages' data.
  absl::Status RamPacket(Reader& reader, uint64_t offset, uint32_t flags) {
    QMIG_ASSIGN_OR_RETURN(uint32_t pages_alloc, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t normal_pages, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint32_t next_packet_size, reader.Be32());
    QMIG_ASSIGN_OR_RETURN(uint64_t packet_num, reader.Be64());
    (void)packet_num;
    // Before 9.0 this word was unused and zero.
    QMIG_ASSIGN_OR_RETURN(uint32_t zero_pages, reader.Be32());
    QMIG_RETURN_IF_ERROR(reader.Skip(28));
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> name_bytes,
                          reader.Bytes(kMultifdRamblockNameSize));
    if (pages_alloc > kMultifdPagesPerPacket || normal_pages > pages_alloc ||
        zero_pages > pages_alloc - normal_pages) {
      return context_.Fail(
          FindingCode::kMultifdBadPacket, offset,
          absl::StrCat(normal_pages, " normal and ", zero_pages, " zero pages of ", pages_alloc,
                       " allocated; at most ", kMultifdPagesPerPacket));
    }
    const uint32_t compression = flags & kMultifdFlagCompressionMask;
    // QEMU terminates the name at its last byte whatever the sender wrote.
    size_t name_length = 0;
    while (name_length + 1 < name_bytes.size() && name_bytes[name_length] != 0) ++name_length;
    std::string block(name_bytes.begin(), name_bytes.begin() + name_length);
    const uint64_t table_offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> table,
                          reader.Bytes(8 * size_t{kMultifdPagesPerPacket}));
    const uint32_t pages = normal_pages + zero_pages;
    std::vector<uint64_t> offsets;  // at most kMultifdPagesPerPacket
    offsets.reserve(pages);
    for (uint32_t i = 0; i < pages; ++i) offsets.push_back(LoadBe64(&table[8 * i]));
    auto it = options_.block_lengths.find(block);
    if (pages > 0) {
      if (it == options_.block_lengths.end() && !options_.block_lengths.empty()) {
        return context_.Fail(
            FindingCode::kMultifdBadPacket, offset + 64,
            absl::StrCat("unknown RAM block '", EscapeName(block), "' (QEMU: unknown ram block)"));
      }
      for (uint32_t i = 0; i < pages; ++i) {
        const uint64_t page = offsets[i];
        const bool past = it != options_.block_lengths.end() &&
                          (it->second < kTargetPageSize || page > it->second - kTargetPageSize);
        if (past) {
          return context_.Fail(FindingCode::kMultifdBadPacket, table_offset + 8 * i,
                               absl::StrFormat("page offset 0x%x past block '%s' (QEMU: offset "
                                               "too long)",
                                               page, EscapeName(block)));
        }
        if (page % kTargetPageSize != 0) {
          context_.Report(FindingCode::kMultifdBadPacket, table_offset + 8 * i,
                          absl::StrFormat("page offset 0x%x of block '%s' is not page-aligned",
                                          page, EscapeName(block)),
                          {}, /*qemu_accepts=*/true);  // QEMU does not look
        }
      }
      result_.summary.pages += normal_pages;
      result_.summary.zero_pages += zero_pages;
      result_.summary.pages_by_block[block] += pages;
      if (options_.on_page) {
        static const uint8_t kZeroPage[kTargetPageSize] = {};
        for (uint32_t i = normal_pages; i < pages; ++i) {
          options_.on_page(block, offsets[i], absl::MakeConstSpan(kZeroPage));
        }
      }
    }
    // Data follows only a packet with normal pages; the size field of one
    // without is left over from an earlier packet (8.1 and before).
    if (normal_pages == 0) return absl::OkStatus();
    if (compression == 0) {
      // The receiver reads normal_pages pages and never looks at the size.
      const uint64_t expected = uint64_t{normal_pages} * kTargetPageSize;
      if (next_packet_size != expected) {
        context_.Report(FindingCode::kMultifdPacketSize, offset + 20,
                        absl::StrCat("next_packet_size ", next_packet_size, " but ", normal_pages,
                                     " pages take ", expected, " bytes; QEMU reads the pages"),
                        {}, /*qemu_accepts=*/true);
      }
      if (!options_.on_page) return reader.Skip(expected);
      for (uint32_t i = 0; i < normal_pages; ++i) {
        QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> page, reader.Bytes(kTargetPageSize));
        options_.on_page(block, offsets[i], page);
      }
      return absl::OkStatus();
    }
    // zlib and zstd: next_packet_size bytes of compressed pages, read into
    // a buffer of kMultifdCompressedBufferBytes without a check.
    if (next_packet_size == 0 || next_packet_size > kMultifdCompressedBufferBytes) {
      return context_.Fail(
          FindingCode::kMultifdBadPacket, offset + 20,
          absl::StrCat("compressed packet of ", next_packet_size, " bytes for ", normal_pages,
                       " pages; QEMU 7.2 reads at most ", kMultifdCompressedBufferBytes,
                       " (and overruns its buffer "
                       "beyond), and no pages inflate from nothing"));
    }
    return reader.Skip(next_packet_size);
  }

  ByteSource& source_;
  const MultifdOptions& options_;
  MultifdResult& result_;
  ParseContext context_;
};

}  // namespace

MultifdResult ParseMultifdChannel(ByteSource& source, const MultifdOptions& options) {
  MultifdResult result{MultifdSummary{}, FindingList(options.limits.max_findings)};
  MultifdParser parser(source, options, result);
  parser.Run();
  return result;
}

}  // namespace qmig
