// The VMDESCRIPTION JSON of corpus/qemu-7.2/pc-i440fx-7.2.mig (30 devices of
// a real pc-i440fx-7.2 machine), embedded at build time by
// fuzz/embed_vmdesc.py: the fixed schema of the vmstate fuzzer.
#ifndef QMIG_FUZZ_EMBEDDED_VMDESC_H_
#define QMIG_FUZZ_EMBEDDED_VMDESC_H_

#include "absl/strings/string_view.h"

namespace qmig::fuzz {

absl::string_view EmbeddedVmDescriptionJson();

}  // namespace qmig::fuzz

#endif  // QMIG_FUZZ_EMBEDDED_VMDESC_H_
