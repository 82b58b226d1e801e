// The device-state view of scripts/analyze-migration.py (`-d state`), built
// from records: one object per section in the order the sections were first
// opened, keyed "NAME (SECTION_ID)". RAM sections hold their "section sizes";
// device sections their field trees. Serialised with
// AnalyzeMigrationText(), the output equals that script's byte for byte on
// every stream the script can read, and keeps the same shape on the streams
// it cannot (postcopy, xbzrle, compression, dirty bitmaps, no trailer).
#ifndef QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_
#define QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>

#include "nlohmann/json.hpp"
#include "tools/inspect/stream_inspector.h"

namespace qmig {

class AnalyzeMigrationSink final : public RecordSink {
 public:
  void OnRecord(const Record& record) override;
  const nlohmann::ordered_json& state() const { return state_; }

 private:
  nlohmann::ordered_json state_ = nlohmann::ordered_json::object();
  std::map<uint32_t, std::string> keys_;  // section id -> key in state_
};

// `value` as Python's json.JSONEncoder(indent=4, separators=(',', ': '))
// writes it, followed by a newline (as print() adds).
std::string AnalyzeMigrationText(const nlohmann::ordered_json& value);

// A JSON text from a stream, parsed keeping key order; a discarded value when
// it is not JSON or nests deeper than kMaxDescriptionNesting.
nlohmann::ordered_json ParseOrderedJson(absl::string_view text);

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_
