// Extracting a stream: its RAM blocks as sparse files, its device state and
// its configuration. Shared by `qmig extract` and `qmig diff`.
#ifndef QMIG_TOOLS_QMIG_EXTRACT_H_
#define QMIG_TOOLS_QMIG_EXTRACT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/ram_files.h"

namespace qmig {

struct Extracted {
  ParseResult result;
  std::vector<RamFileWriter::BlockFile> blocks;  // files closed
  // analyze-migration.py's "-d state" view: "NAME (ID)" -> fields.
  nlohmann::ordered_json state;
  // Decoded device sections by "NAME#INSTANCE" (the last one sent wins),
  // for comparing streams whose section ids differ.
  std::map<std::string, nlohmann::ordered_json> devices;
  nlohmann::ordered_json configuration;
  std::optional<std::string> description;  // the trailer's JSON
};

// Parses `input` and writes its RAM blocks to `ram_dir` (which must exist).
// A non-OK status is a failure to read or write files; a stream that does
// not parse is reported through `result` and extracted as far as it goes.
absl::Status ExtractStream(const std::string& input, const std::string& ram_dir,
                           const CommonOptions& options, const std::string& progress_label,
                           Extracted* out);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_EXTRACT_H_
