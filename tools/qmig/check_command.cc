#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

int UsageError(const std::string& message) {
  std::cerr << "qmig: " << message << "\n";
  return kExitUsage;
}

// Reads a --schema file, bounded by the limit.
absl::StatusOr<VmDescription> LoadSchema(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open schema ", path));
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema ", path, " is over the limit of ", max_bytes, " bytes"));
    }
  }
  absl::StatusOr<VmDescription> description = ParseVmDescription(text);
  if (!description.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema ", path, ": ", description.status().message()));
  }
  return description;
}

}  // namespace

int RunCheck(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 1) return UsageError("check takes one FILE (or - for stdin)");
  ParseOptions parse_options;
  if (options.profile != "auto") {
    const Profile* profile = FindProfileByName(options.profile);
    if (profile == nullptr) return UsageError(absl::StrCat("unknown profile '", options.profile, "'"));
    parse_options.profile = profile->id;
  }
  if (options.max_package > kMaxPackageLimit) {
    return UsageError(absl::StrCat("--max_package is at most ", kMaxPackageLimit));
  }
  parse_options.limits.max_package_bytes = options.max_package;
  std::optional<VmDescription> schema;
  if (!options.schema_path.empty()) {
    absl::StatusOr<VmDescription> loaded =
        LoadSchema(options.schema_path, parse_options.limits.max_schema_file_bytes);
    if (!loaded.ok()) return UsageError(std::string(loaded.status().message()));
    schema = std::move(*loaded);
    parse_options.schema = &*schema;
  }

  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenedInput::Open(operands[0]);
  if (!input.ok()) return UsageError(std::string(input.status().message()));

  ParseResult result = ParseMigrationStream((*input)->source(), parse_options);
  if (result.findings.HasCode(FindingCode::kIoError)) {
    std::cerr << "qmig: I/O error reading " << operands[0] << "\n";
  }

  if (options.json) {
    nlohmann::json out = {
        {"schema_version", kJsonSchemaVersion},
        {"input", operands[0]},
        {"kind", "main"},
        {"valid", result.valid()},
        {"errors", result.findings.error_count()},
        {"warnings", result.findings.warning_count()},
        {"findings_dropped", result.findings.dropped()},
        {"summary", SummaryToJson(result.summary)},
        {"findings", FindingsToJson(result.findings)},
    };
    std::cout << out.dump(2) << "\n";
  } else {
    if (!options.quiet) std::cout << FormatSummary(result.summary, operands[0]);
    for (const Finding& finding : result.findings.findings()) {
      if (options.quiet && finding.severity != Severity::kError) continue;
      std::cout << FormatFinding(finding) << "\n";
    }
    std::cout << FormatVerdict(result.findings) << "\n";
  }
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
