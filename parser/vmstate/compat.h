// Will a destination QEMU load what a source sends? Per device, from what
// the source is known to send and what the destination's -dump-vmstate says
// it accepts; and the machine type.
//
// The source is either a recorded stream (its START/FULL sections with
// their versions, and, when it has one, its VMDESCRIPTION: the fields and
// subsections actually sent) or a source's own -dump-vmstate (what it may
// send). The rules follow what QEMU's loader refuses (see the rule list in
// compat.cc); scripts/vmstate-static-checker.py compares two dumps by
// similar rules, but a recorded stream is judged by what it carries: a
// subsection the destination lacks matters only when it was sent.
//
// No I/O: the caller parses the inputs and prints the report. Messages are
// printable: every name in them went through EscapeName.
#ifndef QMIG_PARSER_VMSTATE_COMPAT_H_
#define QMIG_PARSER_VMSTATE_COMPAT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/vmstate_dump.h"

namespace qmig {

enum class CompatStatus : uint8_t {
  kLoads,       // the destination accepts it
  kFails,       // the destination refuses it (for a source dump: when the guest has it / sends it)
  kUnknown,     // what is known does not decide
  kNotChecked,  // nothing to compare it with: outside -dump-vmstate, or a destination not known
};
// "loads", "does_not_load", "cannot_tell", "not_checked".
absl::string_view CompatStatusName(CompatStatus status);

struct CompatReason {
  std::string code;  // stable: "version.too_new", "subsection.unknown", ...
  CompatStatus status = CompatStatus::kLoads;  // what this reason alone means
  std::string message;
};

// One section the source sends (a stream), or one device type it may have
// (a source dump).
struct CompatSourceDevice {
  std::string name;  // the section's idstr; for a dump, the device type
  uint32_t instance_id = 0;
  uint32_t version = 0;    // the section version it is sent with
  bool iterative = false;  // a START section (ram, dirty-bitmap, block): its own loader
  // A stream with a VMDESCRIPTION: exactly what was sent (null for a
  // section it does not describe).
  const DeviceDescription* sent = nullptr;
  // A source dump: the vmsd, whose fields and subsections it may send.
  const DumpVmsd* declared = nullptr;
};

struct CompatSource {
  enum class Kind : uint8_t { kStream, kDump };
  Kind kind = Kind::kStream;
  std::optional<std::string> machine;  // the stream's CONFIGURATION, or the dump's machine
  bool footers = true;                 // the stream's sections end with footers
  bool described = false;              // the stream has a VMDESCRIPTION
  std::vector<CompatSourceDevice> devices;
};

struct CompatDestination {
  const VmstateDump* dump = nullptr;  // null: nothing is known of its devices
  std::string machine;                // the machine type it runs; empty: not known
  bool machine_missing = false;       // QEMU refused to create `machine`
};

struct DeviceVerdict {
  std::string name;  // escaped
  uint32_t instance_id = 0;
  uint32_t version = 0;
  std::string vmsd_name;  // escaped; empty when not known
  // The destination's device types compared with, and their vmsd's bounds.
  std::vector<std::string> destination_types;  // escaped
  std::optional<uint32_t> destination_version;
  std::optional<uint32_t> destination_minimum;
  CompatStatus status = CompatStatus::kLoads;
  std::vector<CompatReason> reasons;  // the ones that decide first
};

struct CompatReport {
  CompatStatus machine_status = CompatStatus::kNotChecked;
  std::vector<CompatReason> machine_reasons;
  std::vector<DeviceVerdict> devices;

  size_t Count(CompatStatus status) const;
  // kFails when the machine or any device fails; else kUnknown when any is
  // unknown; else kLoads. Devices not checked do not count.
  CompatStatus Overall() const;
};

CompatReport CheckCompat(const CompatSource& source, const CompatDestination& destination);

// The vmsd name a section's idstr carries: QEMU names a device's section
// "<qdev path>/<vmsd name>", or just the vmsd name. The candidates, longest
// first: the whole idstr, then what follows each '/'.
std::vector<std::string> VmsdNameCandidates(absl::string_view idstr);

}  // namespace qmig

#endif  // QMIG_PARSER_VMSTATE_COMPAT_H_
