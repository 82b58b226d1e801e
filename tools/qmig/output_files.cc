#include "tools/qmig/output_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace qmig {
namespace {

// Bytes gathered before one write(2).
constexpr size_t kBufferBytes = size_t{256} << 10;

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<UniqueFd> OpenDirectory(const std::string& path, bool create) {
  if (create && mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno("cannot create", path);
  }
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("cannot open directory", path);
  return fd;
}

absl::StatusOr<UniqueFd> OpenSubdirectory(int dir_fd, const std::string& name,
                                          const std::string& display_path) {
  if (mkdirat(dir_fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno("cannot create", display_path);
  }
  UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    return Errno(errno == ELOOP || errno == ENOTDIR ? "refusing a link or file at" : "cannot open",
                 display_path);
  }
  return fd;
}

absl::StatusOr<std::unique_ptr<FileOut>> FileOut::Create(int dir_fd, const std::string& name,
                                                         const std::string& display_path) {
  UniqueFd fd(
      openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return Errno(errno == ELOOP ? "refusing a symbolic link at" : "cannot create", display_path);
  }
  return std::unique_ptr<FileOut>(new FileOut(std::move(fd), display_path));
}

FileOut::~FileOut() { Close().IgnoreError(); }

void FileOut::Write(absl::string_view text) {
  buffer_.append(text.data(), text.size());
  if (buffer_.size() >= kBufferBytes) Flush();
}

void FileOut::Flush() {
  size_t done = 0;
  while (status_.ok() && done < buffer_.size()) {
    ssize_t n = write(fd_.get(), buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status_ = Errno("cannot write", path_);
      break;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

absl::Status FileOut::Close() {
  if (fd_.get() < 0) return status_;
  Flush();
  if (close(fd_.Release()) != 0 && status_.ok()) status_ = Errno("cannot close", path_);
  return status_;
}

}  // namespace qmig
