// Decodes a device section body strictly with its VmsdDescription: every
// field with the size the description gives, every described subsection with
// its header, and nothing else. A body that does not match its description is
// a finding with the field's path.
#ifndef QMIG_PARSER_VMSTATE_INTERPRETER_H_
#define QMIG_PARSER_VMSTATE_INTERPRETER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/parse_context.h"
#include "parser/vmstate/description.h"
#include "parser/wire/reader.h"

namespace qmig {

// One decoded field, as the visitor sees it. Views are valid only during the
// call.
struct VmstateFieldView {
  absl::string_view path;  // from the section: "env.regs[3]", "/cpu/xsave.xmm"
  absl::string_view name;  // the field's own name: "env.regs"
  absl::string_view type;  // VMStateInfo name, or "struct"
  std::optional<uint64_t> index;  // element number of an array field
  uint64_t offset = 0;     // absolute stream offset of its first byte
  uint64_t size = 0;       // bytes on the wire
  // The field's bytes; empty for structs and for fields larger than
  // kMaxContiguousView (those are consumed in chunks).
  absl::Span<const uint8_t> bytes;
};

// Receives a device body's fields in wire order. Structs and subsections
// bracket the fields they hold, so a visitor can rebuild the tree.
class VmstateFieldVisitor {
 public:
  virtual ~VmstateFieldVisitor() = default;
  virtual void OnField(const VmstateFieldView& field) = 0;
  virtual void OnStructBegin(const VmstateFieldView& field) {}
  virtual void OnStructEnd() {}
  virtual void OnSubsectionBegin(absl::string_view name, uint32_t version, uint64_t offset) {}
  virtual void OnSubsectionEnd() {}
};

struct VmstateDecodeStats {
  uint64_t fields = 0;
  uint64_t subsections = 0;
};

// Decodes `description` from `reader`. Recoverable problems are reported
// through `context`; a non-OK status means the body could not be framed.
absl::Status DecodeVmstate(Reader& reader, const VmsdDescription& description,
                           ParseContext& context, VmstateFieldVisitor* visitor,
                           VmstateDecodeStats* stats);

// Wire width of a fixed-size VMState type, or 0 when it has none.
uint64_t FixedWidthOfType(absl::string_view type);

}  // namespace qmig

#endif  // QMIG_PARSER_VMSTATE_INTERPRETER_H_
