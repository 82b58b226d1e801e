// A connected pair of sockets standing for one migration connection: the
// source's end and the destination's end. Either a socket pair or a real
// loopback TCP connection on 127.0.0.1.
#ifndef QMIG_EMULATOR_CONNECTION_H_
#define QMIG_EMULATOR_CONNECTION_H_

#include "absl/status/statusor.h"
#include "emulator/userfaultfd.h"

namespace qmig {

enum class Transport { kSocketPair, kTcpLoopback };

struct Connection {
  UniqueFd source;       // the migration source's end
  UniqueFd destination;  // the incoming side's end
};

absl::StatusOr<Connection> Connect(Transport transport);

}  // namespace qmig

#endif  // QMIG_EMULATOR_CONNECTION_H_
