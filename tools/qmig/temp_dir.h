// A private temporary directory under $TMPDIR (or /tmp), or under `base`
// when one is given, removed with all it holds when the object goes. path()
// is empty when it could not be made.
#ifndef QMIG_TOOLS_QMIG_TEMP_DIR_H_
#define QMIG_TOOLS_QMIG_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace qmig {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix, const char* base = nullptr) {
    if (base == nullptr) base = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/", prefix, ".XXXXXX");
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_TEMP_DIR_H_
