// The views of QEMU's scripts/analyze-migration.py, written as they are
// read: `-d state` by AnalyzeMigrationWriter, `-d desc` by WritePrettyJson.
// Their output equals that script's byte for byte on every stream the script
// can read, and keeps the same shape on the streams it cannot (postcopy,
// xbzrle, compression, dirty bitmaps, no trailer). Nothing is kept but the
// section at hand, so memory stays bounded on a stream of any size.
#ifndef QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_
#define QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "tools/inspect/field_writer.h"
#include "tools/inspect/stream_inspector.h"

namespace qmig {

// `-d state`: one object per section in the order the sections open, keyed
// "NAME (SECTION_ID)"; RAM sections hold their "section sizes", device
// sections their fields. Two differences from the script, on streams no QEMU
// sends: a section id opened a second time, and a MEM_SIZE list outside the
// RAM section's START, are written where they come instead of replacing
// what was written before.
class AnalyzeMigrationWriter final : public RecordSink {
 public:
  explicit AnalyzeMigrationWriter(TextOut* out) : out_(out) {}

  VmstateFieldVisitor* OnDeviceFields(const Record& record) override;
  void OnRecord(const Record& record) override;
  // Ends the document (call once, after the parse).
  void Finish();

 private:
  // Writes the key of the section a record opens; false when it opens none.
  bool StartSection(const Record& record);

  TextOut* out_;
  bool any_section_ = false;
  FieldWriter fields_{FieldFormat::kPrettyJson, FieldTreeStyle::kAnalyzeMigration};
  std::optional<uint64_t> fields_of_;  // offset of the device being written
};

// `value` as Python's json.JSONEncoder(indent=4, separators=(',', ': '))
// writes it, followed by a newline (as print() adds).
std::string AnalyzeMigrationText(const nlohmann::ordered_json& value);

// A JSON document rewritten as AnalyzeMigrationText would write it, streamed
// from SAX events without building a tree (a repeated key is written each
// time it comes). Fails on text that is not JSON or nests deeper than
// kMaxDescriptionNesting, before or after writing part of it.
absl::Status WritePrettyJson(absl::string_view json, TextOut* out);

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_ANALYZE_FORMAT_H_
