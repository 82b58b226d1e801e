// Rendering parse results for people (a one-screen summary) and for programs
// (JSON with the schema documented in docs/JSON.md).
#ifndef QMIG_TOOLS_QMIG_REPORT_H_
#define QMIG_TOOLS_QMIG_REPORT_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/finding.h"

namespace qmig {

// Version of the --json schema; bumped on any incompatible change.
inline constexpr int kJsonSchemaVersion = 1;

// A command's --json document: {"schema_version": N} and then `members`,
// indented, ASCII-only (invalid UTF-8 becomes U+FFFD; names from the stream
// are escaped before they get here), ending in a newline. Every command's
// JSON goes through it. `Json` is nlohmann::json or nlohmann::ordered_json.
template <typename Json>
std::string JsonDocument(const Json& members) {
  Json out = {{"schema_version", kJsonSchemaVersion}};
  for (const auto& member : members.items()) out[member.key()] = member.value();
  return out.dump(2, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace) + "\n";
}

nlohmann::json FindingToJson(const Finding& finding);
nlohmann::json FindingsToJson(const FindingList& findings);
// Every code counted, stored or not: {"code": count}, codes with none left out.
nlohmann::json FindingCountsToJson(const FindingList& findings);
nlohmann::json SummaryToJson(const StreamSummary& summary);

std::string FormatFinding(const Finding& finding);
// Prints the findings (only errors when `errors_only`), then the counts of
// every code and the verdict. Warnings of a code that occurs more than once
// are one line, "warning N x CODE, first @...", unless `verbose`.
void PrintFindings(const FindingList& findings, bool errors_only, bool verbose = false);
// "warning N x CODE, first @OFFSET PATH: MESSAGE" for `count` findings of
// `first`'s code.
std::string FormatFindingGroup(const Finding& first, uint64_t count);
// The p-th percentile (0..1) of `values`; 0 when empty.
double Percentile(std::vector<double> values, double p);
std::string FormatSummary(const StreamSummary& summary, const std::string& input_name);
std::string FormatVerdict(const FindingList& findings);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_REPORT_H_
