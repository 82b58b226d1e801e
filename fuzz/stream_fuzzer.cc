// Fuzz target: the whole-stream parser (ParseMigrationStream over a
// MemorySource) on the input as it is: header, configuration, sections,
// commands, packages, RAM, device state and the VMDESCRIPTION trailer.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qmig::fuzz::ParseAndCheck(absl::MakeConstSpan(data, size));
  return 0;
}
