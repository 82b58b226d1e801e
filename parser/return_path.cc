#include "parser/return_path.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/parse_context.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/reader.h"

namespace qmig {
namespace {

// Fixed payload length per message type; -1 when variable.
int FixedLength(uint16_t type) {
  switch (static_cast<ReturnPathType>(type)) {
    case ReturnPathType::kShut:
    case ReturnPathType::kPong:
    case ReturnPathType::kResumeAck:
      return 4;
    case ReturnPathType::kReqPages:
      return 12;
    case ReturnPathType::kSwitchoverAck:
      return 0;
    default:
      return -1;
  }
}

class ReturnPathParser {
 public:
  ReturnPathParser(ByteSource& source, const ReturnPathOptions& options, ReturnPathResult& result)
      : source_(source), options_(options), result_(result), context_(&result.findings) {}

  void Run() {
    Reader reader(&source_, &context_);
    while (true) {
      absl::StatusOr<bool> at_end = reader.AtEnd();
      if (!at_end.ok()) {
        context_.ReportUnexplained(at_end.status(), reader.offset());
        break;
      }
      if (*at_end) break;
      absl::Status status = Message(reader);
      if (!status.ok()) {
        context_.ReportUnexplained(status, reader.offset());
        break;
      }
    }
    result_.summary.bytes = reader.offset();
  }

 private:
  absl::Status Message(Reader& reader) {
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint16_t type, reader.Be16());
    QMIG_ASSIGN_OR_RETURN(uint16_t length, reader.Be16());
    absl::string_view name = ReturnPathTypeName(type);
    PathScope scope(context_, absl::StrCat(name, "@", HexOffset(offset)));
    if (type == 0 || type >= kReturnPathTypeCount) {
      return context_.Fail(FindingCode::kRpBadType, offset,
                           absl::StrCat("return-path message type ", type, " is unknown"));
    }
    ++result_.summary.messages[std::string(name)];
    if (shut_seen_) {
      context_.Report(FindingCode::kRpBadPayload, offset, "message after SHUT");
    }
    int fixed = FixedLength(type);
    if ((fixed >= 0 && length != fixed) || length > kReturnPathMaxPayload) {
      return context_.Fail(FindingCode::kRpBadLength, offset,
                           absl::StrCat(name, " length ", length, fixed >= 0
                                                                      ? absl::StrCat(" (must be ", fixed, ")")
                                                                      : " (over 512)"));
    }
    QMIG_ASSIGN_OR_RETURN(Reader payload, reader.Sub(length, kReturnPathLimitName));
    switch (static_cast<ReturnPathType>(type)) {
      case ReturnPathType::kShut: {
        QMIG_ASSIGN_OR_RETURN(uint32_t status, payload.Be32());
        result_.summary.shut_status = status;
        shut_seen_ = true;
        break;
      }
      case ReturnPathType::kPong: {
        QMIG_ASSIGN_OR_RETURN(uint32_t value, payload.Be32());
        if (result_.summary.pongs.size() < kMaxRecordedPongs) result_.summary.pongs.push_back(value);
        break;
      }
      case ReturnPathType::kReqPagesId:
      case ReturnPathType::kReqPages: {
        QMIG_ASSIGN_OR_RETURN(uint64_t start, payload.Be64());
        QMIG_ASSIGN_OR_RETURN(uint32_t request_length, payload.Be32());
        if (type == static_cast<uint16_t>(ReturnPathType::kReqPagesId)) {
          QMIG_ASSIGN_OR_RETURN(std::string block, payload.CountedString());
          if (block.empty() || length != 13 + block.size()) {
            return context_.Fail(FindingCode::kRpBadLength, offset,
                                 absl::StrCat("REQ_PAGES_ID length ", length, " is not 13 + ",
                                              block.size(), " with a non-empty name"));
          }
          last_block_ = block;
        } else if (!last_block_.has_value()) {
          context_.Report(FindingCode::kRpBadPayload, offset,
                          "REQ_PAGES before any REQ_PAGES_ID named a block");
        }
        CheckRequest(offset, start, request_length);
        break;
      }
      case ReturnPathType::kRecvBitmap: {
        QMIG_ASSIGN_OR_RETURN(std::string block, payload.CountedString());
        if (block.empty() || length != 1 + block.size()) {
          return context_.Fail(FindingCode::kRpBadLength, offset,
                               absl::StrCat("RECV_BITMAP length ", length, " is not 1 + ",
                                            block.size(), " with a non-empty name"));
        }
        reader.MoveTo(payload.offset());
        return Bitmap(reader, block);
      }
      case ReturnPathType::kResumeAck: {
        QMIG_ASSIGN_OR_RETURN(uint32_t value, payload.Be32());
        if (value != kResumeAckValue) {
          context_.Report(FindingCode::kRpBadPayload, offset,
                          absl::StrCat("RESUME_ACK value ", value, " (must be 1)"));
        }
        break;
      }
      default:
        break;
    }
    reader.MoveTo(payload.offset());
    return absl::OkStatus();
  }

