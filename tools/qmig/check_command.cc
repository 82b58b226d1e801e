#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "parser/parse_context.h"
#include "parser/preempt_channel.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/plural.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// RAMBlock lengths of a main stream, for checking its companions.
absl::StatusOr<NameCounts> BlockLengthsOf(const std::string& path) {
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(path);
  if (!input.ok()) return input.status();
  ParseOptions options;
  ParseResult result = ParseMigrationStream((*input)->source(), options);
  NameCounts lengths;
  for (const RamBlockSummary& block : result.summary.ram_blocks) lengths[block.name] = block.length;
  return lengths;
}

// A count per name, the names escaped.
NameCounts EscapedKeys(const NameCounts& counts) {
  NameCounts out;
  for (const auto& [name, count] : counts) out[EscapeName(name)] += count;
  return out;
}

nlohmann::json ReturnPathSummaryToJson(const ReturnPathSummary& s) {
  nlohmann::json requests = nlohmann::json::array();
  for (const PageRequest& r : s.requests) {
    requests.push_back({{"block", EscapeName(r.block)},
                        {"start", r.start},
                        {"length", r.length},
                        {"offset", r.offset}});
  }
  nlohmann::json out = {{"messages", s.messages},
                        {"pongs", s.pongs},
                        {"page_requests", s.page_requests},
                        {"requests", requests},
                        {"recv_bitmaps", EscapedKeys(s.recv_bitmaps)},
                        {"bytes", s.bytes}};
  out["shut_status"] =
      s.shut_status.has_value() ? nlohmann::json(*s.shut_status) : nlohmann::json();
  return out;
}

nlohmann::json MultifdSummaryToJson(const MultifdSummary& s) {
  return {{"channel_id", s.channel_id},
          {"uuid", EscapeName(s.uuid)},
          {"packets", s.packets},
          {"sync_packets", s.sync_packets},
          {"pages", s.pages},
          {"pages_by_block", EscapedKeys(s.pages_by_block)},
          {"bytes", s.bytes}};
}

std::string FormatReturnPathSummary(const ReturnPathSummary& s, const std::string& name) {
  std::string out =
      absl::StrCat("return path ", EscapeName(name), " (", Counted(s.bytes, "byte"), " read)\n");
  for (const auto& [type, count] : s.messages) absl::StrAppend(&out, "  ", type, " ", count, "\n");
  if (!s.pongs.empty()) {
    absl::StrAppend(&out, "  pongs:");
    for (uint32_t pong : s.pongs) absl::StrAppend(&out, " ", pong);
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  page requests: ", s.page_requests, "\n");
  if (s.shut_status.has_value()) absl::StrAppend(&out, "  SHUT status ", *s.shut_status, "\n");
  return out;
}

std::string FormatMultifdSummary(const MultifdSummary& s, const std::string& name) {
  std::string out = absl::StrCat("multifd channel ", EscapeName(name), " (",
                                 Counted(s.bytes, "byte"), " read)\n");
  absl::StrAppend(&out, "  channel ", s.channel_id, ", uuid ", EscapeName(s.uuid), "\n");
  absl::StrAppend(&out, "  packets ", s.packets, " (", s.sync_packets, " sync",
                  s.device_state_packets > 0
                      ? absl::StrCat(", ", s.device_state_packets, " of device state")
                      : "",
                  "), pages ", s.pages, " with data, ", s.zero_pages, " zero\n");
  for (const auto& [block, pages] : s.pages_by_block) {
    absl::StrAppend(&out, "    ", EscapeName(block), " ", pages, "\n");
  }
  return out;
}

// Feeds a progress meter from the parser's events.
class ProgressObserver final : public StreamObserver {
 public:
  explicit ProgressObserver(ProgressMeter* meter) : meter_(meter) {}
  void OnSection(uint8_t, uint32_t, absl::string_view, uint32_t, uint32_t,
                 uint64_t offset) override {
    meter_->Update(offset);
  }
  void OnRamPage(absl::string_view, uint64_t, RamRecordKind, absl::Span<const uint8_t>,
                 uint64_t stream_offset) override {
    meter_->Update(stream_offset);
  }

 private:
  ProgressMeter* meter_;
};

}  // namespace

