// The documentation that users rely on stays in step with the code.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "parser/wire/finding.h"
#include "tests/test_files.h"

namespace qmig {
namespace {

std::string ReadText(const std::string& path) {
  std::vector<uint8_t> bytes = testing::ReadFileBytes(testing::RunfilePath(path));
  return std::string(bytes.begin(), bytes.end());
}

TEST(DocsTest, FindingsDocListsEveryCodeWithItsSeverity) {
  std::string doc = ReadText("docs/FINDINGS.md");
  for (const FindingInfo& info : AllFindingInfos()) {
    std::string row = absl::StrCat("| `", info.name, "` | ", SeverityName(info.severity), " |");
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/FINDINGS.md lacks " << row
                                                << " (run tools/gen_findings_doc.py)";
  }
}

TEST(DocsTest, FindingsDocListsNoCodeTheSourceLacks) {
  std::string doc = ReadText("docs/FINDINGS.md");
  size_t rows = 0;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (!absl::StartsWith(line, "| `")) continue;
    ++rows;
    absl::string_view code = line.substr(3);
    code = code.substr(0, code.find('`'));
    bool known = false;
    for (const FindingInfo& info : AllFindingInfos()) known |= info.name == code;
    EXPECT_TRUE(known) << "docs/FINDINGS.md lists " << code << ", which the source does not have";
  }
  EXPECT_EQ(rows, AllFindingInfos().size()) << "one row per code";
}

TEST(DocsTest, FindingCodesAreUniqueAndDotted) {
  std::vector<std::string> seen;
  for (const FindingInfo& info : AllFindingInfos()) {
    std::string name(info.name);
    EXPECT_NE(name.find('.'), std::string::npos) << name;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), name), 0) << name;
    seen.push_back(name);
  }
}

}  // namespace
}  // namespace qmig
