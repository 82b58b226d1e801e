// Guest threads: after RUN they touch arena pages in a chosen pattern, so
// that missing pages fault through userfaultfd as a running guest's would.
#ifndef QMIG_EMULATOR_GUEST_H_
#define QMIG_EMULATOR_GUEST_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "emulator/arena.h"

namespace qmig {

struct GuestPattern {
  enum class Kind { kNone, kSequential, kRandom, kHotSet, kTrace };
  Kind kind = Kind::kNone;
  uint32_t threads = 2;
  uint64_t touches = 1024;  // per thread
  uint64_t hot_pages = 64;  // kHotSet: the set's size
  uint64_t seed = 1;
  std::string block;                                    // empty: the largest block
  std::vector<std::pair<std::string, uint64_t>> trace;  // kTrace: (block, offset)
};

// Parses "none", "sequential", "random", "hot", "trace:FILE", each optionally
// followed by ",threads=N,touches=N,pages=N,seed=N,block=NAME". A trace file
// holds one "BLOCK OFFSET" per line (offset in hex or decimal).
absl::StatusOr<GuestPattern> ParseGuestPattern(absl::string_view spec);

// Runs the threads over an arena until each has made its touches or Stop().
class GuestThreads {
 public:
  GuestThreads(GuestArena& arena, GuestPattern pattern);
  ~GuestThreads();  // Stop() and Join()

  void Start();
  void Stop() { stop_.store(true); }
  // Waits for every thread; a thread blocked in a fault returns once its
  // page is placed or the arena is unregistered.
  void Join();
  // Waits until every thread has finished, at most `timeout`; true if so.
  bool WaitFor(absl::Duration timeout);
  uint64_t touches() const { return touches_.load(); }
  // XOR of the first byte of every page touched: makes the reads observable.
  uint8_t digest() const { return digest_.load(); }

 private:
  void Body(uint32_t index);

  GuestArena& arena_;
  GuestPattern pattern_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> touches_{0};
  std::atomic<uint32_t> running_{0};
  std::atomic<uint8_t> digest_{0};
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_GUEST_H_
