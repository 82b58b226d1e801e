// The field tree of a device section: field name -> value, in wire order,
// with arrays as lists, structs as objects and subsections as objects under
// their names. Values are formatted as QEMU's scripts/analyze-migration.py
// formats them, so that `qmig dump --format=analyze-migration` matches that
// script byte for byte and users meet one notation everywhere:
//   * integers: "0x" + big-endian hex, two digits per byte, and for a
//     negative signed value " (-N)" after the unsigned hex;
//   * bool: true / false;
//   * anything else: the bytes in hex, separated by spaces.
#ifndef QMIG_TOOLS_INSPECT_FIELD_TREE_H_
#define QMIG_TOOLS_INSPECT_FIELD_TREE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "parser/vmstate/interpreter.h"

namespace qmig {

// `bytes` must hold the field's `size` bytes; a larger field, which the
// interpreter does not hand over in one view, is shown by its size.
nlohmann::ordered_json FormatFieldValue(absl::string_view type, uint64_t size,
                                        absl::Span<const uint8_t> bytes);

// How struct-like fields whose type is not "struct" (VMSTATE_WITH_TMP's
// "tmp", ...) are shown: decoded into their fields, or as analyze-migration.py
// shows them, as the hex of their bytes.
enum class FieldTreeStyle : uint8_t { kNested, kAnalyzeMigration };

// A VmstateFieldVisitor that builds the tree of one device body.
class FieldTreeBuilder final : public VmstateFieldVisitor {
 public:
  explicit FieldTreeBuilder(FieldTreeStyle style = FieldTreeStyle::kNested) : style_(style) {
    Reset();
  }
  void set_style(FieldTreeStyle style) { style_ = style; }

  void OnField(const VmstateFieldView& field) override;
  void OnStructBegin(const VmstateFieldView& field) override;
  void OnStructEnd() override;
  void OnSubsectionBegin(absl::string_view name, uint32_t version, uint64_t offset) override;
  void OnSubsectionEnd() override;

  // The tree built since the last Take(); containers left open by a body
  // that failed to decode are closed as they stand.
  nlohmann::ordered_json Take();

 private:
  struct Open {
    std::string name;
    std::optional<uint64_t> index;
    nlohmann::ordered_json value = nlohmann::ordered_json::object();
    bool opaque = false;         // shown as the hex of its bytes
    std::vector<uint8_t> bytes;  // an opaque container's bytes so far
  };
  void Reset();
  void Close();
  static void Place(nlohmann::ordered_json& container, const std::string& name,
                    std::optional<uint64_t> index, nlohmann::ordered_json value);

  FieldTreeStyle style_;
  std::vector<Open> open_;   // open_[0] is the body itself
  size_t opaque_depth_ = 0;  // open opaque containers
};

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_FIELD_TREE_H_
