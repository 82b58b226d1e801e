#include "tools/inspect/analyze_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/vmstate/bounded_json.h"
#include "parser/vmstate/description.h"

namespace qmig {

void AnalyzeMigrationSink::OnRecord(const Record& record) {
  if (record.kind != RecordKind::kRam && record.kind != RecordKind::kDevice &&
      record.kind != RecordKind::kIterable) {
    return;
  }
  const nlohmann::ordered_json& details = record.details;
  const uint32_t id = details["section_id"].get<uint32_t>();
  const std::string type = details["type"].get<std::string>();
  const bool opens = type == "START" || type == "FULL";
  auto known = keys_.find(id);
  if (!opens && known == keys_.end()) return;  // a recovery stream's continuation
  std::string key =
      opens ? absl::StrCat(details["name"].get<std::string>(), " (", id, ")") : known->second;
  if (opens) {
    // A section id opened again starts a new object in the first one's place.
    auto previous = keys_.find(id);
    if (previous != keys_.end() && previous->second != key) state_.erase(previous->second);
    keys_[id] = key;
    nlohmann::ordered_json fresh = nlohmann::ordered_json::object();
    if (record.kind == RecordKind::kRam) fresh["section sizes"] = nlohmann::ordered_json::object();
    if (record.kind == RecordKind::kDevice && details.contains("fields")) fresh = details["fields"];
    state_[key] = std::move(fresh);
  }
  if (record.kind == RecordKind::kRam && details.contains("mem_size")) {
    nlohmann::ordered_json& sizes = state_[key]["section sizes"];
    for (const nlohmann::ordered_json& block : details["mem_size"]) {
      sizes[block["name"].get<std::string>()] =
          absl::StrFormat("0x%016x", block["length"].get<uint64_t>());
    }
  }
}

std::string AnalyzeMigrationText(const nlohmann::ordered_json& value) {
  // nlohmann's pretty printer with a 4-space indent and ASCII escapes writes
  // the same bytes as Python's encoder for objects, arrays, strings and
  // booleans, the only values in this view.
  return value.dump(4, ' ', /*ensure_ascii=*/true,
                    nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

}  // namespace qmig

namespace qmig {

nlohmann::ordered_json ParseOrderedJson(absl::string_view text) {
  nlohmann::ordered_json value;
  if (!ParseBoundedJson(text, kMaxDescriptionNesting, value).ok()) {
    return nlohmann::ordered_json(nlohmann::ordered_json::value_t::discarded);
  }
  return value;
}

}  // namespace qmig
