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
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// Ranges listed per block in the text view; the JSON keeps more.
constexpr size_t kTextRangesPerBlock = 8;
// Ranges kept per block in the stream-wide RAM summary.
constexpr size_t kSummaryRangesPerBlock = 4096;

std::string Dump(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Scalars as they read best: strings without quotes.
std::string Scalar(const nlohmann::ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : Dump(value);
}

void PrintFields(const nlohmann::ordered_json& tree, const std::string& prefix,
                 const std::string& indent, std::string* out) {
  for (const auto& [name, value] : tree.items()) {
    std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    if (value.is_object()) {
      PrintFields(value, path, indent, out);
    } else if (value.is_array()) {
      for (size_t i = 0; i < value.size(); ++i) {
        std::string element = absl::StrCat(path, "[", i, "]");
        if (value[i].is_object()) {
          PrintFields(value[i], element, indent, out);
        } else {
          absl::StrAppend(out, indent, element, " = ", Scalar(value[i]), "\n");
        }
      }
    } else {
      absl::StrAppend(out, indent, path, " = ", Scalar(value), "\n");
    }
  }
}

std::string FormatRanges(const nlohmann::ordered_json& ranges, size_t max) {
  std::string out;
  size_t shown = 0;
  for (const nlohmann::ordered_json& range : ranges) {
    if (shown == max) {
      absl::StrAppend(&out, " ...");
      break;
    }
    absl::StrAppendFormat(&out, " %#x-%#x %s", range[0].get<uint64_t>(), range[1].get<uint64_t>(),
                          range[2].get<std::string>());
    ++shown;
  }
  return out;
}

std::string FormatCounts(const nlohmann::ordered_json& counts) {
  std::string out;
  for (const auto& [kind, count] : counts.items()) {
    if (count.get<uint64_t>() == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", count.get<uint64_t>(), " ", kind);
  }
  return out.empty() ? "no pages" : out;
}

class TextDumpSink final : public RecordSink {
 public:
  explicit TextDumpSink(std::ostream& out) : out_(out) {}

  void OnRecord(const Record& record) override {
    std::string text = Line(record);
    const std::string indent(12 + 2 * record.depth + 2, ' ');
    const nlohmann::ordered_json& d = record.details;
    switch (record.kind) {
      case RecordKind::kConfiguration:
        if (d.contains("capabilities")) {
          absl::StrAppend(&text, indent, "capabilities: ", Dump(d["capabilities"]), "\n");
        }
        if (d.contains("uuid")) absl::StrAppend(&text, indent, "uuid: ", Scalar(d["uuid"]), "\n");
        break;
      case RecordKind::kRam:
        if (d.contains("mem_size")) {
          for (const nlohmann::ordered_json& block : d["mem_size"]) {
            absl::StrAppendFormat(&text, "%sMEM_SIZE %s %#x bytes\n", indent,
                                  block["name"].get<std::string>(),
                                  block["length"].get<uint64_t>());
          }
        }
        for (const nlohmann::ordered_json& block : d["blocks"]) {
          absl::StrAppend(&text, indent, block["name"].get<std::string>(), ": ",
                          FormatCounts(block["records"]), ";",
                          FormatRanges(block["ranges"], kTextRangesPerBlock), "\n");
        }
        break;
      case RecordKind::kDevice:
        if (d["decoded"].get<bool>()) {
          if (d.contains("fields")) PrintFields(d["fields"], "", indent, &text);
        } else {
          absl::StrAppend(&text, indent, "(not decoded: no description for this device)\n");
        }
        break;
      default:
        break;
    }
    out_ << text;
  }
  void OnPackageBegin(const Record& package) override { out_ << Line(package); }
  void OnPackageEnd(const Record& package) override {
    if (!package.complete)
      out_ << std::string(12 + 2 * package.depth, ' ') << "(package cut short)\n";
  }

 private:
  static std::string Line(const Record& record) {
    const std::string& label = record.label;
    return absl::StrFormat("0x%08x  %s%-48s %10d bytes%s\n", record.offset,
                           std::string(2 * record.depth, ' '), label, record.size,
                           record.complete ? "" : "  (incomplete)");
  }
  std::ostream& out_;
};

// One JSON object: header fields first, then "records" written as they come
// (one per line), then the summary and findings.
class JsonDumpSink final : public RecordSink {
 public:
  explicit JsonDumpSink(std::ostream& out) : out_(out) {}

  void Begin(const std::string& input) {
    out_ << "{\"schema_version\": " << kJsonSchemaVersion
         << ", \"input\": " << Dump(nlohmann::ordered_json(input)) << ",\n\"records\": [";
  }
  void OnRecord(const Record& record) override {
    Separator();
    out_ << Dump(ToJson(record));
  }
  void OnPackageBegin(const Record& package) override {
    Separator();
    std::string text = Dump(ToJson(package));
    text.pop_back();  // reopen the object for its contents
    out_ << text << ",\"contents\": [";
    first_.push_back(true);
  }
  void OnPackageEnd(const Record& package) override {
    first_.pop_back();
    out_ << "],\"complete\": " << (package.complete ? "true" : "false") << "}";
  }
  void End(const nlohmann::ordered_json& tail) {
    out_ << "\n]";
    for (const auto& [key, value] : tail.items()) {
      out_ << ",\n" << Dump(nlohmann::ordered_json(key)) << ": " << Dump(value);
    }
    out_ << "}\n";
  }

 private:
  static nlohmann::ordered_json ToJson(const Record& record) {
    nlohmann::ordered_json out = {{"offset", record.offset},
                                  {"size", record.size},
                                  {"kind", RecordKindName(record.kind)},
                                  {"label", record.label},
                                  {"depth", record.depth}};
    if (record.kind != RecordKind::kPackage) out["complete"] = record.complete;
    for (const auto& [key, value] : record.details.items()) out[key] = value;
    return out;
  }
  void Separator() {
    out_ << (first_.back() ? "\n" : ",\n");
    first_.back() = false;
  }
  std::ostream& out_;
  std::vector<bool> first_{true};
};

nlohmann::ordered_json RamSummaryJson(const RamMap& ram) {
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (const RamMap::Block& block : ram.blocks()) {
    nlohmann::ordered_json records = nlohmann::ordered_json::object();
    for (size_t kind = 1; kind < kPageKindCount; ++kind) {
      records[std::string(PageKindName(static_cast<PageKind>(kind)))] = block.records[kind];
    }
    nlohmann::ordered_json entry = {{"name", block.name},
                                    {"length", block.length},
                                    {"page_size", block.page_size},
                                    {"records", records},
                                    {"mapped", !block.pages.empty() || block.length == 0}};
    RangeList ranges = ram.Ranges(block, kSummaryRangesPerBlock);
    entry["ranges"] = ranges.ToJson();
    entry["ranges_dropped"] = ranges.dropped();
    blocks.push_back(std::move(entry));
  }
  return blocks;
}

std::string RamSummaryText(const RamMap& ram) {
  std::string out = "RAM by block (kind of the last record per page):\n";
  for (const RamMap::Block& block : ram.blocks()) {
    nlohmann::ordered_json records = nlohmann::ordered_json::object();
    for (size_t kind = 1; kind < kPageKindCount; ++kind) {
      records[std::string(PageKindName(static_cast<PageKind>(kind)))] = block.records[kind];
    }
    RangeList ranges = ram.Ranges(block, kTextRangesPerBlock + 1);
    absl::StrAppendFormat(&out, "  %-24s %#10x bytes  %s;%s\n", block.name, block.length,
                          FormatCounts(records),
                          FormatRanges(ranges.ToJson(), kTextRangesPerBlock));
  }
  return out;
}

}  // namespace

int RunDump(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 1) {
    std::cerr << "qmig: dump takes one FILE (or - for stdin)\n";
    return kExitUsage;
  }
  const std::string format = options.json ? "json" : options.format;
  if (format != "text" && format != "json" && format != "analyze-migration") {
    std::cerr << "qmig: unknown --format '" << format << "' (text, json, analyze-migration)\n";
    return kExitUsage;
  }
  absl::StatusOr<StreamInput> stream = OpenStreamInput(operands[0], options);
  if (!stream.ok()) {
    std::cerr << "qmig: " << stream.status().message() << "\n";
    return kExitUsage;
  }
  ParseOptions& parse_options = stream->parse;
  OpenedInput& input = *stream->input;

  TextDumpSink text(std::cout);
  JsonDumpSink json(std::cout);
  AnalyzeMigrationSink analyze;
  RecordSink* sink = format == "text"   ? static_cast<RecordSink*>(&text)
                     : format == "json" ? static_cast<RecordSink*>(&json)
                                        : static_cast<RecordSink*>(&analyze);
  StreamInspector inspector(sink, parse_options.limits.max_guest_ram_bytes);
  if (format == "analyze-migration") inspector.set_field_style(FieldTreeStyle::kAnalyzeMigration);
  ProgressMeter progress("qmig dump", RegularFileSize(operands[0]), options.quiet);
  inspector.set_progress([&progress](uint64_t offset) { progress.Update(offset); });
  parse_options.observer = &inspector;
  if (format == "json") json.Begin(operands[0]);
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
    tail["summary"] = nlohmann::ordered_json::parse(SummaryToJson(result.summary).dump());
    tail["findings"] = nlohmann::ordered_json::parse(FindingsToJson(findings).dump());
    json.End(tail);
  } else if (format == "text") {
    std::cout << "\n" << RamSummaryText(inspector.ram()) << "\n";
    PrintFindings(findings, options.quiet);
  } else {
    std::cout << AnalyzeMigrationText(analyze.state());
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
