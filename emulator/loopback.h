// A whole migration on one machine: a SyntheticSource migrates its guest
// image over a real socket into a Destination, and the destination's memory
// is compared with the source's at the end.
#ifndef QMIG_EMULATOR_LOOPBACK_H_
#define QMIG_EMULATOR_LOOPBACK_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "emulator/connection.h"
#include "emulator/destination.h"
#include "emulator/synthetic_source.h"

namespace qmig {

struct LoopbackOptions {
  SyntheticSourceOptions source;
  DestinationOptions destination;
  Transport transport = Transport::kSocketPair;
};

struct LoopbackResult {
  DestinationReport report;  // findings of parser, emulator and the memory comparison
  SyntheticSourceReport source;
  uint64_t differing_pages = 0;
};

// Migrates `image` (updated as the source's guest runs) and returns what the
// destination found. Fails only when the connection cannot be made.
absl::StatusOr<LoopbackResult> RunLoopback(GuestImage& image, const LoopbackOptions& options);

}  // namespace qmig

#endif  // QMIG_EMULATOR_LOOPBACK_H_