int RunCheck(const std::vector<std::string>& operands, const CheckOptions& options) {
  if (operands.size() != 1) return UsageError("check", "takes one FILE (or - for stdin)");
  if (options.kind != "auto" && options.kind != "main" && options.kind != "return-path" &&
      options.kind != "multifd" && options.kind != "preempt") {
    return UsageError("check", absl::StrCat("unknown --kind '", options.kind,
                                            "' (auto, main, return-path, multifd, preempt)"));
  }
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return UsageError("check", setup.status().message());
  const ParseOptions& parse_options = setup->parse;
  NameCounts block_lengths;
  if (!options.main_path.empty()) {
    absl::StatusOr<NameCounts> lengths = BlockLengthsOf(options.main_path);
    if (!lengths.ok()) return InputError("check", lengths.status().message());
    block_lengths = std::move(*lengths);
  }

  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(operands[0]);
  if (!input.ok()) return InputError("check", input.status().message());
  std::string kind = options.kind == "auto" ? DetectKind((*input)->source()) : options.kind;

  nlohmann::json summary_json;
  std::string summary_text;
  const FindingList* findings = nullptr;
  ParseResult main_result;
  ReturnPathResult rp_result;
  MultifdResult multifd_result;
  PreemptChannelResult preempt_result;
  if (kind == "main") {
    // Progress on a terminal only: the observer costs a call per page.
    ProgressMeter progress("qmig check", RegularFileSize(operands[0]), options.output.quiet);
    ProgressObserver observer(&progress);
    ParseOptions with_progress = parse_options;
    if (progress.enabled()) with_progress.observer = &observer;
    main_result = ParseMigrationStream((*input)->source(), with_progress);
    progress.Done();
    summary_json = SummaryToJson(main_result.summary);
    summary_text = FormatSummary(main_result.summary, operands[0]);
    findings = &main_result.findings;
  } else if (kind == "return-path") {
    ReturnPathOptions rp_options;
    rp_options.limits = parse_options.limits;
    rp_options.block_lengths = block_lengths;
    rp_result = ParseReturnPath((*input)->source(), rp_options);
    summary_json = ReturnPathSummaryToJson(rp_result.summary);
    summary_text = FormatReturnPathSummary(rp_result.summary, operands[0]);
    findings = &rp_result.findings;
  } else if (kind == "multifd") {
    MultifdOptions multifd_options;
    multifd_options.limits = parse_options.limits;
    multifd_options.block_lengths = block_lengths;
    multifd_result = ParseMultifdChannel((*input)->source(), multifd_options);
    summary_json = MultifdSummaryToJson(multifd_result.summary);
    summary_text = FormatMultifdSummary(multifd_result.summary, operands[0]);
    findings = &multifd_result.findings;
  } else {  // preempt
    PreemptChannelOptions preempt_options;
    preempt_options.limits = parse_options.limits;
    preempt_options.block_lengths = block_lengths;
    preempt_result = ParsePreemptChannel((*input)->source(), preempt_options);
    const PreemptChannelSummary& s = preempt_result.summary;
    summary_json = {{"pages", s.pages},
                    {"zero_pages", s.zero_pages},
                    {"pages_by_block", EscapedKeys(s.pages_by_block)},
                    {"eos_seen", s.eos_seen},
                    {"bytes", s.bytes}};
    summary_text = absl::StrCat("preempt channel ", EscapeName(operands[0]), " (", s.bytes,
                                " bytes read)\n  ", Counted(s.pages, "page"), " (", s.zero_pages,
                                " zero)", s.eos_seen ? ", ended by EOS" : "", "\n");
    findings = &preempt_result.findings;
  }
  if (findings->HasCode(FindingCode::kIoError)) {
    std::cerr << "qmig: I/O error reading " << operands[0] << "\n";
  }
  bool valid = findings->error_count() == 0;
  if (options.output.json) {
    nlohmann::json out = {
        {"input", operands[0]},
        {"kind", kind},
        {"valid", valid},
        {"errors", findings->error_count()},
        {"warnings", findings->warning_count()},
        {"findings_dropped", findings->dropped()},
        {"counts", FindingCountsToJson(*findings)},
        {"summary", summary_json},
        {"findings", FindingsToJson(*findings)},
    };
    std::cout << JsonDocument(out);
  } else {
    if (!options.output.quiet) std::cout << summary_text;
    PrintFindings(*findings, options.output.quiet, options.output.verbose);
  }
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
