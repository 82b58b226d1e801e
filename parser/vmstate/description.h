// VmDescription: the vmstate description of a stream's device state, as QEMU
// writes it in the VMDESCRIPTION JSON trailer. It records, per device
// instance, every field QEMU wrote with its size in bytes, so it both names
// the fields and delimits device sections, which carry no length on the wire.
//
// Read from nlohmann::json's SAX events, without exceptions and without
// building a JSON tree; nesting is limited while parsing
// (kMaxDescriptionNesting).
#ifndef QMIG_PARSER_VMSTATE_DESCRIPTION_H_
#define QMIG_PARSER_VMSTATE_DESCRIPTION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"

namespace qmig {

struct VmsdDescription;

struct VmstateField {
  std::string name;
  std::string type;            // VMStateInfo name, "struct", "vstruct" or "unknown"
  uint64_t size = 0;           // bytes one element occupied on the wire
  uint64_t array_len = 0;      // > 0: a compressed array of this many elements
  std::optional<uint64_t> index;
  std::shared_ptr<const VmsdDescription> sub;  // struct / vstruct element layout
};

struct VmsdDescription {
  std::string vmsd_name;
  uint32_t version = 0;
  std::vector<VmstateField> fields;
  std::vector<VmsdDescription> subsections;
};

struct DeviceDescription {
  std::string name;       // section idstr
  uint32_t instance_id = 0;
  bool legacy = false;    // a save_state device: one opaque buffer
  VmsdDescription vmsd;
};

// Version bounds of one vmsd, as QEMU's -dump-vmstate lists them.
struct VmsdVersions {
  uint32_t version = 0;
  uint32_t minimum = 0;
};

// Something in a description that no QEMU writes but that qmig can read past:
// a member given twice in one object, a page size that is no page size, a
// field type no QEMU has, a device instance listed more than once. The
// message names the place in the document.
struct DescriptionWarning {
  FindingCode code;
  std::string message;
};

struct VmDescription {
  uint64_t page_size = 0;
  std::optional<VmsdDescription> configuration;
  std::vector<DeviceDescription> devices;

  // From QEMU's -dump-vmstate output instead of a VMDESCRIPTION: per vmsd
  // name, the versions a destination accepts. That output has no array
  // lengths and no field types, so it cannot delimit a device section; it
  // does tell which section versions QEMU would refuse.
  std::map<std::string, VmsdVersions> vmsd_versions;
  std::string dump_machine;  // the machine type the dump was made for
  bool from_dump() const { return !dump_machine.empty() || !vmsd_versions.empty(); }

  // At most kMaxDescriptionWarnings, then one saying how many more there were.
  std::vector<DescriptionWarning> warnings;

  // The entry for the `nth` (from 0) section with this name and instance, or
  // nullptr. QEMU registers some devices under one name and instance (two
  // isa-ide controllers, say) and writes their sections and their entries in
  // the same order, so the nth section takes the nth entry. Constant time
  // once IndexDevices() ran (ParseVmDescription does); a linear scan
  // otherwise.
  const DeviceDescription* Find(absl::string_view name, uint32_t instance_id, size_t nth = 0) const;
  // How many entries there are for this name and instance.
  size_t Count(absl::string_view name, uint32_t instance_id) const;
  // Indexes `devices` by (name, instance), entries of one pair in order.
  void IndexDevices();

 private:
  // The entries of one (name, instance): by_key_[first .. first + count).
  struct Entries {
    size_t first = 0;
    size_t count = 0;
  };
  absl::flat_hash_map<std::pair<std::string, uint32_t>, Entries> index_;
  std::vector<size_t> by_key_;  // indices into `devices`, grouped by pair
};

// Parses a VMDESCRIPTION JSON document, or the output of QEMU's
// -dump-vmstate (recognised by its "vmschkmachine" entry). Errors name what
// is wrong and where in the document.
absl::StatusOr<VmDescription> ParseVmDescription(absl::string_view json);

}  // namespace qmig

#endif  // QMIG_PARSER_VMSTATE_DESCRIPTION_H_
