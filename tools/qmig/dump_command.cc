// qmig dump FILE|-: the whole stream as a readable tree, as JSON records
// (--json, schema in docs/JSON.md), or as analyze-migration.py's device-state
// JSON (--format=analyze-migration). Records are written as they complete,
// so memory stays bounded on a stream of any size.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/escape.h"
#include "parser/wire/plural.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/dump_writers.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// Ranges listed per block in the text view; the JSON keeps more.
constexpr size_t kTextRangesPerBlock = 8;
// Ranges kept in the stream-wide RAM summary, per block and in all.
constexpr size_t kSummaryRangesPerBlock = 4096;
constexpr size_t kSummaryRanges = 65536;

nlohmann::ordered_json RamSummaryJson(const RamMap& ram) {
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  size_t budget = kSummaryRanges;
  for (const RamMap::Block& block : ram.blocks()) {
    nlohmann::ordered_json records = nlohmann::ordered_json::object();
    for (size_t kind = 1; kind < kPageKindCount; ++kind) {
      records[std::string(PageKindName(static_cast<PageKind>(kind)))] = block.records[kind];
    }
    nlohmann::ordered_json entry = {{"name", EscapeName(block.name)},
                                    {"length", block.length},
                                    {"page_size", block.page_size},
                                    {"records", records},
                                    {"mapped", !block.pages.empty() || block.length == 0}};
    RangeList ranges = ram.Ranges(block, std::min(kSummaryRangesPerBlock, budget));
    budget -= ranges.ranges().size();
    entry["ranges"] = ranges.ToJson();
    entry["ranges_dropped"] = ranges.dropped();
    blocks.push_back(std::move(entry));
  }
  return blocks;
}

std::string RamSummaryText(const RamMap& ram) {
  std::string out = "RAM by block (kind of the last record per page):\n";
  for (const RamMap::Block& block : ram.blocks()) {
    RangeList ranges = ram.Ranges(block, kTextRangesPerBlock + 1);
    absl::StrAppendFormat(&out, "  %-24s %#10x bytes  %s;%s\n", EscapeName(block.name),
                          block.length, FormatPageCounts(block.records),
                          FormatRanges(ranges.ranges(), kTextRangesPerBlock));
  }
  if (ram.pages_in_other_blocks() > 0) {
    absl::StrAppend(&out, "  ", Counted(ram.pages_in_other_blocks(), "page"),
                    " of further blocks, not listed\n");
  }
  return out;
}

}  // namespace

int RunDump(const std::vector<std::string>& operands, const DumpOptions& options) {
  if (operands.size() != 1) return UsageError("dump", "takes one FILE (or - for stdin)");
  const std::string format = options.output.json ? "json" : options.format;
  if (format != "text" && format != "json" && format != "analyze-migration") {
    return UsageError(
        "dump", absl::StrCat("unknown --format '", format, "' (text, json, analyze-migration)"));
  }
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return UsageError("dump", setup.status().message());
  absl::StatusOr<StreamInput> stream = OpenStreamInput(operands[0], options.stream);
  if (!stream.ok()) return InputError("dump", stream.status().message());
  ParseOptions& parse_options = stream->parse;
  OpenedInput& input = *stream->input;

  OstreamOut out(std::cout);
  TextDumpWriter text(&out);
  JsonDumpWriter json(&out);
  AnalyzeMigrationWriter analyze(&out);
  RecordSink* sink = format == "text"   ? static_cast<RecordSink*>(&text)
                     : format == "json" ? static_cast<RecordSink*>(&json)
                                        : static_cast<RecordSink*>(&analyze);
  StreamInspector inspector(sink, parse_options.limits.max_guest_ram_bytes);
  ProgressMeter progress("qmig dump", RegularFileSize(operands[0]), options.output.quiet);
  inspector.set_progress([&progress](uint64_t offset) { progress.Update(offset); });
  parse_options.observer = &inspector;
  if (format == "json") json.Begin(kJsonSchemaVersion, operands[0]);
  ParseResult result = ParseMigrationStream(input.source(), parse_options);
  inspector.Finish(result);
  progress.Done();

  const FindingList& findings = result.findings;
  if (format == "json") {
    nlohmann::ordered_json tail;
    tail["ram_blocks"] = RamSummaryJson(inspector.ram());
    tail["valid"] = result.valid();
    tail["errors"] = findings.error_count();
    tail["warnings"] = findings.warning_count();
    tail["findings_dropped"] = findings.dropped();
    tail["summary"] = SummaryToJson(result.summary);
    tail["findings"] = FindingsToJson(findings);
    json.End(tail);
  } else if (format == "text") {
    std::cout << "\n" << RamSummaryText(inspector.ram()) << "\n";
    PrintFindings(findings, options.output.quiet, options.output.verbose);
  } else {
    analyze.Finish();
    if (result.summary.device_description_source.empty() && result.summary.devices_unverified > 0) {
      std::cerr << "qmig dump: no vmstate description, so the " << result.summary.devices_unverified
                << " device sections are shown empty; pass --schema (qmig schema makes one "
                   "from a precopy stream of the same machine)\n";
    }
    // The script stops at the first problem; qmig reads on and says what it
    // found on stderr, leaving stdout to the JSON.
    if (!result.valid()) {
      for (const Finding& finding : findings.findings()) {
        if (finding.severity == Severity::kError) std::cerr << FormatFinding(finding) << "\n";
      }
    }
  }
  std::cout.flush();
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
