#include "parser/vmstate/vmstate_dump.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/vmstate/bounded_json.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

using Json = nlohmann::json;

absl::Status Problem(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// A member that must be a non-negative integer of at most `max`.
absl::StatusOr<uint64_t> Unsigned(const Json& object, const char* key, absl::string_view where,
                                  uint64_t max) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_unsigned()) {
    // nlohmann keeps non-negative literals as unsigned; anything else is wrong.
    return Problem(where, absl::StrCat("\"", key, "\" is missing or not a non-negative integer"));
  }
  const uint64_t value = it->get<uint64_t>();
  if (value > max) return Problem(where, absl::StrCat("\"", key, "\" ", value, " is too large"));
  return value;
}

absl::StatusOr<std::string> Text(const Json& object, const char* key, absl::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return Problem(where, absl::StrCat("\"", key, "\" is missing or not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<DumpVmsd> ReadVmsd(const Json& vmsd, const std::string& where);

absl::StatusOr<DumpField> ReadField(const Json& field, const std::string& where) {
  if (!field.is_object()) return Problem(where, "field is not an object");
  DumpField out;
  absl::StatusOr<std::string> name = Text(field, "field", where);
  if (!name.ok()) return name.status();
  out.name = std::move(*name);
  const std::string here = absl::StrCat(where, " '", out.name, "'");
  absl::StatusOr<uint64_t> version = Unsigned(field, "version_id", here, 0xffffffffu);
  if (!version.ok()) return version.status();
  out.version_id = static_cast<uint32_t>(*version);
  auto exists = field.find("field_exists");
  if (exists != field.end()) {
    if (!exists->is_boolean()) return Problem(here, "\"field_exists\" is not a boolean");
    out.conditional = exists->get<bool>();
  }
  absl::StatusOr<uint64_t> size = Unsigned(field, "size", here, uint64_t{1} << 62);
  if (!size.ok()) return size.status();
  out.size = *size;
  if (field.contains("num")) {
    absl::StatusOr<uint64_t> num = Unsigned(field, "num", here, kMaxDescribedArrayLength);
    if (!num.ok()) return num.status();
    out.num = *num;
  }
  auto description = field.find("Description");
  if (description != field.end()) {
    absl::StatusOr<DumpVmsd> sub = ReadVmsd(*description, absl::StrCat(here, ".Description"));
    if (!sub.ok()) return sub.status();
    out.sub = std::make_shared<const DumpVmsd>(std::move(*sub));
  }
  return out;
}

// A vmsd: {"name", "version_id", "minimum_version_id", ["Fields"],
// ["Subsections"]}. Recursion is bounded by the parse's nesting limit.
absl::StatusOr<DumpVmsd> ReadVmsd(const Json& vmsd, const std::string& where) {
  if (!vmsd.is_object()) return Problem(where, "description is not an object");
  DumpVmsd out;
  absl::StatusOr<std::string> name = Text(vmsd, "name", where);
  if (!name.ok()) return name.status();
  out.name = std::move(*name);
  absl::StatusOr<uint64_t> version = Unsigned(vmsd, "version_id", where, 0xffffffffu);
  if (!version.ok()) return version.status();
  absl::StatusOr<uint64_t> minimum = Unsigned(vmsd, "minimum_version_id", where, 0xffffffffu);
  if (!minimum.ok()) return minimum.status();
  out.version_id = static_cast<uint32_t>(*version);
  out.minimum_version_id = static_cast<uint32_t>(*minimum);
  auto fields = vmsd.find("Fields");
  if (fields != vmsd.end()) {
    if (!fields->is_array()) return Problem(where, "\"Fields\" is not an array");
    out.fields.reserve(fields->size());
    for (size_t i = 0; i < fields->size(); ++i) {
      absl::StatusOr<DumpField> field =
          ReadField((*fields)[i], absl::StrCat(where, ".Fields[", i, "]"));
      if (!field.ok()) return field.status();
      out.fields.push_back(std::move(*field));
    }
  }
  auto subsections = vmsd.find("Subsections");
  if (subsections != vmsd.end()) {
    if (!subsections->is_array()) return Problem(where, "\"Subsections\" is not an array");
    for (size_t i = 0; i < subsections->size(); ++i) {
      absl::StatusOr<DumpVmsd> sub =
          ReadVmsd((*subsections)[i], absl::StrCat(where, ".Subsections[", i, "]"));
      if (!sub.ok()) return sub.status();
      out.subsections.push_back(std::move(*sub));
    }
  }
  return out;
}

}  // namespace

const DumpVmsd* DumpVmsd::FindSubsection(absl::string_view subsection) const {
  for (const DumpVmsd& sub : subsections) {
    if (sub.name == subsection) return &sub;
  }
  return nullptr;
}

const DumpDevice* VmstateDump::FindType(absl::string_view type) const {
  auto it = std::lower_bound(devices_.begin(), devices_.end(), type,
                             [](const DumpDevice& d, absl::string_view t) { return d.type < t; });
  return it != devices_.end() && it->type == type ? &*it : nullptr;
}

std::vector<const DumpDevice*> VmstateDump::FindVmsd(absl::string_view vmsd_name) const {
  std::vector<const DumpDevice*> out;
  auto it = by_vmsd_.find(vmsd_name);
  if (it == by_vmsd_.end()) return out;
  for (size_t index : it->second) out.push_back(&devices_[index]);
  return out;
}

absl::StatusOr<VmstateDump> ParseVmstateDump(absl::string_view json) {
  if (json.size() > kMaxVmstateDumpBytes) {
    return absl::InvalidArgumentError(absl::StrCat("-dump-vmstate output of ", json.size(),
                                                   " bytes is over the limit of ",
                                                   kMaxVmstateDumpBytes));
  }
  Json root;
  absl::Status parsed = ParseBoundedJson(json, kMaxDescriptionNesting, root);
  if (!parsed.ok()) return parsed;
  if (!root.is_object()) return absl::InvalidArgumentError("JSON root is not an object");
  auto machine = root.find("vmschkmachine");
  if (machine == root.end()) {
    return absl::InvalidArgumentError(
        "no \"vmschkmachine\" entry: not QEMU's -dump-vmstate output");
  }
  VmstateDump dump;
  if (!machine->is_object()) return Problem("vmschkmachine", "entry is not an object");
  absl::StatusOr<std::string> machine_name = Text(*machine, "Name", "vmschkmachine");
  if (!machine_name.ok()) return machine_name.status();
  dump.machine_ = std::move(*machine_name);

  // nlohmann's object keeps its members in key order, and a repeated key's
  // last value.
  for (const auto& [type, entry] : root.items()) {
    if (type == "vmschkmachine") continue;
    const std::string where = absl::StrCat("'", type, "'");
    if (!entry.is_object()) return Problem(where, "entry is not an object");
    auto description = entry.find("Description");
    if (description == entry.end()) return Problem(where, "\"Description\" is missing");
    absl::StatusOr<DumpVmsd> vmsd = ReadVmsd(*description, where);
    if (!vmsd.ok()) return vmsd.status();
    dump.devices_.push_back(DumpDevice{type, std::move(*vmsd)});
  }
  for (size_t i = 0; i < dump.devices_.size(); ++i) {
    dump.by_vmsd_[dump.devices_[i].vmsd.name].push_back(i);
  }
  return dump;
}

}  // namespace qmig
