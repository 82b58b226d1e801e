#include "emulator/stoppable_source.h"

#include <utility>

namespace qmig {

void ExplainStop(ParseResult& parse) {
  FindingList findings(parse.findings.max_kept());
  bool stored = false;
  uint64_t io_errors = 0;
  for (const Finding& finding : parse.findings.findings()) {
    Finding copy = finding;
    io_errors += copy.code == FindingCode::kIoError;
    if (copy.code == FindingCode::kIoError && copy.message == kStoppedMessage) {
      stored = true;
      copy.severity = Severity::kNote;
      copy.message = "the destination stopped reading here at the resident memory limit";
    }
    findings.Add(std::move(copy));
  }
  findings.AddUnstoredCountsOf(parse.findings);
  // A list full of errors may have left it unstored, counted as an error.
  if (!stored && parse.findings.count(FindingCode::kIoError) > io_errors) {
    findings.Recount(Severity::kError, Severity::kNote);
  }
  parse.findings = std::move(findings);
}

}  // namespace qmig
