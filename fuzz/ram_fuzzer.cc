// Fuzz target: the input is the payload of a RAM PART section (page
// records, XBZRLE, compressed pages, EOS, ...) after a valid prefix whose
// MEM_SIZE declares the block "pc.ram" of 16 MiB (fuzz_support.h):
//   prefix, 02 be32(2), input, 7e be32(2) (footer), 00 (EOF).
// The footer is added because the prefix uses footers: a payload that ends
// with EOS then parses cleanly.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.h"
#include "parser/wire/constants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qmig::SectionType;
  using qmig::fuzz::kPrefixRamSectionId;
  qmig::fuzz::Bytes stream;
  stream.Raw(qmig::fuzz::PostcopyRamPrefix());
  stream.U8(static_cast<uint8_t>(SectionType::kPart)).Be32(kPrefixRamSectionId);
  stream.Raw(absl::MakeConstSpan(data, size));
  stream.U8(static_cast<uint8_t>(SectionType::kFooter)).Be32(kPrefixRamSectionId);
  stream.U8(static_cast<uint8_t>(SectionType::kEof));
  qmig::fuzz::ParseAndCheck(stream.vector());
  return 0;
}
