// Decoded payloads of QEMU_VM_COMMAND records, for display. The parser has
// already judged them; this only names what they carry, and stops quietly
// at whatever does not decode.
#ifndef QMIG_TOOLS_INSPECT_COMMAND_DECODE_H_
#define QMIG_TOOLS_INSPECT_COMMAND_DECODE_H_

#include <string>

#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "parser/wire/constants.h"

namespace qmig {

// The payload's fields as a JSON object: {"value": 3} for PING,
// {"block": ..., "ranges": [[start, length], ...]} for RAM_DISCARD, ...
nlohmann::ordered_json DecodeCommandPayload(CommandKind kind, absl::Span<const uint8_t> payload);

// One line for people: "value=3", "pc.ram: 2 ranges, 8 pages".
std::string DescribeCommandPayload(CommandKind kind, const nlohmann::ordered_json& decoded);

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_COMMAND_DECODE_H_
