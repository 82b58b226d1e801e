// qmig schema STREAM|DUMP [-o FILE]: writes a vmstate description that
// --schema accepts, so that streams without one (postcopy, suppress-vmdesc,
// old machine types) can be decoded: from a stream's VMDESCRIPTION trailer,
// or checked and passed on from QEMU's -dump-vmstate output.
//
// qmig desc FILE: the description in use for FILE (its trailer, or --schema),
// printed as analyze-migration.py's `-d desc` prints it.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/trailer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/limits.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/dump_writers.h"
#include "tools/qmig/commands.h"

namespace qmig {
namespace {

// Reads the input to its end keeping only the last `keep` bytes, so that a
// pipe of any length needs bounded memory.
absl::StatusOr<std::vector<uint8_t>> ReadTail(ByteSource& source, size_t keep) {
  std::vector<uint8_t> tail;
  uint64_t offset = 0;
  while (true) {
    absl::StatusOr<absl::Span<const uint8_t>> view = source.View(offset, 1);
    if (!view.ok()) return view.status();
    if (view->empty()) break;
    size_t take = std::min(view->size(), kMaxContiguousView);
    tail.insert(tail.end(), view->begin(), view->begin() + take);
    if (tail.size() > 2 * keep) tail.erase(tail.begin(), tail.end() - keep);
    offset += take;
  }
  if (tail.size() > keep) tail.erase(tail.begin(), tail.end() - keep);
  return tail;
}

// A description's JSON text: the input itself when it is a JSON document
// (a description file, or -dump-vmstate output), else the stream's trailer.
// The bool says which.
absl::StatusOr<std::pair<std::string, bool>> DescriptionText(const std::string& path) {
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(path);
  if (!input.ok()) return input.status();
  ByteSource& source = (*input)->source();
  ParseLimits limits;
  // A stream starts with the QEVM magic or a command byte; JSON with '{'.
  absl::StatusOr<absl::Span<const uint8_t>> head = source.View(0, 1);
  if (!head.ok()) return head.status();
  if (!head->empty() && (absl::ascii_isspace((*head)[0]) || (*head)[0] == '{')) {
    absl::StatusOr<bool> whole = source.BufferToEnd(0, limits.max_schema_file_bytes);
    if (!whole.ok()) return whole.status();
    if (!*whole) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is over the limit of ",
                                                     limits.max_schema_file_bytes,
                                                     " bytes for a description"));
    }
    absl::StatusOr<absl::Span<const uint8_t>> all = source.View(0, 1);
    if (!all.ok()) return all.status();
    return std::make_pair(std::string(all->begin(), all->end()), true);
  }
  absl::StatusOr<std::vector<uint8_t>> tail =
      ReadTail(source, static_cast<size_t>(limits.max_vmdesc_bytes) + 16);
  if (!tail.ok()) {
    return absl::Status(tail.status().code(),
                        absl::StrCat("reading ", path, ": ", tail.status().message()));
  }
  std::optional<TrailerLocation> trailer = LocateTrailer(*tail, 0, limits.max_vmdesc_bytes);
  if (!trailer.has_value()) {
    return absl::NotFoundError(absl::StrCat(
        path,
        " ends without a VMDESCRIPTION trailer (postcopy, suppress-vmdesc or an old machine "
        "type); take the description from a precopy stream of the same machine"));
  }
  return std::make_pair(std::string(trailer->json), false);
}

}  // namespace

int RunSchema(const std::vector<std::string>& operands, const SchemaOptions& options) {
  if (operands.size() != 1) {
    return UsageError("schema", "takes one STREAM or -dump-vmstate FILE (or - for stdin)");
  }
  absl::StatusOr<std::pair<std::string, bool>> text = DescriptionText(operands[0]);
  if (!text.ok()) {
    std::cerr << "qmig: " << text.status().message() << "\n";
    return absl::IsNotFound(text.status()) ? kExitInvalid : kExitUsage;
  }
  const auto& [json, is_document] = *text;
  absl::StatusOr<VmDescription> description = ParseVmDescription(json);
  if (!description.ok()) {
    std::cerr << "qmig: " << (is_document ? "" : "the trailer of ") << operands[0]
              << " is not a usable description: " << description.status().message() << "\n";
    return kExitInvalid;
  }
  if (options.output_path.empty() || options.output_path == "-") {
    std::cout << json << (json.empty() || json.back() != '\n' ? "\n" : "");
  } else {
    std::ofstream out(options.output_path, std::ios::binary);
    out << json << (json.empty() || json.back() != '\n' ? "\n" : "");
    if (!out.good()) {
      std::cerr << "qmig: cannot write " << options.output_path << "\n";
      return kExitUsage;
    }
  }
  if (!options.output.quiet) {
    if (description->from_dump()) {
      std::cerr << "qmig: -dump-vmstate output of machine '" << description->dump_machine << "', "
                << description->vmsd_versions.size()
                << " vmsds: --schema checks section versions and the machine with it; it has no "
                   "field sizes or types, so device sections stay unverified (a precopy stream's "
                   "trailer decodes them)\n";
    } else {
      std::cerr << "qmig: " << description->devices.size() << " device descriptions from "
                << operands[0] << "\n";
    }
  }
  return kExitValid;
}

int RunDesc(const std::vector<std::string>& operands, const DescOptions& options) {
  if (operands.size() != 1) return UsageError("desc", "takes one FILE (or - for stdin)");
  std::string json;
  if (!options.schema_path.empty()) {
    absl::StatusOr<std::pair<std::string, bool>> text = DescriptionText(options.schema_path);
    if (!text.ok()) {
      std::cerr << "qmig: " << text.status().message() << "\n";
      return kExitUsage;
    }
    json = std::move(text->first);
  } else {
    absl::StatusOr<std::pair<std::string, bool>> text = DescriptionText(operands[0]);
    if (!text.ok()) {
      std::cerr << "qmig: " << text.status().message() << " (or pass --schema)\n";
      return absl::IsNotFound(text.status()) ? kExitInvalid : kExitUsage;
    }
    json = std::move(text->first);
  }
  // Checked first: the description parser bounds nesting before the
  // document is parsed again in order for printing.
  absl::StatusOr<VmDescription> description = ParseVmDescription(json);
  if (!description.ok()) {
    std::cerr << "qmig: not a usable description: " << description.status().message() << "\n";
    return kExitInvalid;
  }
  OstreamOut out(std::cout);
  absl::Status written = WritePrettyJson(json, &out);
  if (!written.ok()) {
    std::cerr << "qmig: the description is not JSON: " << written.message() << "\n";
    return kExitInvalid;
  }
  return kExitValid;
}

}  // namespace qmig
