// The data of `qmig report`'s page and the page itself. ReportCollector
// gathers, bounded, what the page shows of a stream's records and devices;
// ReportData puts it together with the summary, RAM and findings (schema in
// docs/JSON.md); RenderReportPage embeds it in report_template.html.
#ifndef QMIG_TOOLS_QMIG_REPORT_PAGE_H_
#define QMIG_TOOLS_QMIG_REPORT_PAGE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "tools/inspect/field_writer.h"
#include "tools/inspect/ram_map.h"
#include "tools/inspect/stream_inspector.h"

namespace qmig {

// Bounds on what the page is given, so it stays quick to load.
inline constexpr size_t kMaxReportRecords = 20000;
inline constexpr size_t kMaxReportDevices = 20000;
inline constexpr size_t kMaxReportRanges = 4096;        // per block
inline constexpr size_t kMaxReportRangesTotal = 65536;  // in all blocks

class ReportCollector final : public RecordSink {
 public:
  VmstateFieldVisitor* OnDeviceFields(const Record&) override {
    fields_.Reset();
    return &fields_;
  }
  void OnRecord(const Record& record) override {
    Add(record);
    if (record.kind == RecordKind::kDevice) {
      const nlohmann::ordered_json& d = record.details;
      const bool decoded = d["decoded"].get<bool>();
      if (devices_.size() >= kMaxReportDevices) {
        ++devices_dropped_;
        return;
      }
      devices_.push_back({{"name", d["name"]},
                          {"instance", d["instance_id"]},
                          {"version", d["version"]},
                          {"offset", record.offset},
                          {"size", record.size},
                          {"fields", decoded ? fields_.values() : 0},
                          {"decoded", decoded}});
    }
  }
  void OnPackageBegin(const Record& package) override { Add(package); }

  nlohmann::ordered_json records_ = nlohmann::ordered_json::array();
  uint64_t records_dropped_ = 0;
  nlohmann::ordered_json devices_ = nlohmann::ordered_json::array();
  uint64_t devices_dropped_ = 0;

 private:
  FieldCounter fields_;

  void Add(const Record& record) {
    if (records_.size() >= kMaxReportRecords) {
      ++records_dropped_;
      return;
    }
    records_.push_back({{"offset", record.offset},
                        {"size", record.size},
                        {"kind", RecordKindName(record.kind)},
                        {"label", record.label},
                        {"depth", record.depth}});
  }
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
