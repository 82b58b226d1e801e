// The command line of qmig: each command declares the flags it takes, and
// only those; values are parsed by Abseil's flag parsers (absl::ParseFlag).
// Spelling follows the Unix tools users know:
//   --max-package=N, --max_package=N and --max-package N are one flag;
//   a bool is --json, --json=false or --nojson; -o is --o; -h is --help;
//   "--" ends the flags, and what follows is passed on as operands.
// Every mistake is a usage error: one line naming the flag and a hint.
#ifndef QMIG_TOOLS_QMIG_CLI_H_
#define QMIG_TOOLS_QMIG_CLI_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/marshalling.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace qmig {

struct Flag {
  std::string name;        // as in help: "max-package"
  std::string value_name;  // "BYTES"; empty for a bool
  std::string help;
  std::string default_text;
  // Parses `text` into the command's options; false with `*error` set when
  // the value is not valid.
  std::function<bool(absl::string_view text, std::string* error)> set;
  bool is_bool() const { return value_name.empty(); }
};

// A flag of any type absl::ParseFlag reads (integers, strings, bools, ...).
template <typename T>
Flag ValueFlag(absl::string_view name, T* target, absl::string_view value_name,
               absl::string_view help) {
  return Flag{std::string(name), std::string(value_name), std::string(help),
              absl::UnparseFlag(*target), [target](absl::string_view text, std::string* error) {
                return absl::ParseFlag(text, target, error);
              }};
}

Flag BoolFlag(absl::string_view name, bool* target, absl::string_view help);

struct ParsedArgs {
  std::vector<std::string> operands;
  bool help = false;
};

// Parses what follows the command's name. The error names the flag or the
// value at fault.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     const std::vector<Flag>& flags);

// "  --max-package=BYTES  largest PACKAGED blob ... (default: 16777216)"
// lines, one flag each.
std::string FlagsHelp(const std::vector<Flag>& flags);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_CLI_H_
