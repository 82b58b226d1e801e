#include "emulator/loader_thread.h"

#include <utility>

namespace qmig {

void LoaderThread::Start() {
  if (running()) return;
  thread_ = std::thread([this] { Loop(); });
}

void LoaderThread::Enqueue(std::function<void()> work) {
  {
    MutexLock lock(&mutex_);
    queue_.push_back(std::move(work));
  }
  ready_.notify_one();
}

void LoaderThread::Stop() {
  if (!running()) return;
  {
    MutexLock lock(&mutex_);
    stop_ = true;
  }
  ready_.notify_one();
  thread_.join();
}

void LoaderThread::Loop() {
  while (true) {
    std::function<void()> work;
    {
      MutexLock lock(&mutex_);
      while (queue_.empty() && !stop_) mutex_.Wait(ready_);
      if (queue_.empty()) return;  // stopped, and everything queued has run
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace qmig
