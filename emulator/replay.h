// Replays a captured stream into a Destination over a real socket: a source
// thread writes the bytes into one end of a connected socket pair (or a
// loopback TCP connection), the destination reads the other end and sends
// its return path back on it, and a collector keeps what comes back.
#ifndef QMIG_EMULATOR_REPLAY_H_
#define QMIG_EMULATOR_REPLAY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "emulator/connection.h"
#include "emulator/destination.h"
#include "parser/return_path.h"
#include "parser/wire/byte_source.h"

namespace qmig {

struct ReplayOptions {
  DestinationOptions destination;
  Transport transport = Transport::kSocketPair;
  // A recorded return path of the same migration, to compare with.
  std::optional<std::vector<uint8_t>> recorded_return_path;
  // Longest silence on the connection before the source counts as stopped.
  absl::Duration stall_timeout = absl::Seconds(10);
};

struct ReplayResult {
  DestinationReport report;      // findings of the parser and the emulator
  ReturnPathResult return_path;  // the destination's own return path, parsed back
  uint64_t bytes_sent = 0;
};

// Replays `stream` (read front to back, never all held) and returns what
// the destination found. Fails only when the transport cannot be set up.
absl::StatusOr<ReplayResult> ReplayStream(ByteSource& stream, const ReplayOptions& options);

}  // namespace qmig

#endif  // QMIG_EMULATOR_REPLAY_H_
