// qmig report FILE [--return_path=RP] -o OUT.html: one self-contained page
// about a stream. The page (report_template.html, compiled in) renders the
// JSON this command embeds: records by offset and size, RAM page kinds per
// block, device sections, findings at their offsets, and for a postcopy
// capture with its return path a timeline of page requests against pages
// sent. The data's schema is in docs/JSON.md.
#include <fstream>
#include <iostream>
#include <memory>
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
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"
#include "tools/qmig/report_page.h"

namespace qmig {
namespace {

// Bounds on what the page is given, so it stays quick to load.
constexpr size_t kMaxTimelinePages = 50000;
// Postcopy pages whose first send is remembered, to answer page requests.
constexpr size_t kMaxTimelineFirstSends = size_t{1} << 20;

// Postcopy pages on the main stream after LISTEN, with where they were sent.
struct Timeline {
  bool listening = false;
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
    if (kind == CommandKind::kPostcopyListen) timeline.listening = true;
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
    nlohmann::ordered_json requests = nlohmann::ordered_json::array();
    const size_t listed = std::min(rp_result.summary.requests.size(), kMaxTimelinePages);
    for (size_t i = 0; i < listed; ++i) {
      const PageRequest& request = rp_result.summary.requests[i];
      nlohmann::ordered_json answered;
      auto block = timeline.block_index.find(request.block);
      if (block != timeline.block_index.end()) {
        auto sent = timeline.first_sent.find({block->second, request.start / kTargetPageSize});
        if (sent != timeline.first_sent.end()) answered = sent->second;
      }
      requests.push_back({{"index", i},
                          {"block", EscapeName(request.block)},
                          {"offset", request.start},
                          {"length", request.length},
                          {"answered_at", answered}});
    }
    data["timeline"] = {{"run_offset", timeline.run_offset.has_value()
                                           ? nlohmann::ordered_json(*timeline.run_offset)
                                           : nlohmann::ordered_json()},
                        {"blocks", timeline.blocks},
                        {"pages", std::move(timeline.pages)},
                        {"pages_dropped", timeline.pages_dropped},
                        {"requests", std::move(requests)},
                        {"requests_dropped", rp_result.summary.requests.size() - listed},
                        {"return_path_valid", rp_result.valid()}};
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
        << data["records"].size() << " records, " << result.findings.error_count() << " errors, "
        << result.findings.warning_count() << " warnings\n";
  }
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
