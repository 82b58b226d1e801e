// The qmig subcommands. Each returns the process exit status.
#ifndef QMIG_TOOLS_QMIG_COMMANDS_H_
#define QMIG_TOOLS_QMIG_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "parser/wire/limits.h"

namespace qmig {

inline constexpr int kExitValid = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;

struct CommonOptions {
  bool json = false;
  bool quiet = false;
  std::string profile = "auto";
  std::string schema_path;
  std::string kind = "auto";
  std::string main_path;    // companion main stream of a return path or multifd channel
  std::string output_path;  // -o
  uint64_t max_package = kOriginalPackageLimit;
};

int RunCheck(const std::vector<std::string>& operands, const CommonOptions& options);
int RunSchema(const std::vector<std::string>& operands, const CommonOptions& options);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_COMMANDS_H_
