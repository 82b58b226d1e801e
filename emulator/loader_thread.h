// The destination's device-loading thread: QEMU's main thread after LISTEN.
// The package's device state and the commands after it (PING, RUN) run here
// in order while the listen path reads on, which is why PONG 3 can follow
// PONG 4 on the return path.
#ifndef QMIG_EMULATOR_LOADER_THREAD_H_
#define QMIG_EMULATOR_LOADER_THREAD_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "emulator/mutex.h"

namespace qmig {

class LoaderThread {
 public:
  LoaderThread() = default;
  LoaderThread(const LoaderThread&) = delete;
  LoaderThread& operator=(const LoaderThread&) = delete;
  ~LoaderThread() { Stop(); }

  // Starts the thread; once only. Start, Stop and running() belong to one
  // thread (the parsing thread); Enqueue to any.
  void Start();
  bool running() const { return thread_.joinable(); }
  // Runs `work` on the thread after everything queued before it.
  void Enqueue(std::function<void()> work);
  // Runs what is queued, then ends the thread.
  void Stop();

 private:
  void Loop();

  Mutex mutex_;
  std::condition_variable ready_;  // work was queued, or the thread should stop
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  bool stop_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_LOADER_THREAD_H_
