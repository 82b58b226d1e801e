// Device fields, rendered while the interpreter decodes them. A FieldWriter
// is a VmstateFieldVisitor that writes each field as it arrives, so memory
// does not grow with a device's size: it keeps only the containers open
// around the current field.
//
// The tree rendered is the one QEMU's scripts/analyze-migration.py builds:
// field name -> value in wire order; a field with an element index joins the
// array of that name; structs and subsections are objects under their names.
// Values are formatted as that script formats them, so that
// `qmig dump --format=analyze-migration` matches it byte for byte and users
// meet one notation everywhere:
//   * integers: "0x" + big-endian hex, two digits per byte, and for a
//     negative signed value " (-N)" after the unsigned hex;
//   * bool: true / false;
//   * anything else: the bytes in hex, separated by spaces.
// One difference, on descriptions no QEMU writes: a name that comes back in a
// container after other members is written again where it comes, where the
// script's dict would keep the first position with the last value.
#ifndef QMIG_TOOLS_INSPECT_FIELD_WRITER_H_
#define QMIG_TOOLS_INSPECT_FIELD_WRITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "parser/vmstate/interpreter.h"

namespace qmig {

// Where rendered text goes.
class TextOut {
 public:
  virtual ~TextOut() = default;
  virtual void Write(absl::string_view text) = 0;
};

// `bytes` must hold the field's `size` bytes; a larger field, which the
// interpreter does not hand over in one view, is shown by its size. The
// value as JSON (a string or a bool).
nlohmann::ordered_json FormatFieldValue(absl::string_view type, uint64_t size,
                                        absl::Span<const uint8_t> bytes);

// A JSON string literal of `text` with non-ASCII and control characters
// escaped (as Python's json module with ensure_ascii writes it).
std::string JsonString(absl::string_view text);

// How struct-like fields whose type is not "struct" (VMSTATE_WITH_TMP's
// "tmp", ...) are shown: decoded into their fields, or as analyze-migration.py
// shows them, as the hex of their bytes.
enum class FieldTreeStyle : uint8_t { kNested, kAnalyzeMigration };

enum class FieldFormat : uint8_t {
  kJson,        // compact JSON: {"a":"0x01","b":["0x02"]}
  kPrettyJson,  // json.dumps(indent=4), as analyze-migration.py prints it
  kText,        // one "path = value" line per value, the path escaped
  kFlat,        // one "path\tvalue" line per value, for comparing devices
};

class FieldWriter final : public VmstateFieldVisitor {
 public:
  FieldWriter(FieldFormat format, FieldTreeStyle style) : format_(format), style_(style) {}

  // Starts a body, written to `out` as it comes. For kPrettyJson, `depth` is
  // the nesting level of the body's own object; for kText, `indent` starts
  // every line.
  void Begin(TextOut* out, int depth = 0, std::string indent = {});
  // Closes the containers a body that failed to decode left open, then the
  // body itself, and hands on what is still held.
  void End();
  // Values written since Begin (an opaque container counts once).
  uint64_t values() const { return values_; }

  void OnField(const VmstateFieldView& field) override;
  void OnStructBegin(const VmstateFieldView& field) override;
  void OnStructEnd() override;
  void OnSubsectionBegin(absl::string_view name, uint32_t version, uint64_t offset) override;
  void OnSubsectionEnd() override;

 private:
  // An open object: the body, a struct or a subsection. An array is open
  // inside it while consecutive elements of one name arrive.
  struct Container {
    int depth = 0;  // kPrettyJson: nesting level of the object
    size_t members = 0;
    std::optional<std::string> array;  // name of the open array
    uint64_t elements = 0;             // in the open array
    std::string path;                  // text formats: the container's path
    bool opaque = false;               // shown as one hex string of its bytes
  };

  bool json() const { return format_ == FieldFormat::kJson || format_ == FieldFormat::kPrettyJson; }
  // Starts the value of member `name` (element `index` of an array):
  // separators and key in JSON, the value's path (value_path_) in text.
  void StartMember(absl::string_view name, std::optional<uint64_t> index);
  // Text formats: the line's start, up to the value.
  void StartTextValue();
  void CloseArray(Container& container);
  void OpenContainer(absl::string_view name, std::optional<uint64_t> index, bool opaque);
  void CloseContainer();
  void Newline(int depth);
  void Put(absl::string_view text);
  void Flush();

  FieldFormat format_;
  FieldTreeStyle style_;
  TextOut* out_ = nullptr;
  int base_depth_ = 0;
  std::string indent_;
  std::vector<Container> open_;  // open_[0] is the body
  size_t opaque_depth_ = 0;      // containers open inside an opaque one, itself included
  uint64_t opaque_bytes_ = 0;    // bytes written into the open opaque one
  std::string value_path_;       // text formats: path of the value being written
  std::string held_;             // written, not yet handed to out_
  uint64_t values_ = 0;
};

// Counts a body's values, for summaries.
class FieldCounter final : public VmstateFieldVisitor {
 public:
  void OnField(const VmstateFieldView&) override { ++values_; }
  uint64_t values() const { return values_; }
  void Reset() { values_ = 0; }

 private:
  uint64_t values_ = 0;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_FIELD_WRITER_H_
