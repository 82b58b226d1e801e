// Framing of the two iterable sections besides RAM whose payloads delimit
// themselves: "dirty-bitmap" (persistent dirty bitmaps) and "block" (old
// block migration carrying disk contents).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/stream_parser_internal.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace internal {
namespace {

namespace dirty_bitmap_flag {
constexpr uint32_t kEos = 0x01;
constexpr uint32_t kZeroes = 0x02;
constexpr uint32_t kBitmapName = 0x04;
constexpr uint32_t kDeviceName = 0x08;
constexpr uint32_t kStart = 0x10;
constexpr uint32_t kComplete = 0x20;
constexpr uint32_t kBits = 0x40;
constexpr uint32_t kExtraFlags = 0x80;
constexpr uint32_t kKnown = 0x7f;
constexpr uint8_t kStartReservedMask = 0xf8;
}  // namespace dirty_bitmap_flag

namespace block_flag {
constexpr uint32_t kDeviceBlock = 0x01;
constexpr uint32_t kEos = 0x02;
constexpr uint32_t kProgress = 0x04;
constexpr uint32_t kZeroBlock = 0x08;
constexpr uint32_t kKnown = 0x0f;
}  // namespace block_flag

constexpr uint64_t kBlockSectorMask = 511;
constexpr uint64_t kBlockMigrationChunk = uint64_t{1} << 20;

}  // namespace

absl::Status StreamParser::ParseDirtyBitmapPayload(Reader& reader) {
  namespace f = dirty_bitmap_flag;
  while (true) {
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint8_t first, reader.U8());
    uint32_t flags = first;
    if (flags & f::kExtraFlags) {
      // Wider flag words exist in the format but no QEMU sends them.
      return context_.Fail(FindingCode::kIterablePayload, offset,
                           "dirty-bitmap extra flag bytes are not sent by any QEMU");
    }
    if (flags & ~f::kKnown) {
      return context_.Fail(FindingCode::kIterablePayload, offset,
                           absl::StrFormat("unknown dirty-bitmap flags 0x%02x", flags));
    }
    if (flags & f::kDeviceName) {
      QMIG_ASSIGN_OR_RETURN(std::string node, reader.CountedString());
      if (node.empty()) {
        return context_.Fail(FindingCode::kIterablePayload, offset, "empty dirty-bitmap node name");
      }
    }
    if (flags & f::kBitmapName) {
      QMIG_ASSIGN_OR_RETURN(std::string bitmap, reader.CountedString());
      if (bitmap.empty()) {
        return context_.Fail(FindingCode::kIterablePayload, offset, "empty dirty-bitmap name");
      }
    }
    if (flags & f::kStart) {
      QMIG_ASSIGN_OR_RETURN(uint32_t granularity, reader.Be32());
      QMIG_ASSIGN_OR_RETURN(uint8_t start_flags, reader.U8());
      (void)granularity;
      if (start_flags & f::kStartReservedMask) {
        context_.Report(
            FindingCode::kIterablePayload, offset,
            absl::StrFormat("dirty-bitmap START flags 0x%02x use reserved bits", start_flags));
      }
    } else if (flags & f::kComplete) {
      // No payload.
    } else if (flags & f::kBits) {
      QMIG_ASSIGN_OR_RETURN(uint64_t first_sector, reader.Be64());
      QMIG_ASSIGN_OR_RETURN(uint32_t sectors, reader.Be32());
      (void)first_sector;
      (void)sectors;
      if (!(flags & f::kZeroes)) {
        QMIG_ASSIGN_OR_RETURN(uint64_t size, reader.Be64());
        if (size > kMaxDirtyBitmapChunk) {
          return context_.Fail(
              FindingCode::kIterablePayload, offset,
              absl::StrCat("dirty-bitmap chunk of ", size, " bytes; QEMU refuses more than ",
                           kMaxDirtyBitmapChunk));
        }
        QMIG_RETURN_IF_ERROR(reader.Skip(size));
      }
    }
    if (flags & f::kEos) return absl::OkStatus();
  }
}

absl::Status StreamParser::ParseBlockPayload(Reader& reader) {
  namespace f = block_flag;
  while (true) {
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint64_t word, reader.Be64());
    uint32_t flags = static_cast<uint32_t>(word & kBlockSectorMask);
    if (flags & ~f::kKnown) {
      return context_.Fail(FindingCode::kIterablePayload, offset,
                           absl::StrFormat("unknown block-migration flags 0x%x", flags));
    }
    if (flags & f::kDeviceBlock) {
      QMIG_ASSIGN_OR_RETURN(std::string device, reader.CountedString());
      if (device.empty()) {
        return context_.Fail(FindingCode::kIterablePayload, offset,
                             "block-migration chunk with an empty device name");
      }
      if (!(flags & f::kZeroBlock)) QMIG_RETURN_IF_ERROR(reader.Skip(kBlockMigrationChunk));
    } else if (!(flags & (f::kProgress | f::kEos))) {
      return context_.Fail(FindingCode::kIterablePayload, offset,
                           absl::StrFormat("block-migration record 0x%x carries nothing", flags));
    }
    if (flags & f::kEos) return absl::OkStatus();
  }
}

}  // namespace internal
}  // namespace qmig
