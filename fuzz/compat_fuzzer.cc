// Fuzz target: QEMU's -dump-vmstate output (ParseVmstateDump) and the rules
// of qmig compat (CheckCompat) over it. The input is a dump, optionally
// followed by "\n--\n" and a VMDESCRIPTION: the dump is compared with itself
// (source dump against destination dump) and, when the description parses,
// the described devices are compared with the dump as a stream's would be.
// Contracts: a dump never finds its own devices or subsections unknown, and
// every verdict has a reason unless it loads.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_support.h"
#include "parser/vmstate/compat.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/vmstate_dump.h"

namespace {

void CheckReport(const qmig::CompatReport& report, size_t devices) {
  qmig::fuzz::Check(report.devices.size() == devices, "a device without a verdict");
  for (const qmig::DeviceVerdict& device : report.devices) {
    qmig::fuzz::Check(device.status == qmig::CompatStatus::kLoads || !device.reasons.empty(),
                      "a verdict other than loads without a reason");
    for (const qmig::CompatReason& reason : device.reasons) {
      qmig::fuzz::Check(!reason.code.empty() && !reason.message.empty(), "an empty reason");
    }
  }
  (void)report.Overall();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::string_view dump_text = input;
  absl::string_view description_text;
  const size_t split = input.find("\n--\n");
  if (split != absl::string_view::npos) {
    dump_text = input.substr(0, split);
    description_text = input.substr(split + 4);
  }
  absl::StatusOr<qmig::VmstateDump> dump = qmig::ParseVmstateDump(dump_text);
  if (!dump.ok()) {
    qmig::fuzz::Check(!dump.status().message().empty(), "an error without a message");
    return 0;
  }
  qmig::CompatDestination destination{&*dump, dump->machine()};

  qmig::CompatSource itself;
  itself.kind = qmig::CompatSource::Kind::kDump;
  itself.machine = dump->machine();
  for (const qmig::DumpDevice& device : dump->devices()) {
    qmig::CompatSourceDevice d;
    d.name = device.type;
    d.version = device.vmsd.version_id;
    d.declared = &device.vmsd;
    itself.devices.push_back(d);
  }
  const qmig::CompatReport self = qmig::CheckCompat(itself, destination);
  CheckReport(self, itself.devices.size());
  qmig::fuzz::Check(self.machine_status == qmig::CompatStatus::kLoads, "a dump's own machine");
  for (const qmig::DeviceVerdict& device : self.devices) {
    for (const qmig::CompatReason& reason : device.reasons) {
      qmig::fuzz::Check(reason.code != "section.unknown" && reason.code != "subsection.unknown",
                        "a dump does not know its own device or subsection");
    }
  }

  if (description_text.empty()) return 0;
  absl::StatusOr<qmig::VmDescription> description = qmig::ParseVmDescription(description_text);
  if (!description.ok()) return 0;
  qmig::CompatSource stream;
  stream.machine = dump->machine();
  stream.described = true;
  for (const qmig::DeviceDescription& device : description->devices) {
    stream.devices.push_back(qmig::CompatSourceDevice{device.name, device.instance_id,
                                                      device.vmsd.version, false, &device});
  }
  CheckReport(qmig::CheckCompat(stream, destination), stream.devices.size());
  return 0;
}