  void CheckRequest(uint64_t offset, uint64_t start, uint32_t length) {
    const std::string block = last_block_.value_or("");
    ++result_.summary.page_requests;
    if (result_.summary.requests.size() < kMaxRecordedPageRequests) {
      result_.summary.requests.push_back({block, start, length, offset});
    }
    if (length == 0 || start % kTargetPageSize != 0 || length % kTargetPageSize != 0) {
      context_.Report(FindingCode::kRpBadPayload, offset,
                      absl::StrFormat("page request 0x%x+0x%x is empty or not page-aligned", start,
                                      length));
      return;
    }
    auto it = options_.block_lengths.find(block);
    if (it == options_.block_lengths.end()) {
      if (!options_.block_lengths.empty() && !block.empty()) {
        context_.Report(FindingCode::kRpBadPayload, offset,
                        absl::StrCat("page request for unknown block '", EscapeName(block), "'"));
      }
      return;
    }
    if (!RangeWithin(start, length, it->second)) {
      context_.Report(FindingCode::kRpBadPayload, offset,
                      absl::StrFormat("page request 0x%x+0x%x runs past block '%s' (0x%x bytes)",
                                      start, length, EscapeName(block), it->second));
    }
  }

  // be64 size, size bytes of little-endian bitmap, be64 end mark.
  absl::Status Bitmap(Reader& reader, const std::string& block) {
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint64_t size, reader.Be64());
    if (size > kMaxRecvBitmapBytes || size % 8 != 0) {
      return context_.Fail(FindingCode::kRpBitmap, offset,
                           absl::StrCat("bitmap of ", size, " bytes is not a multiple of 8 under ",
                                        kMaxRecvBitmapBytes));
    }
    auto it = options_.block_lengths.find(block);
    if (it != options_.block_lengths.end()) {
      uint64_t bits = it->second / kTargetPageSize;
      uint64_t expected = (bits + 63) / 64 * 8;
      if (size != expected) {
        context_.Report(FindingCode::kRpBitmap, offset,
                        absl::StrCat("bitmap of ", size, " bytes; block '", EscapeName(block),
                                     "' needs ", expected));
      }
    }
    QMIG_RETURN_IF_ERROR(reader.Skip(size));
    uint64_t mark_offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint64_t mark, reader.Be64());
    if (mark != kRecvBitmapEndMark) {
      return context_.Fail(FindingCode::kRpBitmap, mark_offset,
                           absl::StrFormat("bitmap end mark 0x%016x (expected 0x%016x)", mark,
                                           kRecvBitmapEndMark));
    }
    result_.summary.recv_bitmaps[block] = size;
    return absl::OkStatus();
  }

  ByteSource& source_;
  const ReturnPathOptions& options_;
  ReturnPathResult& result_;
  ParseContext context_;
  std::optional<std::string> last_block_;
  bool shut_seen_ = false;
};

}  // namespace

ReturnPathResult ParseReturnPath(ByteSource& source, const ReturnPathOptions& options) {
  ReturnPathResult result{ReturnPathSummary{}, FindingList(options.limits.max_findings)};
  ReturnPathParser parser(source, options, result);
  parser.Run();
  return result;
}

}  // namespace qmig
