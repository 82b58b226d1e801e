// qmig report FILE [--return_path=RP] -o OUT.html: one self-contained page
// about a stream. The page (report_template.html, compiled in) renders the
// JSON this command embeds: records by offset and size, RAM page kinds per
// block, device sections, findings at their offsets, and for a postcopy
// capture with its return path a timeline of page requests against pages
// sent. The data's schema is in docs/JSON.md.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "parser/return_path.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"
#include "tools/qmig/report_page.h"

namespace qmig {
namespace {

// Postcopy pages on the main stream after LISTEN, with where they were sent.
struct Timeline {
  bool listening = false;
  std::optional<uint64_t> listen_offset;
  std::optional<uint64_t> run_offset;
  std::vector<std::string> blocks;
  absl::flat_hash_map<std::string, size_t> block_index;
  nlohmann::ordered_json pages = nlohmann::ordered_json::array();
  uint64_t pages_dropped = 0;
  // First postcopy send of each (block, page).
  absl::flat_hash_map<std::pair<size_t, uint64_t>, uint64_t> first_sent;

  void OnPage(absl::string_view block, uint64_t offset, uint64_t stream_offset) {
    if (!listening) return;
    auto it = block_index.find(block);
    if (it == block_index.end()) {
      if (blocks.size() >= kMaxRamBlocks) return;
      it = block_index.emplace(std::string(block), blocks.size()).first;
      blocks.push_back(EscapeName(block));
    }
    const size_t index = it->second;
    if (first_sent.size() < kMaxTimelineFirstSends) {
      first_sent.emplace(std::make_pair(index, offset / kTargetPageSize), stream_offset);
    }
    if (pages.size() < kMaxTimelinePages) {
      pages.push_back({stream_offset, index, offset});
    } else {
      ++pages_dropped;
    }
  }
};

// An offset, or null.
nlohmann::ordered_json OptionalOffset(const std::optional<uint64_t>& offset) {
  return offset.has_value() ? nlohmann::ordered_json(*offset) : nlohmann::ordered_json();
}

// The timeline's data: postcopy pages sent, the return path's page requests
// with where each was answered, its PONGs against the stream's PINGs, and
// its SHUT.
nlohmann::ordered_json TimelineData(Timeline& timeline, const ReportCollector& collector,
                                    const ReturnPathResult& rp) {
  const ReturnPathSummary& summary = rp.summary;
  // A capture has no clock. A request's latency is counted from the latest
  // point before its answer that the capture shows it could not precede:
  // LISTEN, or the answer to an earlier request (a faulting thread waits for
  // its page before it asks for the next).
  const std::optional<uint64_t> listen = timeline.listen_offset;
  nlohmann::ordered_json requests = nlohmann::ordered_json::array();
  const size_t listed = std::min(summary.requests.size(), kMaxTimelinePages);
  std::set<uint64_t> answers;  // answers so far, for the latest one before each
  for (size_t i = 0; i < listed; ++i) {
    const PageRequest& request = summary.requests[i];
    std::optional<uint64_t> answered;
    auto block = timeline.block_index.find(request.block);
    if (block != timeline.block_index.end()) {
      auto sent = timeline.first_sent.find({block->second, request.start / kTargetPageSize});
      if (sent != timeline.first_sent.end()) answered = sent->second;
    }
    nlohmann::ordered_json asked_after, latency;
    if (answered.has_value()) {
      std::optional<uint64_t> from = listen;
      if (from.has_value() && *from > *answered) from.reset();
      // The latest earlier answer at or before this one.
      auto later = answers.upper_bound(*answered);
      if (later != answers.begin() && (!from || *std::prev(later) > *from)) {
        from = *std::prev(later);
      }
      if (from.has_value()) {
        asked_after = *from;
        latency = *answered - *from;
      }
      answers.insert(*answered);
    }
    requests.push_back({{"index", i},
                        {"block", EscapeName(request.block)},
                        {"offset", request.start},
                        {"length", request.length},
                        {"rp_offset", request.offset},
                        {"answered_at", OptionalOffset(answered)},
                        {"asked_after", std::move(asked_after)},
                        {"latency", std::move(latency)}});
  }
  // Each PONG against the first PING of its value not yet answered.
  std::vector<bool> used(collector.pings_.size(), false);
  nlohmann::ordered_json pongs = nlohmann::ordered_json::array();
  for (uint32_t value : summary.pongs) {
    std::optional<uint64_t> ping_at;
    for (size_t p = 0; p < collector.pings_.size(); ++p) {
      if (!used[p] && collector.pings_[p].first == value) {
        used[p] = true;
        ping_at = collector.pings_[p].second;
        break;
      }
    }
    pongs.push_back({{"value", value}, {"ping_at", OptionalOffset(ping_at)}});
  }
  auto count = [&summary](const std::string& type) -> uint64_t {
    auto it = summary.messages.find(type);
    return it == summary.messages.end() ? 0 : it->second;
  };
  return {
      {"listen_offset", OptionalOffset(timeline.listen_offset)},
      {"run_offset", OptionalOffset(timeline.run_offset)},
      {"blocks", timeline.blocks},
      {"pages", std::move(timeline.pages)},
      {"pages_dropped", timeline.pages_dropped},
      {"requests", std::move(requests)},
      {"requests_dropped", summary.page_requests - listed},
      {"pongs", std::move(pongs)},
      {"pongs_dropped", count("PONG") - summary.pongs.size()},
      {"shut_status", summary.shut_status.has_value() ? nlohmann::ordered_json(*summary.shut_status)
                                                      : nlohmann::ordered_json()},
      {"messages", summary.messages},
      {"return_path_bytes", summary.bytes},
      {"return_path_valid", rp.valid()},
      {"return_path_errors", rp.findings.error_count()},
      {"return_path_warnings", rp.findings.warning_count()}};
}

}  // namespace

int RunReport(const std::vector<std::string>& operands, const ReportOptions& options) {
  if (operands.size() != 1 || options.output_path.empty()) {
    return UsageError("report", "takes one FILE (or - for stdin) and -o OUT.html (- for stdout)");
  }
  if (operands[0] == "-" && options.return_path == "-") {
    return UsageError("report", "only one of FILE and --return-path can be standard input");
  }
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return UsageError("report", setup.status().message());
  absl::StatusOr<StreamInput> stream = OpenStreamInput(operands[0], options.stream);
  if (!stream.ok()) return InputError("report", stream.status().message());
  ParseOptions& parse_options = stream->parse;
  OpenedInput& input = *stream->input;

  ReportCollector collector;
  Timeline timeline;
  StreamInspector inspector(&collector, parse_options.limits.max_guest_ram_bytes);
  inspector.set_command_callback([&timeline](CommandKind kind, uint64_t offset) {
    if (kind == CommandKind::kPostcopyListen) {
      timeline.listening = true;
      if (!timeline.listen_offset) timeline.listen_offset = offset;
    }
    if (kind == CommandKind::kPostcopyRun && !timeline.run_offset) timeline.run_offset = offset;
  });
  const bool want_timeline = !options.return_path.empty();
  if (want_timeline) {
    inspector.set_page_callback([&timeline](absl::string_view block, uint64_t offset, RamRecordKind,
                                            absl::Span<const uint8_t>, uint64_t stream_offset) {
      timeline.OnPage(block, offset, stream_offset);
    });
  }
  ProgressMeter progress("qmig report", RegularFileSize(operands[0]), options.output.quiet);
  inspector.set_progress([&progress](uint64_t offset) { progress.Update(offset); });
  parse_options.observer = &inspector;
  ParseResult result = ParseMigrationStream(input.source(), parse_options);
  inspector.Finish(result);
  progress.Done();

  // The stream's size: a file's, or as far as a pipe went (a cut stream ends
  // where its truncation finding says, past the last whole record).
  uint64_t bytes = RegularFileSize(operands[0]).value_or(result.summary.bytes);
  for (const Finding& finding : result.findings.findings()) {
    if (finding.code == FindingCode::kTruncated) bytes = std::max(bytes, finding.offset);
  }
  nlohmann::ordered_json data = ReportData(operands[0], bytes, result, collector, inspector.ram());

  if (want_timeline) {
    absl::StatusOr<std::unique_ptr<OpenedInput>> rp = OpenInputPath(options.return_path);
    if (!rp.ok()) return InputError("report", rp.status().message());
    ReturnPathOptions rp_options;
    rp_options.limits = parse_options.limits;
    for (const RamMap::Block& block : inspector.ram().blocks()) {
      if (block.length != 0) rp_options.block_lengths[block.name] = block.length;
    }
    ReturnPathResult rp_result = ParseReturnPath((*rp)->source(), rp_options);
    data["timeline"] = TimelineData(timeline, collector, rp_result);
  }

  absl::StatusOr<std::string> page = RenderReportPage(data);
  if (!page.ok()) {
    return InputError("report", page.status().message());
  }
  if (options.output_path == "-") {
    std::cout << *page;
    std::cout.flush();
    if (!std::cout) return InputError("report", "cannot write the page to standard output");
  } else {
    std::ofstream out(options.output_path, std::ios::binary | std::ios::trunc);
    out << *page;
    out.close();
    if (!out) return InputError("report", absl::StrCat("cannot write ", options.output_path));
  }
  if (!options.output.quiet) {
    // On stderr when the page itself goes to stdout.
    (options.output_path == "-" ? std::cerr : std::cout)
        << "wrote " << (options.output_path == "-" ? "the page" : options.output_path) << ": "
        << Counted(data["records"].size(), "record") << ", "
        << Counted(result.findings.error_count(), "error") << ", "
        << Counted(result.findings.warning_count(), "warning") << "\n";
  }
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
