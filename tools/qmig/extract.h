// Extracting a stream: its RAM blocks as sparse files, its device state and
// its configuration. Shared by `qmig extract` and `qmig diff`. Everything is
// written while the stream is read; what stays in memory is bounded by the
// number of RAM blocks and of decoded devices, never by their sizes.
#ifndef QMIG_TOOLS_QMIG_EXTRACT_H_
#define QMIG_TOOLS_QMIG_EXTRACT_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/unique_fd.h"
#include "tools/inspect/field_writer.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/ram_files.h"

namespace qmig {

// The fields of every decoded device, for comparing streams whose section
// ids differ: "path\tvalue" lines (paths escaped) in a file, one device's
// lines together. The index keeps, per "NAME#INSTANCE", where the lines of
// the last section of that device are (the last one sent wins, as on a
// destination).
class DeviceFieldLog final : public TextOut {
 public:
  struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
  };

  explicit DeviceFieldLog(UniqueFd fd) : fd_(std::move(fd)) {}

  VmstateFieldVisitor* Begin(const std::string& key);
  void End();
  // Writes what is buffered; the first write error.
  absl::Status Flush();

  void Write(absl::string_view text) override;
  int fd() const { return fd_.get(); }
  const std::map<std::string, Extent>& index() const { return index_; }

 private:
  UniqueFd fd_;
  std::string buffer_;
  uint64_t written_ = 0;  // bytes in the file, buffer included
  std::optional<std::string> key_;
  uint64_t start_ = 0;
  FieldWriter fields_{FieldFormat::kFlat, FieldTreeStyle::kAnalyzeMigration};
  std::map<std::string, Extent> index_;
  absl::Status status_;
};

// Where an extraction writes besides the RAM files; each may be null.
struct ExtractOutputs {
  TextOut* state = nullptr;           // analyze-migration.py's "-d state" view
  DeviceFieldLog* devices = nullptr;  // decoded devices' fields
};

struct Extracted {
  ParseResult result;
  std::vector<RamFileWriter::BlockFile> blocks;  // files closed
  uint64_t pages_in_other_blocks = 0;            // past kMaxRamBlocks
  uint64_t devices_decoded = 0;
  // Device sections present but not decoded ("name#instance", as the field
  // log's keys), up to kMaxUndecodedDevicesNamed; the rest only counted.
  std::set<std::string> devices_undecoded;
  uint64_t devices_undecoded_unnamed = 0;
  nlohmann::ordered_json configuration;
  std::optional<std::string> description;  // the trailer's JSON
};

// Parses `input` and writes its RAM blocks into the directory open at
// `ram_dir_fd` (shown as `ram_dir` in messages). A non-OK status is a
// failure to read or write files; a stream that does not parse is reported
// through `result` and extracted as far as it goes.
absl::Status ExtractStream(const std::string& input, int ram_dir_fd, const std::string& ram_dir,
                           const StreamFlags& flags, bool quiet, const std::string& progress_label,
                           const ExtractOutputs& outputs, Extracted* out);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_EXTRACT_H_
