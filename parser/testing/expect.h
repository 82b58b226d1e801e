// GoogleTest assertions on parse findings. Each names the first finding with
// a code and checks all of its properties, so that a wrong offset, severity,
// package offset, qemu_accepts flag or path fails the test:
//
//   EXPECT_TRUE(HasFinding(result, Want(FindingCode::kPackageTooLarge, 0x1234)
//                                      .QemuAccepts().Path("PACKAGED@0x")));
//
// A Want without InPackage() requires the finding to have no package offset;
// one without Severity() requires the code's default severity.
#ifndef QMIG_PARSER_TESTING_EXPECT_H_
#define QMIG_PARSER_TESTING_EXPECT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "parser/stream_parser.h"
#include "parser/testing/parse_util.h"

namespace qmig {

struct Want {
  Want(FindingCode code, uint64_t offset) : code(code), offset(offset) {}
  Want& InPackage(uint64_t package_offset) {
    this->package_offset = package_offset;
    return *this;
  }
  Want& QemuAccepts(bool accepts = true) {
    qemu_accepts = accepts;
    return *this;
  }
  Want& Path(std::string prefix) {
    path_prefix = std::move(prefix);
    return *this;
  }
  Want& PathHas(std::string part) {
    path_part = std::move(part);
    return *this;
  }
  Want& Sev(Severity s) {
    severity = s;
    return *this;
  }

  FindingCode code;
  uint64_t offset;
  std::optional<uint64_t> package_offset;
  bool qemu_accepts = false;
  std::string path_prefix;
  std::string path_part;
  std::optional<Severity> severity;
};

inline ::testing::AssertionResult HasFinding(const ParseResult& result, const Want& want) {
  const Finding* f = FindFinding(result, want.code);
  const std::string all = absl::StrCat("\nfindings:\n", FormatFindings(result));
  if (f == nullptr) {
    return ::testing::AssertionFailure()
           << "no finding " << DescribeFinding(want.code).name << all;
  }
  std::string wrong;
  if (f->offset != want.offset) {
    absl::StrAppend(&wrong, " offset 0x", absl::Hex(f->offset), " != 0x", absl::Hex(want.offset),
                    ";");
  }
  if (f->package_offset != want.package_offset) {
    absl::StrAppend(&wrong, " package_offset ",
                    f->package_offset ? absl::StrCat("0x", absl::Hex(*f->package_offset)) : "none",
                    " != ",
                    want.package_offset ? absl::StrCat("0x", absl::Hex(*want.package_offset))
                                        : "none",
                    ";");
  }
  Severity severity = want.severity.value_or(DescribeFinding(want.code).severity);
  if (f->severity != severity) {
    absl::StrAppend(&wrong, " severity ", SeverityName(f->severity), " != ",
                    SeverityName(severity), ";");
  }
  if (f->qemu_accepts.any() != want.qemu_accepts) {
    absl::StrAppend(&wrong, " qemu_accepts ", f->qemu_accepts.any(), " != ", want.qemu_accepts, ";");
  }
  if (!absl::StartsWith(f->path, want.path_prefix)) {
    absl::StrAppend(&wrong, " path '", f->path, "' does not start with '", want.path_prefix, "';");
  }
  if (!absl::StrContains(f->path, want.path_part)) {
    absl::StrAppend(&wrong, " path '", f->path, "' does not contain '", want.path_part, "';");
  }
  if (!wrong.empty()) {
    return ::testing::AssertionFailure()
           << "first " << DescribeFinding(want.code).name << ":" << wrong << all;
  }
  return ::testing::AssertionSuccess();
}

// Exactly these error codes, in this order, and nothing else of error
// severity.
inline ::testing::AssertionResult ErrorCodesAre(const ParseResult& result,
                                                std::vector<FindingCode> codes) {
  std::vector<FindingCode> actual;
  for (const Finding* f : Errors(result)) actual.push_back(f->code);
  if (actual == codes) return ::testing::AssertionSuccess();
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  failure << "expected errors:";
  for (FindingCode code : codes) failure << " " << DescribeFinding(code).name;
  return failure << "\nfindings:\n" << FormatFindings(result);
}

inline ::testing::AssertionResult NoErrors(const ParseResult& result) {
  return ErrorCodesAre(result, {});
}

}  // namespace qmig

#endif  // QMIG_PARSER_TESTING_EXPECT_H_
