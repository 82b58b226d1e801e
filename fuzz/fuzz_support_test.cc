// The fixed prefix of the package and RAM fuzzers must be a valid stream
// start: if it drew a finding, every fuzz input would start from an error
// path and the fuzzers would miss the code they exist for.
#include "fuzz/fuzz_support.h"

#include <gtest/gtest.h>

#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"

namespace qmig::fuzz {
namespace {

TEST(PostcopyRamPrefix, EndedByRamEndAndEofIsValid) {
  Bytes stream;
  stream.Raw(PostcopyRamPrefix());
  stream.U8(static_cast<uint8_t>(SectionType::kEnd)).Be32(kPrefixRamSectionId);
  stream.Be64(ram_flag::kEos);
  stream.U8(static_cast<uint8_t>(SectionType::kFooter)).Be32(kPrefixRamSectionId);
  stream.U8(static_cast<uint8_t>(SectionType::kEof));
  MemorySource source(stream.vector());
  ParseResult result = ParseMigrationStream(source, ParseOptions());

  for (const Finding& finding : result.findings.findings()) {
    ADD_FAILURE() << finding.path << ": " << finding.message;
  }
  EXPECT_TRUE(result.summary.eof_seen);
  EXPECT_EQ(result.summary.profile, "qemu-7.2");
  EXPECT_EQ(result.summary.machine, "pc-i440fx-7.2");
  EXPECT_TRUE(result.summary.return_path_opened);
  EXPECT_EQ(result.summary.postcopy, PostcopyState::kAdvise);
  ASSERT_EQ(result.summary.ram_blocks.size(), 1u);
  EXPECT_EQ(result.summary.ram_blocks[0].name, kPrefixBlock);
  EXPECT_EQ(result.summary.ram_blocks[0].length, kPrefixBlockLength);
}

}  // namespace
}  // namespace qmig::fuzz
