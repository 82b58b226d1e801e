// The iterable sections qmig decodes besides RAM: dirty bitmaps and (up to
// 9.0) block migration, each a loop of flagged records ended by EOS.
#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "parser/encode/stream_writer.h"
#include "parser/stream_parser.h"
#include "parser/testing/expect.h"
#include "parser/testing/parse_util.h"

namespace qmig {
namespace {

// Dirty-bitmap record flags (QEMU's migration/block-dirty-bitmap.c).
constexpr uint8_t kEos = 0x01, kZeroes = 0x02, kBitmapName = 0x04, kDeviceName = 0x08,
                  kStart = 0x10, kComplete = 0x20, kBits = 0x40;
constexpr uint32_t kId = 3;

// A stream whose one iterable section carries `payload` in its START.
template <typename Payload>
ParseResult WithDirtyBitmap(Payload payload) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kId, "dirty-bitmap", 0, 1);
  payload(w);
  w.Footer(kId).Eof();
  return ParseBytes(w.bytes());
}

TEST(DirtyBitmapTest, StartBitsCompleteAreRead) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kId, "dirty-bitmap", 0, 1)
      .U8(kDeviceName | kBitmapName | kStart)
      .CountedString("drive0")
      .CountedString("bitmap0")
      .Be32(65536)
      .U8(0)
      .U8(kEos)
      .Footer(kId);
  w.SectionPart(kId).U8(kBits).Be64(0).Be32(128).Be64(16).Bytes(std::vector<uint8_t>(16, 0xff));
  w.U8(kBits | kZeroes).Be64(128).Be32(128).U8(kEos).Footer(kId);
  w.SectionEnd(kId).U8(kComplete | kEos).Footer(kId).Eof();
  ParseResult r = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(r)) << FormatFindings(r);
  EXPECT_EQ(r.summary.iterable_sections.at("dirty-bitmap"), 3u);
}

TEST(DirtyBitmapTest, RecordsThatBreakTheFormat) {
  // Extra flag bytes, which no QEMU sends.
  ParseResult extra = WithDirtyBitmap([](StreamWriter& w) { w.U8(0x80); });
  EXPECT_TRUE(ErrorCodesAre(extra, {FindingCode::kIterablePayload})) << FormatFindings(extra);
  // An empty node name, then an empty bitmap name.
  ParseResult node =
      WithDirtyBitmap([](StreamWriter& w) { w.U8(kDeviceName | kEos).CountedString(""); });
  EXPECT_TRUE(ErrorCodesAre(node, {FindingCode::kIterablePayload})) << FormatFindings(node);
  ParseResult bitmap =
      WithDirtyBitmap([](StreamWriter& w) { w.U8(kBitmapName | kEos).CountedString(""); });
  EXPECT_TRUE(ErrorCodesAre(bitmap, {FindingCode::kIterablePayload})) << FormatFindings(bitmap);
  // A chunk larger than QEMU's buffer, claimed before any byte of it.
  ParseResult chunk = WithDirtyBitmap(
      [](StreamWriter& w) { w.U8(kBits | kEos).Be64(0).Be32(8).Be64(uint64_t{1} << 40); });
  EXPECT_TRUE(ErrorCodesAre(chunk, {FindingCode::kIterablePayload})) << FormatFindings(chunk);
}

TEST(DirtyBitmapTest, ReservedStartFlagsAreReportedAndReadOn) {
  ParseResult r = WithDirtyBitmap([](StreamWriter& w) {
    w.U8(kDeviceName | kBitmapName | kStart | kEos)
        .CountedString("drive0")
        .CountedString("b")
        .Be32(65536)
        .U8(0x80);
  });
  EXPECT_TRUE(r.findings.HasCode(FindingCode::kIterablePayload)) << FormatFindings(r);
  EXPECT_TRUE(r.summary.eof_seen);
}

TEST(BlockMigrationTest, RecordsThatCarryNothingOrNoName) {
  StreamWriter w;
  w.Header().Configuration({"pc"});
  w.SectionStart(kId, "block", 0, 1).Be64(0x4 /* PROGRESS */).Be64(0x2 /* EOS */).Footer(kId);
  w.Eof();
  ParseResult ok = ParseBytes(w.bytes());
  EXPECT_TRUE(NoErrors(ok)) << FormatFindings(ok);
  EXPECT_EQ(ok.summary.iterable_sections.at("block"), 1u);

  StreamWriter empty;
  empty.Header().Configuration({"pc"});
  empty.SectionStart(kId, "block", 0, 1).Be64(0).Footer(kId).Eof();
  ParseResult nothing = ParseBytes(empty.bytes());
  EXPECT_TRUE(ErrorCodesAre(nothing, {FindingCode::kIterablePayload})) << FormatFindings(nothing);

  StreamWriter unnamed;
  unnamed.Header().Configuration({"pc"});
  unnamed.SectionStart(kId, "block", 0, 1).Be64(0x1 | 0x8).CountedString("").Footer(kId).Eof();
  ParseResult no_name = ParseBytes(unnamed.bytes());
  EXPECT_TRUE(ErrorCodesAre(no_name, {FindingCode::kIterablePayload})) << FormatFindings(no_name);
}

}  // namespace
}  // namespace qmig
