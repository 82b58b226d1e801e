#include "emulator/userfaultfd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace qmig {
namespace {

std::string ReadFirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "Seccomp:\t2" in /proc/self/status means a filter is installed.
bool SeccompFilterActive() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Seccomp:", 0) == 0) return line.find('2') != std::string::npos;
  }
  return false;
}

absl::Status Handshake(int fd) {
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = 0;
  if (ioctl(fd, UFFDIO_API, &api) != 0) {
    return absl::ErrnoToStatus(errno, "UFFDIO_API");
  }
  constexpr uint64_t kNeeded = (1ull << _UFFDIO_REGISTER) | (1ull << _UFFDIO_UNREGISTER);
  if ((api.ioctls & kNeeded) != kNeeded) {
    return absl::FailedPreconditionError("userfaultfd lacks REGISTER/UNREGISTER");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Userfaultfd> OpenUserfaultfd() {
  const int base_flags = O_CLOEXEC | O_NONBLOCK;
  std::string attempts;
  // 1. Kernel and user faults.
  int fd = static_cast<int>(syscall(SYS_userfaultfd, base_flags));
  int errno_full = fd < 0 ? errno : 0;
  if (fd >= 0) {
    UniqueFd owned(fd);
    absl::Status status = Handshake(fd);
    if (status.ok()) return Userfaultfd{std::move(owned), "userfaultfd(2)"};
    absl::StrAppend(&attempts, "userfaultfd(2): ", status.message(), "; ");
  } else {
    absl::StrAppend(&attempts, "userfaultfd(2): ", std::strerror(errno_full), "; ");
  }
  // 2. User-mode faults only: allowed to any user on kernels >= 5.11.
  fd = static_cast<int>(syscall(SYS_userfaultfd, base_flags | UFFD_USER_MODE_ONLY));
  int errno_user = fd < 0 ? errno : 0;
  if (fd >= 0) {
    UniqueFd owned(fd);
    absl::Status status = Handshake(fd);
    if (status.ok()) return Userfaultfd{std::move(owned), "userfaultfd(2) UFFD_USER_MODE_ONLY"};
    absl::StrAppend(&attempts, "UFFD_USER_MODE_ONLY: ", status.message(), "; ");
  } else {
    absl::StrAppend(&attempts, "UFFD_USER_MODE_ONLY: ", std::strerror(errno_user), "; ");
  }
  // 3. The device node (kernels >= 6.1), governed by its file permissions.
  int dev = ::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  int errno_dev = dev < 0 ? errno : 0;
  if (dev >= 0) {
    UniqueFd device(dev);
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, base_flags);
    if (fd >= 0) {
      UniqueFd owned(fd);
      absl::Status status = Handshake(fd);
      if (status.ok()) return Userfaultfd{std::move(owned), "/dev/userfaultfd"};
      absl::StrAppend(&attempts, "/dev/userfaultfd: ", status.message());
    } else {
      absl::StrAppend(&attempts, "/dev/userfaultfd: ", std::strerror(errno));
    }
  } else {
    absl::StrAppend(&attempts, "/dev/userfaultfd: ", std::strerror(errno_dev));
  }

  // Explain.
  std::string why;
  std::string sysctl = ReadFirstLine("/proc/sys/vm/unprivileged_userfaultfd");
  if (errno_full == ENOSYS) {
    why = "the kernel has no userfaultfd (CONFIG_USERFAULTFD is off)";
  } else if (SeccompFilterActive() && (errno_user == EPERM || errno_user == ENOSYS)) {
    why =
        "a seccomp filter blocks the userfaultfd syscall (Docker's default profile does); run "
        "with a profile that allows it, or --security-opt seccomp=unconfined";
  } else if (errno_user == EINVAL) {
    why = absl::StrCat(
        "this kernel predates UFFD_USER_MODE_ONLY (5.11) and "
        "vm.unprivileged_userfaultfd is ",
        sysctl.empty() ? "unknown" : sysctl,
        "; run as root, grant CAP_SYS_PTRACE, or set vm.unprivileged_userfaultfd=1");
  } else {
    why = absl::StrCat("not permitted (vm.unprivileged_userfaultfd=", sysctl.empty() ? "?" : sysctl,
                       "); run as root, grant CAP_SYS_PTRACE, set vm.unprivileged_userfaultfd=1, "
                       "or give this user read-write access to /dev/userfaultfd");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("userfaultfd is unavailable: ", why, " [", attempts, "]"));
}

}  // namespace qmig
