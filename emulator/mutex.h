// Mutex: a std::mutex that clang's -Wthread-safety analysis understands
// (ABSL_GUARDED_BY on what it guards, ABSL_EXCLUSIVE_LOCKS_REQUIRED on what
// runs under it) and that ThreadSanitizer sees through. The system's Abseil
// is not built with TSan, so an absl::Mutex would look to TSan like no
// synchronisation at all.
#ifndef QMIG_EMULATOR_MUTEX_H_
#define QMIG_EMULATOR_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace qmig {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mutex_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mutex_.unlock(); }
  // Releases the mutex while waiting on `ready`, and holds it again on
  // return (spuriously woken or not: callers loop on their condition).
  void Wait(std::condition_variable& ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mutex_, std::adopt_lock);
    ready.wait(lock);
    lock.release();
  }

 private:
  std::mutex mutex_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mutex_;
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_MUTEX_H_
