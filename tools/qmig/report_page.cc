#include "tools/qmig/report_page.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "parser/wire/escape.h"
#include "tools/qmig/report.h"
#include "tools/qmig/report_template.h"

namespace qmig {
namespace {

constexpr char kDataMarker[] = "/*QMIG_REPORT_DATA*/";

// A cut path keeps this much of its start and of its end.
constexpr size_t kPathHalf = kMaxReportPathChars / 2;

}  // namespace

void ReportValueList::Begin() {
  values_ = nlohmann::ordered_json::array();
  full_ = false;
  in_value_ = false;
  line_started_ = false;
  path_head_.clear();
  path_tail_.clear();
  value_.clear();
  path_length_ = 0;
  value_length_ = 0;
}

void ReportValueList::End() {
  if (line_started_) EndLine();
}

void ReportValueList::Write(absl::string_view text) {
  // Once a cap is reached the device's remaining lines are only counted, by
  // the FieldWriter; nothing here grows.
  if (full_) return;
  for (char c : text) {
    if (c == '\n') {
      EndLine();
      if (full_) return;
      continue;
    }
    line_started_ = true;
    if (in_value_) {
      if (value_.size() < kMaxReportValueChars) value_.push_back(c);
      ++value_length_;
    } else if (c == '\t') {
      in_value_ = true;
    } else {
      if (path_head_.size() < kMaxReportPathChars) {
        path_head_.push_back(c);
      } else {
        path_tail_.push_back(c);
        // Only the last kPathHalf characters can be shown.
        if (path_tail_.size() >= 2 * kPathHalf) path_tail_.erase(0, path_tail_.size() - kPathHalf);
      }
      ++path_length_;
    }
  }
}

void ReportValueList::EndLine() {
  std::string path;
  if (path_length_ <= kMaxReportPathChars) {
    path = std::move(path_head_);
  } else {
    const std::string all = path_head_ + path_tail_;
    path = absl::StrCat(all.substr(0, kPathHalf), "...", all.substr(all.size() - kPathHalf));
  }
  const size_t text = path.size() + value_.size();
  if (values_.size() >= kMaxReportDeviceValues || *budget_values_ == 0 || *budget_text_ < text) {
    full_ = true;
  } else {
    --*budget_values_;
    *budget_text_ -= text;
    nlohmann::ordered_json entry = {std::move(path), value_};
    if (value_length_ > value_.size()) entry.push_back(value_length_);
    values_.push_back(std::move(entry));
  }
  in_value_ = false;
  line_started_ = false;
  path_head_.clear();
  path_tail_.clear();
  value_.clear();
  path_length_ = 0;
  value_length_ = 0;
}

VmstateFieldVisitor* ReportCollector::OnDeviceFields(const Record&) {
  // A device past kMaxReportDevices is not listed: nothing to collect.
  if (devices_.size() >= kMaxReportDevices) return nullptr;
  values_.Begin();
  fields_.Begin(&values_);
  fields_open_ = true;
  return &fields_;
}

void ReportCollector::OnRecord(const Record& record) {
  Add(record);
  const nlohmann::ordered_json& d = record.details;
  if (record.kind == RecordKind::kCommand && pings_.size() < kMaxReportPings &&
      d.value("command", "") == "PING" && d.contains("payload") && d["payload"].contains("value")) {
    pings_.emplace_back(d["payload"]["value"].get<uint32_t>(), record.offset);
  }
  if (record.kind != RecordKind::kDevice) return;
  uint64_t fields = 0;
  nlohmann::ordered_json values = nlohmann::ordered_json::array();
  if (fields_open_) {
    fields_.End();
    values_.End();
    fields_open_ = false;
    fields = fields_.values();
    values = std::move(values_.values());
  }
  if (devices_.size() >= kMaxReportDevices) {
    ++devices_dropped_;
    return;
  }
  const bool decoded = d["decoded"].get<bool>();
  if (!decoded) {
    fields = 0;
    values = nlohmann::ordered_json::array();
  }
  const uint64_t listed = values.size();
  devices_.push_back({{"name", d["name"]},
                      {"instance", d["instance_id"]},
                      {"version", d["version"]},
                      {"offset", record.offset},
                      {"size", record.size},
                      {"fields", fields},
                      {"decoded", decoded},
                      {"values", std::move(values)},
                      {"values_dropped", fields - listed}});
}

void ReportCollector::Add(const Record& record) {
  if (records_.size() >= kMaxReportRecords) {
    const bool command = record.kind == RecordKind::kCommand || record.kind == RecordKind::kPackage;
    if (!command || late_commands_ >= kMaxReportLateCommands) {
      ++records_dropped_;
      return;
    }
    ++late_commands_;
  }
  records_.push_back({{"offset", record.offset},
                      {"size", record.size},
                      {"kind", RecordKindName(record.kind)},
                      {"label", record.label},
                      {"depth", record.depth}});
}

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
          {"findings_dropped", result.findings.dropped()},
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
