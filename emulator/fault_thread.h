// The destination's fault thread: reads a userfaultfd's page faults and hands
// each faulting address to a callback, as QEMU's postcopy fault thread does.
// An eventfd wakes it to stop.
#ifndef QMIG_EMULATOR_FAULT_THREAD_H_
#define QMIG_EMULATOR_FAULT_THREAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "parser/wire/unique_fd.h"

namespace qmig {

class FaultThread {
 public:
  FaultThread() = default;
  FaultThread(const FaultThread&) = delete;
  FaultThread& operator=(const FaultThread&) = delete;
  ~FaultThread() { Stop(); }

  // Starts reading `uffd` (which must outlive the thread); once only.
  // `on_fault` runs on the fault thread.
  void Start(int uffd, std::function<void(uint64_t address)> on_fault);
  // Wakes the thread and waits for it to end.
  void Stop();

 private:
  void Loop();

  int uffd_ = -1;
  std::function<void(uint64_t)> on_fault_;
  UniqueFd wake_;  // an eventfd that ends the poll
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_FAULT_THREAD_H_
