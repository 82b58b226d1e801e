// Files qmig writes into a directory a user names (extract) or a private
// temporary one (diff): created inside a directory opened once, never
// through a symbolic link that is already there, and written through a
// buffer so that output of any size streams out.
#ifndef QMIG_TOOLS_QMIG_OUTPUT_FILES_H_
#define QMIG_TOOLS_QMIG_OUTPUT_FILES_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "parser/wire/unique_fd.h"
#include "tools/inspect/field_writer.h"

namespace qmig {

// Opens directory `path` (made first when `create` and missing). `path`
// itself may be a link the user made; what is created inside is not.
absl::StatusOr<UniqueFd> OpenDirectory(const std::string& path, bool create);
// Opens (made first when missing) the subdirectory `name` of `dir_fd`,
// refusing a symbolic link there.
absl::StatusOr<UniqueFd> OpenSubdirectory(int dir_fd, const std::string& name,
                                          const std::string& display_path);

// A file created (or emptied) in `dir_fd`, written through a buffer. The
// first write error is kept and returned by Close().
class FileOut final : public TextOut {
 public:
  static absl::StatusOr<std::unique_ptr<FileOut>> Create(int dir_fd, const std::string& name,
                                                         const std::string& display_path);
  ~FileOut() override;

  void Write(absl::string_view text) override;
  absl::Status Close();

 private:
  FileOut(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  void Flush();

  UniqueFd fd_;
  std::string path_;
  std::string buffer_;
  absl::Status status_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_OUTPUT_FILES_H_
