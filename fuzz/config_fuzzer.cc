// Fuzz target: the CONFIGURATION record. The input follows the file header
// and the 0x07 byte: be32 name length, machine name, subsections
// (target-page-bits, capabilities, uuid), then whatever records come next.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/wire/constants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qmig::fuzz::Bytes stream;
  stream.Be32(qmig::kFileMagic).Be32(qmig::kFileVersion);
  stream.U8(static_cast<uint8_t>(qmig::SectionType::kConfiguration));
  stream.Raw(absl::MakeConstSpan(data, size));
  qmig::fuzz::ParseAndCheck(stream.vector());
  return 0;
}
