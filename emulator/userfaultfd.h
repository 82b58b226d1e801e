// Opening a userfaultfd, and saying exactly why it cannot be opened.
//
// Three ways exist: the userfaultfd(2) syscall with kernel faults (root, or
// CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1), the same syscall with
// UFFD_USER_MODE_ONLY (any user: faults from user code only), and the
// /dev/userfaultfd device. qmig only ever needs user-mode faults: guest
// threads touch pages from user code, and pages are placed with UFFDIO_COPY
// from qmig's own buffers, never by the kernel reading into the arena.
#ifndef QMIG_EMULATOR_USERFAULTFD_H_
#define QMIG_EMULATOR_USERFAULTFD_H_

#include <string>

#include "absl/status/statusor.h"
#include "parser/wire/unique_fd.h"

namespace qmig {

struct Userfaultfd {
  UniqueFd fd;
  std::string how;  // which way it was opened, for reports
};

// Opens a non-blocking, close-on-exec userfaultfd with the API handshake
// done (UFFDIO_API). On failure the status message says which way failed
// and why, and what would make it work.
absl::StatusOr<Userfaultfd> OpenUserfaultfd();

}  // namespace qmig

#endif  // QMIG_EMULATOR_USERFAULTFD_H_
