// Writes return-path messages (destination to source) onto a descriptor.
// Thread-safe: the listen path, the device-loading thread and the fault
// thread all send on it.
#ifndef QMIG_EMULATOR_RETURN_PATH_WRITER_H_
#define QMIG_EMULATOR_RETURN_PATH_WRITER_H_

#include <cstdint>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace qmig {

class ReturnPathWriter {
 public:
  // `fd` is not owned; -1 discards everything (no return path).
  explicit ReturnPathWriter(int fd) : fd_(fd) {}

  // Moves to a new descriptor (a recovered connection): working again, and
  // the next request names its block.
  void Reset(int fd);

  absl::Status Pong(uint32_t value);
  absl::Status Shut(uint32_t status);
  // REQ_PAGES_ID when `block` differs from the previous request's block,
  // REQ_PAGES otherwise, as QEMU does.
  absl::Status RequestPages(absl::string_view block, uint64_t start, uint32_t length);
  absl::Status RecvBitmap(absl::string_view block, absl::Span<const uint8_t> bitmap_le);
  absl::Status ResumeAck();

  uint64_t messages() const;

 private:
  absl::Status Send(uint16_t type, absl::Span<const uint8_t> payload,
                    absl::Span<const uint8_t> trailer = {});

  int fd_;
  mutable std::mutex mutex_;  // Debian's Abseil is not TSan-instrumented: std::mutex is
  std::string last_block_;    // guarded by mutex_
  uint64_t messages_ = 0;     // guarded by mutex_
  bool broken_ = false;       // guarded by mutex_
};

// Writes all of `bytes` to `fd`, retrying short writes and EINTR; gives up
// after `timeout_ms` without progress (a peer that stopped reading).
absl::Status WriteAll(int fd, absl::Span<const uint8_t> bytes, int timeout_ms = 10000);

}  // namespace qmig

#endif  // QMIG_EMULATOR_RETURN_PATH_WRITER_H_
