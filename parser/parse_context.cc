#include "parser/parse_context.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace qmig {

std::string HexOffset(uint64_t offset) { return absl::StrFormat("0x%x", offset); }

std::string ParseContext::PathString(absl::string_view leaf) const {
  std::string path = absl::StrJoin(path_, " > ");
  if (!leaf.empty()) absl::StrAppend(&path, path.empty() ? "" : " > ", leaf);
  return path;
}

void ParseContext::ReportAs(Severity severity, FindingCode code, uint64_t offset,
                            std::string message, absl::string_view leaf, QemuReleases qemu_accepts) {
  Finding finding;
  finding.code = code;
  finding.severity = severity;
  finding.offset = offset;
  if (const Package* package = innermost_package()) {
    if (offset >= package->blob_start) finding.package_offset = offset - package->blob_start;
  }
  finding.path = PathString(leaf);
  finding.message = std::move(message);
  finding.qemu_accepts = qemu_accepts;
  findings_->Add(std::move(finding));
}

void ParseContext::Report(FindingCode code, uint64_t offset, std::string message,
                          absl::string_view leaf, QemuReleases qemu_accepts) {
  ReportAs(DescribeFinding(code).severity, code, offset, std::move(message), leaf, qemu_accepts);
}

absl::Status ParseContext::Fail(FindingCode code, uint64_t offset, std::string message,
                                absl::string_view leaf, QemuReleases qemu_accepts) {
  failed_ = true;
  std::string status_message = absl::StrCat("offset ", offset, ": ", message);
  Report(code, offset, std::move(message), leaf, qemu_accepts);
  return absl::InvalidArgumentError(status_message);
}

void ParseContext::ReportUnexplained(const absl::Status& status, uint64_t offset) {
  if (status.ok() || failed_) return;
  Report(FindingCode::kIoError, offset, std::string(status.message()));
}

absl::Status ParseContext::OnReadFailure(ReadFailure failure, uint64_t offset, uint64_t needed,
                                         uint64_t available, absl::string_view limit_name) {
  if (failure == ReadFailure::kTruncated) {
    // The finding sits where the input ends; the message says what was cut.
    uint64_t end = offset + available;
    std::string message =
        absl::StrCat("truncated at offset ", end, ": a ", needed, "-byte read at offset ", offset,
                     " finds only ", available);
    if (const Package* package = innermost_package()) {
      absl::StrAppend(&message, " (inside PACKAGED@", HexOffset(package->command_offset),
                      " that declares ", package->length, " bytes)");
    }
    return Fail(FindingCode::kTruncated, end, std::move(message));
  }
  FindingCode code = FindingCode::kCommandLength;
  if (limit_name == kPackageLimitName) code = FindingCode::kPackageEndsMidRecord;
  if (limit_name == kReturnPathLimitName) code = FindingCode::kRpBadLength;
  return Fail(code, offset,
              absl::StrCat("a ", needed, "-byte read at offset ", offset, " runs past the end of the ",
                           limit_name, " (", available, " bytes left in it)"));
}

}  // namespace qmig
