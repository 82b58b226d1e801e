#include "tools/qmig/report_page.h"

#include <algorithm>

#include "absl/strings/str_replace.h"
#include "parser/wire/escape.h"
#include "tools/qmig/report.h"
#include "tools/qmig/report_template.h"

namespace qmig {
namespace {

constexpr char kDataMarker[] = "/*QMIG_REPORT_DATA*/";

}  // namespace

nlohmann::ordered_json ReportData(const std::string& input, uint64_t bytes,
                                  const ParseResult& result, const ReportCollector& collector,
                                  const RamMap& ram) {
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  size_t range_budget = kMaxReportRangesTotal;
  for (const RamMap::Block& block : ram.blocks()) {
    nlohmann::ordered_json pages = nlohmann::ordered_json::object();
    for (size_t kind = 1; kind < kPageKindCount; ++kind) {
      pages[std::string(PageKindName(static_cast<PageKind>(kind)))] = block.records[kind];
    }
    RangeList ranges = ram.Ranges(block, std::min(kMaxReportRanges, range_budget));
    range_budget -= ranges.ranges().size();
    blocks.push_back({{"name", EscapeName(block.name)},
                      {"length", block.length},
                      {"page_size", block.page_size},
                      {"pages", pages},
                      {"ranges", ranges.ToJson()},
                      {"ranges_dropped", ranges.dropped()}});
  }
  return {{"schema_version", kJsonSchemaVersion},
          {"input", input},
          {"bytes", bytes},
          {"valid", result.valid()},
          {"errors", result.findings.error_count()},
          {"warnings", result.findings.warning_count()},
          {"summary", SummaryToJson(result.summary)},
          {"records", collector.records_},
          {"records_dropped", collector.records_dropped_},
          {"ram_blocks", std::move(blocks)},
          {"devices", collector.devices_},
          {"devices_dropped", collector.devices_dropped_},
          {"findings", FindingsToJson(result.findings)},
          {"timeline", nullptr}};
}

std::string EmbeddableJson(const nlohmann::ordered_json& data) {
  // Inside <script>, "</script" would end the element and "<!--" change how
  // the rest is read; with ASCII escapes a '<' can only stand in a string,
  // where \u003c means the same.
  return absl::StrReplaceAll(
      data.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::ordered_json::error_handler_t::replace),
      {{"<", "\\u003c"}});
}

absl::StatusOr<std::string> RenderReportPage(const nlohmann::ordered_json& data) {
  std::string page(kReportTemplate);
  size_t marker = page.find(kDataMarker);
  if (marker == std::string::npos) {
    return absl::InternalError("the report template has no data marker");
  }
  page.replace(marker, sizeof(kDataMarker) - 1, EmbeddableJson(data));
  return page;
}

}  // namespace qmig
