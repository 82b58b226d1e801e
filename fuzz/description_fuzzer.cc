// Fuzz target: VMDESCRIPTION JSON to VmDescription (ParseVmDescription), the
// only parser in qmig that builds a tree from the input (from nlohmann's SAX
// events, so every JSON token passes through qmig's code). A description that
// parses must be usable: every device is found again by its name and
// instance.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_support.h"
#include "parser/vmstate/description.h"

namespace {

uint64_t Fields(const qmig::VmsdDescription& vmsd, int depth) {
  qmig::fuzz::Check(depth <= qmig::kMaxDescriptionNesting, "description deeper than its JSON");
  uint64_t count = 0;
  for (const qmig::VmstateField& field : vmsd.fields) {
    ++count;
    count += qmig::fuzz::Touch(field.name) & 1;
    if (field.sub != nullptr) count += Fields(*field.sub, depth + 1);
  }
  for (const qmig::VmsdDescription& sub : vmsd.subsections) count += Fields(sub, depth + 1);
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qmig::VmDescription> description = qmig::ParseVmDescription(json);
  if (!description.ok()) {
    qmig::fuzz::Check(!description.status().message().empty(), "an error without a message");
    return 0;
  }
  // The Nth entry of a (name, instance) is what its Nth section finds.
  std::map<std::pair<std::string, uint32_t>, size_t> seen;
  for (const qmig::DeviceDescription& device : description->devices) {
    const size_t nth = seen[{device.name, device.instance_id}]++;
    qmig::fuzz::Check(description->Find(device.name, device.instance_id, nth) == &device,
                      "a described device is not found by its name, instance and rank");
    Fields(device.vmsd, 0);
  }
  return 0;
}
