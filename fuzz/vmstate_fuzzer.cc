// Fuzz target: the vmstate interpreter (DecodeVmstate) with a fixed, real
// schema: the VMDESCRIPTION of corpus/qemu-7.2/pc-i440fx-7.2.mig, embedded
// at build time. The first input byte picks the device (its index in the
// description, modulo the device count); the rest is that device's section
// body. Offsets in findings are input offsets (the body starts at 1).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "fuzz/embedded_vmdesc.h"
#include "fuzz/fuzz_support.h"
#include "parser/parse_context.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/interpreter.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/reader.h"

namespace {

const qmig::VmDescription& Schema() {
  static const qmig::VmDescription* const schema = [] {
    absl::StatusOr<qmig::VmDescription> parsed =
        qmig::ParseVmDescription(qmig::fuzz::EmbeddedVmDescriptionJson());
    qmig::fuzz::Check(parsed.ok() && !parsed->devices.empty(),
                      "the embedded VMDESCRIPTION does not parse");
    return new qmig::VmDescription(std::move(*parsed));
  }();
  return *schema;
}

// Reads each decoded field's bytes, so that ASan checks the views.
class TouchingVisitor final : public qmig::VmstateFieldVisitor {
 public:
  void OnField(const qmig::VmstateFieldView& field) override {
    qmig::fuzz::Check(field.bytes.empty() || field.bytes.size() == field.size,
                      "a field view of the wrong size");
    sum_ += qmig::fuzz::Touch(field.path) + qmig::fuzz::Touch(field.name) +
            qmig::fuzz::Touch(field.type) + qmig::fuzz::Touch(field.bytes);
  }
  void OnStructBegin(const qmig::VmstateFieldView& field) override { ++depth_; }
  void OnStructEnd() override {
    qmig::fuzz::Check(depth_-- > 0, "a struct ended that never began");
  }
  void OnSubsectionBegin(absl::string_view name, uint32_t, uint64_t) override {
    sum_ += qmig::fuzz::Touch(name);
    ++depth_;
  }
  void OnSubsectionEnd() override {
    qmig::fuzz::Check(depth_-- > 0, "a subsection ended that never began");
  }

 private:
  uint64_t sum_ = 0;
  int depth_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Schema();  // parse once, before the first input is timed
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const qmig::VmDescription& schema = Schema();
  const qmig::DeviceDescription& device = schema.devices[data[0] % schema.devices.size()];
  qmig::MemorySource source(absl::MakeConstSpan(data + 1, size - 1), /*base_offset=*/1);
  qmig::FindingList findings;
  qmig::ParseContext context(&findings);
  qmig::Reader reader(&source, &context, /*offset=*/1);
  TouchingVisitor visitor;
  qmig::VmstateDecodeStats stats;
  qmig::DecodeVmstate(reader, device.vmsd, context, &visitor, &stats).IgnoreError();
  qmig::fuzz::Check(reader.offset() <= size, "the interpreter read past the input");
  qmig::fuzz::CheckFindings(findings, size);
  return 0;
}
