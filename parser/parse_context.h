// ParseContext: what every decoder of one stream shares: the findings, the
// path of the record being decoded, the stack of PACKAGED blobs around it,
// and the conversion of reader failures into findings.
//
// Decoders return absl::Status. A non-OK status means "stop decoding this
// stream"; the reason has already been recorded as a finding through Fail().
// Problems that leave the framing intact are recorded with Report() and
// decoding goes on, so that one run shows every defect it can.
#ifndef QMIG_PARSER_PARSE_CONTEXT_H_
#define QMIG_PARSER_PARSE_CONTEXT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "parser/wire/finding.h"
#include "parser/wire/reader.h"
#include "parser/wire/status_macros.h"

namespace qmig {

// Names of bounded readers, as they appear in messages; reads past their end
// map to distinct finding codes.
inline constexpr absl::string_view kPackageLimitName = "PACKAGED blob";
inline constexpr absl::string_view kCommandLimitName = "command payload";
inline constexpr absl::string_view kReturnPathLimitName = "return-path message";

class ParseContext : public ReadErrorObserver {
 public:
  explicit ParseContext(FindingList* findings) : findings_(findings) {}

  // Records a finding at `offset` with the current path (plus `leaf`, if
  // any). Severity comes from the code's table entry.
  void Report(FindingCode code, uint64_t offset, std::string message, absl::string_view leaf = {},
              QemuReleases qemu_accepts = false);
  // Report() with an explicit severity.
  void ReportAs(Severity severity, FindingCode code, uint64_t offset, std::string message,
                absl::string_view leaf = {}, QemuReleases qemu_accepts = false);
  // Report() and return the status that stops decoding.
  absl::Status Fail(FindingCode code, uint64_t offset, std::string message,
                    absl::string_view leaf = {}, QemuReleases qemu_accepts = false);

  absl::Status OnReadFailure(ReadFailure failure, uint64_t offset, uint64_t needed,
                             uint64_t available, absl::string_view limit_name) override;

  // The path is a stack of elements joined with " > ".
  void PushPath(std::string element) { path_.push_back(std::move(element)); }
  void PopPath() { path_.pop_back(); }
  std::string PathString(absl::string_view leaf = {}) const;

  // PACKAGED blobs around the current record, outermost first.
  struct Package {
    uint64_t command_offset;  // the 0x08 byte of the PACKAGED command
    uint64_t blob_start;
    uint64_t length;
  };
  void PushPackage(Package package) { packages_.push_back(package); }
  void PopPackage() { packages_.pop_back(); }
  size_t package_depth() const { return packages_.size(); }
  const Package* innermost_package() const {
    return packages_.empty() ? nullptr : &packages_.back();
  }

  FindingList& findings() { return *findings_; }

  // Records a status that stopped decoding without a finding (an I/O error
  // from the source) as input.io_error. Does nothing for reported failures.
  void ReportUnexplained(const absl::Status& status, uint64_t offset);

 private:
  FindingList* findings_;
  bool failed_ = false;  // Fail() was called
  std::vector<std::string> path_;
  std::vector<Package> packages_;
};

// Pushes a path element for the lifetime of the scope.
class PathScope {
 public:
  PathScope(ParseContext& context, std::string element) : context_(context) {
    context_.PushPath(std::move(element));
  }
  ~PathScope() { context_.PopPath(); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  ParseContext& context_;
};

// Hex offset as used in paths and messages: 0x1f3a20.
std::string HexOffset(uint64_t offset);

}  // namespace qmig

#endif  // QMIG_PARSER_PARSE_CONTEXT_H_
