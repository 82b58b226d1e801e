// The data of `qmig report`'s page and the page itself. ReportCollector
// gathers, bounded, what the page shows of a stream's records and devices;
// ReportData puts it together with the summary, RAM and findings (schema in
// docs/JSON.md); RenderReportPage embeds it in report_template.html.
#ifndef QMIG_TOOLS_QMIG_REPORT_PAGE_H_
#define QMIG_TOOLS_QMIG_REPORT_PAGE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/limits.h"
#include "tools/inspect/field_writer.h"
#include "tools/inspect/ram_map.h"
#include "tools/inspect/stream_inspector.h"

namespace qmig {

// A device's field values as the page lists them: FieldWriter's kFlat lines
// ("path\tvalue\n", arriving in pieces) turned into [path, value] pairs, or
// [path, cut value, full length] for a value longer than
// kMaxReportValueChars. The values listed are the device's first ones: once
// a cap is reached, the rest are left out (the FieldWriter still counts
// them). Memory is bounded by the caps above whatever the lines' lengths.
class ReportValueList final : public TextOut {
 public:
  // `budget_values` and `budget_text` are shared by all devices.
  ReportValueList(size_t* budget_values, size_t* budget_text)
      : budget_values_(budget_values), budget_text_(budget_text) {}

  void Begin();
  // Ends the device's values (a last line without its newline counts too).
  void End();
  void Write(absl::string_view text) override;

  nlohmann::ordered_json& values() { return values_; }

 private:
  void EndLine();

  size_t* budget_values_;
  size_t* budget_text_;
  nlohmann::ordered_json values_ = nlohmann::ordered_json::array();
  bool full_ = false;  // a cap was reached: the rest of the device is not listed
  // The line being read: its path (up to the tab) and value, each kept up to
  // its cap, with their full lengths.
  bool in_value_ = false;
  bool line_started_ = false;
  std::string path_head_, path_tail_, value_;
  uint64_t path_length_ = 0, value_length_ = 0;
};

class ReportCollector final : public RecordSink {
 public:
  VmstateFieldVisitor* OnDeviceFields(const Record&) override;
  void OnRecord(const Record& record) override;
  void OnPackageBegin(const Record& package) override { Add(package); }

  nlohmann::ordered_json records_ = nlohmann::ordered_json::array();
  uint64_t records_dropped_ = 0;
  nlohmann::ordered_json devices_ = nlohmann::ordered_json::array();
  uint64_t devices_dropped_ = 0;
  // PINGs in stream order (first kMaxReportPings): value and offset.
  std::vector<std::pair<uint32_t, uint64_t>> pings_;

 private:
  void Add(const Record& record);

  size_t late_commands_ = 0;
  size_t value_budget_ = kMaxReportValues;
  size_t text_budget_ = kMaxReportValueText;
  ReportValueList values_{&value_budget_, &text_budget_};
  FieldWriter fields_{FieldFormat::kFlat, FieldTreeStyle::kNested};
  bool fields_open_ = false;
};

// Everything the page shows but the postcopy timeline ("timeline": null).
// `bytes` is the stream's size, or how far it was read.
nlohmann::ordered_json ReportData(const std::string& input, uint64_t bytes,
                                  const ParseResult& result, const ReportCollector& collector,
                                  const RamMap& ram);

// The page with `data` embedded where the template expects it.
absl::StatusOr<std::string> RenderReportPage(const nlohmann::ordered_json& data);

// `data` as JSON that can stand inside a <script> element.
std::string EmbeddableJson(const nlohmann::ordered_json& data);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_REPORT_PAGE_H_
