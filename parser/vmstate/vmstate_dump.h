// VmstateDump: QEMU's -dump-vmstate output read whole, as
// scripts/vmstate-static-checker.py reads it: per device type, its vmsd with
// version_id and minimum_version_id, every field (version_id, whether an
// exists() callback decides it, element size, array length, the nested
// vmsd of a struct) and every subsection, recursively; and the machine type
// the dump was made for ("vmschkmachine").
//
// What the format holds, and what it does not (QEMU writes it from each
// device class's dc->vmsd once the machine is created):
//   * only qdev device classes that have a dc->vmsd, all of the binary's,
//     whether or not the machine instantiates them; state registered
//     otherwise (ram, timer, cpu, apic, globalstate, ...) is never listed;
//   * "size" is the C size of one element (sizeof a struct for a struct
//     field), not necessarily what goes on the wire; "num" (QEMU 8.1 on) only
//     for fixed arrays; no field types, no flags.
//
// The JSON is parsed with ParseBoundedJson (kMaxDescriptionNesting) after
// the text is checked against kMaxVmstateDumpBytes. No I/O.
#ifndef QMIG_PARSER_VMSTATE_VMSTATE_DUMP_H_
#define QMIG_PARSER_VMSTATE_VMSTATE_DUMP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qmig {

struct DumpVmsd;

struct DumpField {
  std::string name;
  uint32_t version_id = 0;              // loaded only when the stream's version is at least this
  bool conditional = false;             // "field_exists": an exists() callback decides
  uint64_t size = 0;                    // C size of one element
  std::optional<uint64_t> num;          // fixed array length (dumps of QEMU 8.1 on)
  std::shared_ptr<const DumpVmsd> sub;  // a struct field's element vmsd
};

struct DumpVmsd {
  std::string name;
  uint32_t version_id = 0;
  uint32_t minimum_version_id = 0;
  std::vector<DumpField> fields;
  std::vector<DumpVmsd> subsections;

  const DumpVmsd* FindSubsection(absl::string_view subsection) const;
};

// One top-level entry: a device type (QOM class name) and its vmsd.
struct DumpDevice {
  std::string type;
  DumpVmsd vmsd;
};

class VmstateDump {
 public:
  const std::string& machine() const { return machine_; }
  // Device types in name order.
  const std::vector<DumpDevice>& devices() const { return devices_; }
  const DumpDevice* FindType(absl::string_view type) const;
  // The device types whose vmsd has this name (a section's idstr ends with
  // the vmsd name, not the type), in type order; empty when none.
  std::vector<const DumpDevice*> FindVmsd(absl::string_view vmsd_name) const;

 private:
  friend absl::StatusOr<VmstateDump> ParseVmstateDump(absl::string_view json);
  std::string machine_;
  std::vector<DumpDevice> devices_;
  std::map<std::string, std::vector<size_t>, std::less<>> by_vmsd_;
};

// Parses QEMU's -dump-vmstate output. Errors name the entry and the place
// inside it ('piix4_pm'.Fields[3]: ...).
absl::StatusOr<VmstateDump> ParseVmstateDump(absl::string_view json);

}  // namespace qmig

#endif  // QMIG_PARSER_VMSTATE_VMSTATE_DUMP_H_
