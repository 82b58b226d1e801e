// Fuzz target: the input is the blob of a PACKAGED command that follows a
// valid postcopy prefix (fuzz_support.h: PostcopyRamPrefix), so that LISTEN,
// RUN, device sections and postcopy RAM inside a package are reached at once:
//   prefix, 08 0007 0004 be32(input size), input, 00 (EOF).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/wire/constants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qmig::SectionType;
  // The be32 length cannot describe a larger blob.
  if (size > 0xffffffffu) return 0;
  qmig::fuzz::Bytes stream;
  stream.Raw(qmig::fuzz::PostcopyRamPrefix());
  stream.U8(static_cast<uint8_t>(SectionType::kCommand)).Be16(7).Be16(4);  // PACKAGED
  stream.Be32(static_cast<uint32_t>(size)).Raw(absl::MakeConstSpan(data, size));
  stream.U8(static_cast<uint8_t>(SectionType::kEof));
  qmig::fuzz::ParseAndCheck(stream.vector());
  return 0;
}
