#include "parser/vmstate/description.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/vmstate/bounded_json.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

using Json = nlohmann::json;

}  // namespace

namespace {

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::StatusOr<std::string> GetString(const Json& object, const char* key, absl::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return Invalid(where, absl::StrCat("\"", key, "\" is missing or not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<uint64_t> GetUnsigned(const Json& object, const char* key, absl::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer() ||
      (it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0)) {
    return Invalid(where, absl::StrCat("\"", key, "\" is missing or not a non-negative integer"));
  }
  return it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
}

absl::StatusOr<VmsdDescription> ParseVmsd(const Json& object, const std::string& where);

absl::StatusOr<VmstateField> ParseField(const Json& object, const std::string& where) {
  if (!object.is_object()) return Invalid(where, "field is not an object");
  VmstateField field;
  absl::StatusOr<std::string> name = GetString(object, "name", where);
  if (!name.ok()) return name.status();
  field.name = *name;
  std::string here = absl::StrCat(where, ".", field.name);
  auto type = object.find("type");
  field.type = type != object.end() && type->is_string() ? type->get<std::string>() : "unknown";
  absl::StatusOr<uint64_t> size = GetUnsigned(object, "size", here);
  if (!size.ok()) return size.status();
  field.size = *size;
  if (object.contains("array_len")) {
    absl::StatusOr<uint64_t> array_len = GetUnsigned(object, "array_len", here);
    if (!array_len.ok()) return array_len.status();
    if (*array_len == 0 || *array_len > kMaxDescribedArrayLength) {
      return Invalid(here, absl::StrCat("\"array_len\" ", *array_len, " outside 1..",
                                        kMaxDescribedArrayLength));
    }
    field.array_len = *array_len;
  }
  if (object.contains("index")) {
    absl::StatusOr<uint64_t> index = GetUnsigned(object, "index", here);
    if (!index.ok()) return index.status();
    field.index = *index;
  }
  auto sub = object.find("struct");
  if (sub != object.end()) {
    absl::StatusOr<VmsdDescription> vmsd = ParseVmsd(*sub, here);
    if (!vmsd.ok()) return vmsd.status();
    field.sub = std::make_shared<VmsdDescription>(std::move(*vmsd));
  } else if (object.contains("fields")) {
    // VMS_VSTRUCT: the element's description sits in the field itself.
    absl::StatusOr<VmsdDescription> vmsd = ParseVmsd(object, here);
    if (!vmsd.ok()) return vmsd.status();
    field.sub = std::make_shared<VmsdDescription>(std::move(*vmsd));
  }
  return field;
}

absl::StatusOr<VmsdDescription> ParseVmsd(const Json& object, const std::string& where) {
  if (!object.is_object()) return Invalid(where, "description is not an object");
  VmsdDescription vmsd;
  auto name = object.find("vmsd_name");
  if (name != object.end() && name->is_string()) vmsd.vmsd_name = name->get<std::string>();
  if (object.contains("version")) {
    absl::StatusOr<uint64_t> version = GetUnsigned(object, "version", where);
    if (!version.ok()) return version.status();
    if (*version > 0xffffffffu) return Invalid(where, "\"version\" too large");
    vmsd.version = static_cast<uint32_t>(*version);
  }
  auto fields = object.find("fields");
  if (fields != object.end()) {
    if (!fields->is_array()) return Invalid(where, "\"fields\" is not an array");
    for (const Json& item : *fields) {
      absl::StatusOr<VmstateField> field = ParseField(item, where);
      if (!field.ok()) return field.status();
      vmsd.fields.push_back(std::move(*field));
    }
  }
  auto subsections = object.find("subsections");
  if (subsections != object.end()) {
    if (!subsections->is_array()) return Invalid(where, "\"subsections\" is not an array");
    for (const Json& item : *subsections) {
      absl::StatusOr<VmsdDescription> sub =
          ParseVmsd(item, absl::StrCat(where, "/", item.is_object() && item.contains("vmsd_name") && item["vmsd_name"].is_string() ? item["vmsd_name"].get<std::string>() : "?"));
      if (!sub.ok()) return sub.status();
      if (sub->vmsd_name.empty()) return Invalid(where, "subsection without \"vmsd_name\"");
      vmsd.subsections.push_back(std::move(*sub));
    }
  }
  return vmsd;
}

}  // namespace

const DeviceDescription* VmDescription::Find(absl::string_view name, uint32_t instance_id) const {
  if (!index_.empty()) {
    auto it = index_.find(std::make_pair(std::string(name), instance_id));
    return it == index_.end() ? nullptr : &devices[it->second];
  }
  for (const DeviceDescription& device : devices) {
    if (device.name == name && device.instance_id == instance_id) return &device;
  }
  return nullptr;
}

bool VmDescription::IndexDevices() {
  index_.clear();
  index_.reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!index_.emplace(std::make_pair(devices[i].name, devices[i].instance_id), i).second) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<VmDescription> ParseVmDescription(absl::string_view text) {
  Json root;
  absl::Status parsed = ParseBoundedJson(text, kMaxDescriptionNesting, root);
  if (!parsed.ok()) return parsed;
  if (!root.is_object()) return absl::InvalidArgumentError("JSON root is not an object");

  VmDescription description;
  auto machine = root.find("vmschkmachine");
  if (machine != root.end()) {
    // QEMU -dump-vmstate: {"vmschkmachine": {"Name": M}, TYPE: {"Name": vmsd,
    // "version_id": V, "minimum_version_id": N, "Description": {...}}, ...}
    if (!machine->is_object()) return absl::InvalidArgumentError("\"vmschkmachine\" is not an object");
    absl::StatusOr<std::string> name = GetString(*machine, "Name", "vmschkmachine");
    if (!name.ok()) return name.status();
    description.dump_machine = *name;
    for (auto it = root.begin(); it != root.end(); ++it) {
      if (it.key() == "vmschkmachine") continue;
      const Json& entry = it.value();
      std::string where = absl::StrCat("'", it.key(), "'");
      if (!entry.is_object()) return Invalid(where, "entry is not an object");
      absl::StatusOr<std::string> vmsd = GetString(entry, "Name", where);
      absl::StatusOr<uint64_t> version = GetUnsigned(entry, "version_id", where);
      absl::StatusOr<uint64_t> minimum = GetUnsigned(entry, "minimum_version_id", where);
      for (const absl::Status& status : {vmsd.status(), version.status(), minimum.status()}) {
        if (!status.ok()) return status;
      }
      if (*version > 0xffffffffu || *minimum > *version) {
        return Invalid(where, "version bounds out of order or too large");
      }
      description.vmsd_versions[*vmsd] = {static_cast<uint32_t>(*version),
                                          static_cast<uint32_t>(*minimum)};
    }
    return description;
  }
  if (root.contains("page_size")) {
    absl::StatusOr<uint64_t> page_size = GetUnsigned(root, "page_size", "root");
    if (!page_size.ok()) return page_size.status();
    description.page_size = *page_size;
  }
  auto configuration = root.find("configuration");
  if (configuration != root.end()) {
    absl::StatusOr<VmsdDescription> vmsd = ParseVmsd(*configuration, "configuration");
    if (!vmsd.ok()) return vmsd.status();
    description.configuration = std::move(*vmsd);
  }
  auto devices = root.find("devices");
  if (devices == root.end() || !devices->is_array()) {
    return absl::InvalidArgumentError("\"devices\" is missing or not an array");
  }
  for (const Json& item : *devices) {
    if (!item.is_object()) return absl::InvalidArgumentError("a device entry is not an object");
    DeviceDescription device;
    absl::StatusOr<std::string> name = GetString(item, "name", "device");
    if (!name.ok()) return name.status();
    device.name = *name;
    std::string where = absl::StrCat("device '", device.name, "'");
    absl::StatusOr<uint64_t> instance = GetUnsigned(item, "instance_id", where);
    if (!instance.ok()) return instance.status();
    if (*instance > 0xffffffffu) return Invalid(where, "\"instance_id\" too large");
    device.instance_id = static_cast<uint32_t>(*instance);
    device.legacy = !item.contains("vmsd_name");
    absl::StatusOr<VmsdDescription> vmsd = ParseVmsd(item, where);
    if (!vmsd.ok()) return vmsd.status();
    device.vmsd = std::move(*vmsd);
    description.devices.push_back(std::move(device));
  }
  if (!description.IndexDevices()) {
    return absl::InvalidArgumentError("a device instance is described twice");
  }
  return description;
}

}  // namespace qmig
