// Cutting a real stream anywhere must give exactly one error: a truncation
// at the cut (or, past EOF, a truncated VMDESCRIPTION), never a crash, a hang
// or a misleading "malformed" finding.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/trailer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "tests/test_files.h"

namespace qmig {
namespace {

using testing::ReadFileBytes;
using testing::RunfilePath;

constexpr size_t kExhaustivePrefix = 64 * 1024;
constexpr int kChunks = 16;          // test cases per stream, for sharding
constexpr size_t kSamplesBeyond = 256;

// The VMDESCRIPTION of a corpus stream, to decode another stream strictly:
// without footers, only a description tells where a device section ends.
std::optional<VmDescription> DescriptionOf(const std::string& stream) {
  std::vector<uint8_t> data = ReadFileBytes(RunfilePath("corpus/qemu-7.2/" + stream));
  std::optional<TrailerLocation> trailer = LocateTrailer(data, 0, uint64_t{16} << 20);
  if (!trailer.has_value()) return std::nullopt;
  absl::StatusOr<VmDescription> description = ParseVmDescription(trailer->json);
  if (!description.ok()) return std::nullopt;
  return *std::move(description);
}

// Offset just after the EOF record: where an optional trailer would start.
uint64_t EndOfRecords(const std::vector<uint8_t>& data, const ParseOptions& options) {
  MemorySource source(data);
  ParseResult result = ParseMigrationStream(source, options);
  EXPECT_TRUE(result.valid());
  return result.summary.vmdesc_present ? data.size() - 5 - result.summary.vmdesc_bytes
                                       : data.size();
}

void CheckCut(const std::vector<uint8_t>& data, size_t cut, uint64_t end_of_records,
              const ParseOptions& options) {
  SCOPED_TRACE(absl::StrCat("cut at ", cut));
  MemorySource source(absl::Span<const uint8_t>(data.data(), cut));
  ParseResult result = ParseMigrationStream(source, options);
  if (cut == end_of_records) {
    EXPECT_TRUE(result.valid()) << "a stream that ends right after EOF is complete";
    return;
  }
  ASSERT_EQ(result.findings.error_count(), 1u);
  const Finding* error = nullptr;
  for (const Finding& finding : result.findings.findings()) {
    if (finding.severity == Severity::kError) error = &finding;
  }
  ASSERT_NE(error, nullptr);
  if (cut < end_of_records) {
    FindingCode expected = cut == 0 ? FindingCode::kEmpty : FindingCode::kTruncated;
    EXPECT_EQ(error->code, expected) << error->message;
    if (cut > 0) {
      EXPECT_EQ(error->offset, cut) << error->message;
      EXPECT_NE(error->message.find(absl::StrCat("truncated at offset ", cut)), std::string::npos)
          << error->message;
    }
  } else {
    EXPECT_EQ(error->code, FindingCode::kVmdescTruncated) << error->message;
    EXPECT_TRUE(error->qemu_accepts);
  }
}

struct Case {
  std::string stream;
  std::string schema_from;  // a stream whose trailer describes this one's devices
  int chunk;
};

class TruncationTest : public ::testing::TestWithParam<Case> {};

TEST_P(TruncationTest, EveryCutIsACleanTruncation) {
  std::vector<uint8_t> data = ReadFileBytes(RunfilePath("corpus/qemu-7.2/" + GetParam().stream));
  ASSERT_GT(data.size(), kExhaustivePrefix);
  std::optional<VmDescription> schema;
  ParseOptions options;
  if (!GetParam().schema_from.empty()) {
    schema = DescriptionOf(GetParam().schema_from);
    ASSERT_TRUE(schema.has_value());
    options.schema = &*schema;
  }
  uint64_t end_of_records = EndOfRecords(data, options);
  for (size_t cut = GetParam().chunk; cut < kExhaustivePrefix; cut += kChunks) {
    CheckCut(data, cut, end_of_records, options);
    if (HasFatalFailure() || HasFailure()) return;
  }
  // A sample beyond, spread over the rest of the stream and its trailer.
  for (size_t i = 0; i < kSamplesBeyond / kChunks; ++i) {
    size_t k = GetParam().chunk + i * kChunks;
    size_t cut = kExhaustivePrefix + (data.size() - kExhaustivePrefix) * k / kSamplesBeyond;
    CheckCut(data, cut, end_of_records, options);
    if (HasFailure()) return;
  }
}

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  // Streams without footers are cut with a description in hand: without one
  // a device section is delimited only by guessing (and reported unverified).
  const std::pair<const char*, const char*> streams[] = {
      {"pc-i440fx-7.2.mig", ""}, {"postcopy.mig", ""},
      {"xbzrle.mig", ""},        {"compress.mig", ""},
      {"no-footer.mig", "no-footer.mig"}, {"pc-i440fx-2.2.mig", "pc-i440fx-2.3.mig"},
  };
  for (const auto& [stream, schema_from] : streams) {
    for (int chunk = 0; chunk < kChunks; ++chunk) cases.push_back({stream, schema_from, chunk});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(RealStreams, TruncationTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.stream.substr(0, info.param.stream.find('.'));
                           for (char& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return absl::StrCat(name, "_", info.param.chunk);
                         });

}  // namespace
}  // namespace qmig
