#include "emulator/recovery.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qmig {

void MergeRecovered(ParseResult& merged, ParseResult next, uint64_t recovery) {
  FindingList findings(merged.findings.max_kept());
  for (const Finding& finding : merged.findings.findings()) {
    Finding copy = finding;
    if (copy.code == FindingCode::kTruncated || copy.code == FindingCode::kIoError) {
      copy.severity = Severity::kNote;
      copy.message = absl::StrCat("the connection broke here (", copy.message,
                                  "); the source resumed on a new connection");
    }
    findings.Add(std::move(copy));
  }
  for (const Finding& finding : next.findings.findings()) {
    Finding copy = finding;
    copy.path = absl::StrCat("recovery ", recovery, copy.path.empty() ? "" : " > ", copy.path);
    findings.Add(std::move(copy));
  }
  findings.AddUnstoredCountsOf(merged.findings);
  findings.AddUnstoredCountsOf(next.findings);
  merged.findings = std::move(findings);
  merged.summary.eof_seen = next.summary.eof_seen;
  merged.summary.postcopy = std::max(merged.summary.postcopy, next.summary.postcopy);
  merged.summary.bytes += next.summary.bytes;
  for (const auto& [name, count] : next.summary.commands) merged.summary.commands[name] += count;
  for (const auto& [name, count] : next.summary.sections) merged.summary.sections[name] += count;
}

// The parser's read that the stop cut short is no fault of the stream: a
// note where reading stopped. The emulator's finding says why.
}  // namespace qmig
