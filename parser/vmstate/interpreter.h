// Decodes a device section body strictly with its VmsdDescription: every
// field with the size the description gives, every described subsection with
// its header, and nothing else. A body that does not match its description is
// a finding with the field's path.
#ifndef QMIG_PARSER_VMSTATE_INTERPRETER_H_
#define QMIG_PARSER_VMSTATE_INTERPRETER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/parse_context.h"
#include "parser/vmstate/description.h"
#include "parser/wire/reader.h"

namespace qmig {

// Receives each decoded leaf field. `bytes` is empty when the field is larger
// than kMaxContiguousView (it is then consumed in chunks).
class VmstateFieldVisitor {
 public:
  virtual ~VmstateFieldVisitor() = default;
  virtual void OnField(absl::string_view path, absl::string_view type, uint64_t offset,
                       uint64_t size, absl::Span<const uint8_t> bytes) = 0;
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
