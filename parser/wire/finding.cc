#include "parser/wire/finding.h"

#include <algorithm>
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

uint64_t& FindingList::SeverityCount(Severity severity) {
  switch (severity) {
    case Severity::kError:
      return errors_;
    case Severity::kWarning:
      return warnings_;
    case Severity::kNote:
      break;
  }
  return notes_;
}

void FindingList::Count(FindingCode code, Severity severity, uint64_t n) {
  counts_[static_cast<size_t>(code)] += n;
  SeverityCount(severity) += n;
}

void FindingList::Add(Finding finding) {
  Count(finding.code, finding.severity, 1);
  if (findings_.size() < max_kept_) {
    if (finding.severity != Severity::kError) {
      ++stored_non_errors_;
      errors_from_ = findings_.size() + 1;
    }
    findings_.push_back(std::move(finding));
    return;
  }
  ++dropped_;
  if (finding.severity == Severity::kError) EvictForError(finding);
}

bool FindingList::EvictForError(Finding& finding) {
  if (stored_non_errors_ == 0) return false;
  // The latest stored non-error sits before errors_from_; errors_from_ only
  // decreases, so all searches together look at each finding once.
  size_t victim = errors_from_;
  while (findings_[victim - 1].severity == Severity::kError) --victim;
  --victim;
  // What follows the victim is errors, moved down by one to keep the order.
  std::move(findings_.begin() + victim + 1, findings_.end(), findings_.begin() + victim);
  findings_.back() = std::move(finding);
  --stored_non_errors_;
  errors_from_ = victim;
  return true;
}

void FindingList::AddUnstoredCountsOf(const FindingList& other) {
  std::array<uint64_t, kFindingCodeCount> stored = {};
  uint64_t stored_by_severity[3] = {};
  for (const Finding& finding : other.findings_) {
    ++stored[static_cast<size_t>(finding.code)];
    ++stored_by_severity[static_cast<size_t>(finding.severity)];
  }
  for (size_t code = 0; code < kFindingCodeCount; ++code) {
    counts_[code] += other.counts_[code] - stored[code];
  }
  errors_ += other.errors_ - stored_by_severity[static_cast<size_t>(Severity::kError)];
  warnings_ += other.warnings_ - stored_by_severity[static_cast<size_t>(Severity::kWarning)];
  notes_ += other.notes_ - stored_by_severity[static_cast<size_t>(Severity::kNote)];
  dropped_ += other.dropped_;
}

void FindingList::Recount(Severity from, Severity to) {
  if (SeverityCount(from) == 0) return;
  --SeverityCount(from);
  ++SeverityCount(to);
}

}  // namespace qmig
