#include "emulator/fault_thread.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

namespace qmig {

void FaultThread::Start(int uffd, std::function<void(uint64_t address)> on_fault) {
  if (thread_.joinable()) return;
  uffd_ = uffd;
  on_fault_ = std::move(on_fault);
  wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  thread_ = std::thread([this] { Loop(); });
}

void FaultThread::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  if (wake_.valid() && write(wake_.get(), &one, sizeof(one)) < 0) {
    // Cannot happen for an eventfd below its maximum; the loop would still
    // stop at its next fault.
  }
  thread_.join();
}

void FaultThread::Loop() {
  while (!stop_.load()) {
    struct pollfd pfds[2] = {{uffd_, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int ready = poll(pfds, 2, -1);
    if (ready <= 0 || (pfds[0].revents & POLLIN) == 0) continue;
    struct uffd_msg messages[16];
    ssize_t n = read(uffd_, messages, sizeof(messages));
    if (n <= 0) continue;
    for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++i) {
      if (messages[i].event != UFFD_EVENT_PAGEFAULT) continue;
      on_fault_(messages[i].arg.pagefault.address);
    }
  }
}

}  // namespace qmig
