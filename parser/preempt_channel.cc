#include "parser/preempt_channel.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/parse_context.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/reader.h"

namespace qmig {
namespace {

constexpr uint64_t kFlagMask = kTargetPageSize - 1;

class PreemptParser {
 public:
  PreemptParser(ByteSource& source, const PreemptChannelOptions& options,
                PreemptChannelResult& result)
      : source_(source), options_(options), result_(result), context_(&result.findings) {}

  void Run() {
    Reader reader(&source_, &context_);
    absl::Status status = absl::OkStatus();
    while (status.ok() && !result_.summary.eos_seen) {
      absl::StatusOr<bool> at_end = reader.AtEnd();
      if (!at_end.ok()) {
        status = at_end.status();
        break;
      }
      if (*at_end) {
        context_.Report(FindingCode::kTruncated, reader.offset(),
                        absl::StrCat("truncated at offset ", reader.offset(),
                                     ": the preempt channel ends without EOS"));
        break;
      }
      status = Record(reader);
    }
    if (status.ok() && result_.summary.eos_seen && !options_.live) {
      absl::StatusOr<bool> at_end = reader.AtEnd();
      if (at_end.ok() && !*at_end) {
        context_.Report(FindingCode::kPreemptBadRecord, reader.offset(),
                        "bytes after the preempt channel's EOS");
      }
    }
    context_.ReportUnexplained(status, reader.offset());
    result_.summary.bytes = reader.offset();
  }

 private:
  absl::Status Record(Reader& reader) {
    const uint64_t offset = reader.offset();
    PathScope scope(context_, absl::StrCat("preempt@", HexOffset(offset)));
    QMIG_ASSIGN_OR_RETURN(uint64_t word, reader.Be64());
    const uint64_t flags = word & kFlagMask;
    const uint64_t address = word & ~kFlagMask;
    const uint64_t kind = flags & ~uint64_t{ram_flag::kContinue};
    if (kind == ram_flag::kEos) {
      if (address != 0 || flags != ram_flag::kEos) {
        context_.Report(FindingCode::kPreemptBadRecord, offset,
                        absl::StrFormat("EOS with address 0x%x and flags 0x%x", address, flags));
      }
      result_.summary.eos_seen = true;
      return absl::OkStatus();
    }
    if (kind != ram_flag::kZero && kind != ram_flag::kPage) {
      return context_.Fail(FindingCode::kPreemptBadRecord, offset,
                           absl::StrFormat("flags 0x%x: a postcopy channel carries only ZERO, "
                                           "PAGE and EOS (with CONTINUE)",
                                           flags));
    }
    if ((flags & ram_flag::kContinue) != 0) {
      if (!block_.has_value()) {
        return context_.Fail(FindingCode::kPreemptBadRecord, offset,
                             "CONTINUE before any block was named on this channel");
      }
    } else {
      uint64_t name_offset = reader.offset();
      QMIG_ASSIGN_OR_RETURN(std::string name, reader.CountedString());
      if (name.empty()) {
        return context_.Fail(FindingCode::kPreemptBadRecord, name_offset, "empty block name");
      }
      block_ = std::move(name);
    }
    if (!options_.block_lengths.empty()) {
      auto it = options_.block_lengths.find(*block_);
      if (it == options_.block_lengths.end()) {
        return context_.Fail(FindingCode::kPreemptBadRecord, offset,
                             absl::StrCat("unknown RAM block '", EscapeName(*block_), "'"));
      }
      if (address >= it->second) {
        return context_.Fail(FindingCode::kPreemptBadRecord, offset,
                             absl::StrFormat("page 0x%x is past the end of '%s' (0x%x bytes)",
                                             address, EscapeName(*block_), it->second));
      }
    }
    absl::Span<const uint8_t> body;
    RamRecordKind record_kind;
    if (kind == ram_flag::kZero) {
      record_kind = RamRecordKind::kZero;
      QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(1));
      if (body[0] != 0) {
        context_.Report(FindingCode::kPreemptBadRecord, offset + 8,
                        absl::StrFormat("ZERO fill byte 0x%02x; postcopy requires 0", body[0]));
      }
      ++result_.summary.zero_pages;
    } else {
      record_kind = RamRecordKind::kPage;
      QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(kTargetPageSize));
    }
    ++result_.summary.pages;
    ++result_.summary.pages_by_block[*block_];
    if (options_.on_page) options_.on_page(*block_, address, record_kind, body, offset);
    return absl::OkStatus();
  }

  ByteSource& source_;
  const PreemptChannelOptions& options_;
  PreemptChannelResult& result_;
  ParseContext context_;
  std::optional<std::string> block_;  // this channel's last named block
};

}  // namespace

PreemptChannelResult ParsePreemptChannel(ByteSource& source, const PreemptChannelOptions& options) {
  PreemptChannelResult result{PreemptChannelSummary{}, FindingList(options.limits.max_findings)};
  PreemptParser parser(source, options, result);
  parser.Run();
  return result;
}

}  // namespace qmig
