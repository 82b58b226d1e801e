#include "tools/inspect/command_decode.h"

#include "absl/strings/str_cat.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "parser/wire/reader.h"

namespace qmig {

nlohmann::ordered_json DecodeCommandPayload(CommandKind kind, absl::Span<const uint8_t> payload) {
  MemorySource source(payload);
  Reader reader(&source, nullptr);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  switch (kind) {
    case CommandKind::kPing: {
      absl::StatusOr<uint32_t> value = reader.Be32();
      if (value.ok()) out["value"] = *value;
      break;
    }
    case CommandKind::kPostcopyAdvise: {
      absl::StatusOr<uint64_t> host_pages = reader.Be64();
      absl::StatusOr<uint64_t> target_page = host_pages.ok() ? reader.Be64() : host_pages;
      if (host_pages.ok() && target_page.ok()) {
        out["host_page_sizes"] = *host_pages;
        out["target_page_size"] = *target_page;
      }
      break;
    }
    case CommandKind::kPackaged: {
      absl::StatusOr<uint32_t> length = reader.Be32();
      if (length.ok()) out["length"] = *length;
      break;
    }
    case CommandKind::kRecvBitmap: {
      absl::StatusOr<std::string> block = reader.CountedString();
      if (block.ok()) out["block"] = EscapeName(*block);
      break;
    }
    case CommandKind::kPostcopyRamDiscard: {
      absl::StatusOr<uint8_t> version = reader.U8();
      absl::StatusOr<std::string> block =
          version.ok() ? reader.CountedString() : absl::StatusOr<std::string>(version.status());
      // The name is followed by a NUL byte before the (start, length) pairs.
      if (!block.ok() || !reader.U8().ok()) break;
      out["version"] = *version;
      out["block"] = EscapeName(*block);
      nlohmann::ordered_json ranges = nlohmann::ordered_json::array();
      uint64_t count = 0;
      uint64_t bytes = 0;
      while (true) {
        absl::StatusOr<uint64_t> start = reader.Be64();
        absl::StatusOr<uint64_t> length = start.ok() ? reader.Be64() : start;
        if (!length.ok()) break;
        ++count;
        bytes += *length;
        if (ranges.size() < kMaxShownDiscardRanges) ranges.push_back({*start, *length});
      }
      out["range_count"] = count;
      out["bytes"] = bytes;
      out["ranges"] = std::move(ranges);
      break;
    }
    default:
      break;
  }
  return out;
}

std::string DescribeCommandPayload(CommandKind kind, const nlohmann::ordered_json& decoded) {
  switch (kind) {
    case CommandKind::kPing:
      if (decoded.contains("value")) {
        uint32_t value = decoded["value"].get<uint32_t>();
        return value == kPingPackagedLoaded ? absl::StrCat("value=", value, " (package loaded)")
                                            : absl::StrCat("value=", value);
      }
      break;
    case CommandKind::kPostcopyAdvise:
      if (decoded.contains("target_page_size")) {
        return absl::StrCat("host page sizes 0x",
                            absl::Hex(decoded["host_page_sizes"].get<uint64_t>()),
                            ", target page size ", decoded["target_page_size"].get<uint64_t>());
      }
      return "no RAM postcopy (empty)";
    case CommandKind::kPackaged:
      if (decoded.contains("length")) return Counted(decoded["length"].get<uint64_t>(), "byte");
      break;
    case CommandKind::kRecvBitmap:
      if (decoded.contains("block")) return decoded["block"].get<std::string>();
      break;
    case CommandKind::kPostcopyRamDiscard:
      if (decoded.contains("block")) {
        const uint64_t ranges = decoded["range_count"].get<uint64_t>();
        const uint64_t pages = decoded["bytes"].get<uint64_t>() / kTargetPageSize;
        return absl::StrCat(decoded["block"].get<std::string>(), ": ", ranges,
                            ranges == 1 ? " range, " : " ranges, ", pages,
                            pages == 1 ? " page" : " pages");
      }
      break;
    default:
      break;
  }
  return "";
}

}  // namespace qmig
