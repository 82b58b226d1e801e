#include "parser/wire/finding.h"

#include <utility>

namespace qmig {

namespace {
constexpr FindingInfo kInfos[] = {
#define QMIG_FINDING_INFO(name, code, severity, summary) \
  {FindingCode::name, code, Severity::severity, summary},
    QMIG_FINDING_CODES(QMIG_FINDING_INFO)
#undef QMIG_FINDING_INFO
};
}  // namespace

absl::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kNote: return "note";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "error";
}

const FindingInfo& DescribeFinding(FindingCode code) {
  return kInfos[static_cast<size_t>(code)];
}

absl::Span<const FindingInfo> AllFindingInfos() { return kInfos; }

void FindingList::Add(Finding finding) {
  if (finding.severity == Severity::kError) ++errors_;
  if (finding.severity == Severity::kWarning) ++warnings_;
  if (findings_.size() >= max_kept_) {
    ++dropped_;
    return;
  }
  findings_.push_back(std::move(finding));
}

bool FindingList::HasCode(FindingCode code) const {
  for (const Finding& finding : findings_) {
    if (finding.code == code) return true;
  }
  return false;
}

}  // namespace qmig
