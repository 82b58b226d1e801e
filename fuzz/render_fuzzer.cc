// Fuzz target: everything qmig renders for people and programs, over the
// whole-stream parser: the text and JSON records of `dump`, the
// analyze-migration view, `check`'s summary and findings in text and JSON,
// and `report`'s page. Names from the stream are bytes; whatever they hold,
// every JSON output must be valid JSON (UTF-8) that nothing had to replace,
// every text output printable ASCII lines, and the page's data must not be
// able to end its <script> element.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_support.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/dump_writers.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/report.h"
#include "tools/qmig/report_page.h"

namespace {

// A small map budget keeps the RAM map's allocation per input small.
constexpr uint64_t kMappedRam = uint64_t{64} << 20;
// Each output may be this many times the input, plus a constant: the widest
// renderings repeat a name per element of an array of one-byte fields, in
// text the whole path (shown up to 1 KiB). An output that grows faster than
// its input (a quadratic path) trips it.
constexpr size_t kJsonPerInputByte = 300;
constexpr size_t kTextPerInputByte = 1100;
constexpr size_t kOutputConstant = size_t{1} << 20;

class StringOut final : public qmig::TextOut {
 public:
  void Write(absl::string_view text) override { text_.append(text.data(), text.size()); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Sends every event to the three dump writers and the report collector.
class AllSinks final : public qmig::RecordSink {
 public:
  AllSinks() { json_.Begin(1, "input"); }
  qmig::VmstateFieldVisitor* OnDeviceFields(const qmig::Record& record) override {
    tee_.a = text_.OnDeviceFields(record);
    tee_.b = json_.OnDeviceFields(record);
    tee_.c = analyze_.OnDeviceFields(record);
    tee_.d = report_.OnDeviceFields(record);
    return &tee_;
  }
  void OnRecord(const qmig::Record& record) override {
    text_.OnRecord(record);
    json_.OnRecord(record);
    analyze_.OnRecord(record);
    report_.OnRecord(record);
  }
  void OnPackageBegin(const qmig::Record& package) override {
    text_.OnPackageBegin(package);
    json_.OnPackageBegin(package);
    report_.OnPackageBegin(package);
  }
  void OnPackageEnd(const qmig::Record& package) override {
    text_.OnPackageEnd(package);
    json_.OnPackageEnd(package);
  }
  void Finish(const nlohmann::ordered_json& tail) {
    json_.End(tail);
    analyze_.Finish();
  }

  StringOut text_out, json_out, analyze_out;
  qmig::ReportCollector& report() { return report_; }

 private:
  struct Tee final : qmig::VmstateFieldVisitor {
    qmig::VmstateFieldVisitor *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
    template <typename F>
    void Each(F f) {
      for (qmig::VmstateFieldVisitor* v : {a, b, c, d}) {
        if (v != nullptr) f(v);
      }
    }
    void OnField(const qmig::VmstateFieldView& field) override {
      Each([&](auto* v) { v->OnField(field); });
    }
    void OnStructBegin(const qmig::VmstateFieldView& field) override {
      Each([&](auto* v) { v->OnStructBegin(field); });
    }
    void OnStructEnd() override {
      Each([](auto* v) { v->OnStructEnd(); });
    }
    void OnSubsectionBegin(absl::string_view name, uint32_t version, uint64_t offset) override {
      Each([&](auto* v) { v->OnSubsectionBegin(name, version, offset); });
    }
    void OnSubsectionEnd() override {
      Each([](auto* v) { v->OnSubsectionEnd(); });
    }
  } tee_;
  qmig::TextDumpWriter text_{&text_out};
  qmig::JsonDumpWriter json_{&json_out};
  qmig::AnalyzeMigrationWriter analyze_{&analyze_out};
  qmig::ReportCollector report_;
};

// Whether `text` holds the JSON escape \ufffd: a backslash that is not itself
// escaped (an odd run of backslashes), then "ufffd". A name that holds the
// characters "\ufffd" comes out as "\\ufffd", which is not one.
bool HasReplacementEscape(const std::string& text) {
  for (size_t at = text.find("\\ufffd"); at != std::string::npos;
       at = text.find("\\ufffd", at + 1)) {
    size_t backslashes = 1;
    while (backslashes <= at && text[at - backslashes] == '\\') ++backslashes;
    if (backslashes % 2 == 1) return true;
  }
  return false;
}

void CheckJson(const std::string& text, absl::string_view what) {
  qmig::fuzz::Check(nlohmann::json::accept(text), what);
  // With ASCII escapes, a byte that had to be replaced shows as \ufffd.
  qmig::fuzz::Check(!HasReplacementEscape(text), what);
}

void CheckText(const std::string& text, absl::string_view what) {
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    qmig::fuzz::Check(c == '\n' || (u >= 0x20 && u < 0x7f), what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qmig::MemorySource source(absl::MakeConstSpan(data, size));
  AllSinks sinks;
  qmig::StreamInspector inspector(&sinks, kMappedRam);
  qmig::ParseOptions options;
  options.observer = &inspector;
  qmig::ParseResult result = qmig::ParseMigrationStream(source, options);
  inspector.Finish(result);

  nlohmann::ordered_json tail;
  tail["summary"] = qmig::SummaryToJson(result.summary);
  tail["findings"] = qmig::FindingsToJson(result.findings);
  sinks.Finish(tail);
  for (const std::string* output : {&sinks.json_out.text(), &sinks.analyze_out.text()}) {
    qmig::fuzz::Check(output->size() <= kJsonPerInputByte * size + kOutputConstant,
                      "a JSON output grows faster than its input");
  }
  qmig::fuzz::Check(sinks.text_out.text().size() <= kTextPerInputByte * size + kOutputConstant,
                    "the text output grows faster than its input");
  CheckJson(sinks.json_out.text(), "dump --json is not valid JSON");
  CheckJson(sinks.analyze_out.text(), "the analyze-migration view is not valid JSON");
  CheckText(sinks.text_out.text(), "the dump text holds a control or non-ASCII byte");
  CheckText(qmig::FormatSummary(result.summary, "input"), "the summary holds a control byte");
  for (const qmig::Finding& finding : result.findings.findings()) {
    // The parser escapes what it quotes; the renderers make sure again.
    CheckText(finding.path, "a finding's path holds a control or non-ASCII byte");
    CheckText(finding.message, "a finding's message holds a control or non-ASCII byte");
    CheckText(qmig::FormatFinding(finding), "a rendered finding holds a control byte");
  }

  nlohmann::ordered_json report =
      qmig::ReportData("input", size, result, sinks.report(), inspector.ram());
  const std::string embedded = qmig::EmbeddableJson(report);
  CheckJson(embedded, "the report's data is not valid JSON");
  qmig::fuzz::Check(embedded.find('<') == std::string::npos, "the report's data holds a '<'");
  qmig::fuzz::Check(qmig::RenderReportPage(report).ok(), "the report page does not render");
  return 0;
}
