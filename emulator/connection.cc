#include "emulator/connection.h"

#include <errno.h>
#include <sys/socket.h>

#include <string>

#include "emulator/sockets.h"

namespace qmig {

absl::StatusOr<Connection> Connect(Transport transport) {
  Connection connection;
  if (transport == Transport::kSocketPair) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return absl::ErrnoToStatus(errno, "socketpair");
    }
    connection.source = UniqueFd(fds[0]);
    connection.destination = UniqueFd(fds[1]);
    return connection;
  }
  absl::StatusOr<SocketAddress> loopback = ParseSocketAddress("tcp:127.0.0.1:0");
  if (!loopback.ok()) return loopback.status();
  std::string bound;
  absl::StatusOr<UniqueFd> listener = ListenOn(*loopback, &bound);
  if (!listener.ok()) return listener.status();
  absl::StatusOr<SocketAddress> target = ParseSocketAddress(bound);
  if (!target.ok()) return target.status();
  absl::StatusOr<UniqueFd> source = ConnectTo(*target);
  if (!source.ok()) return source.status();
  absl::StatusOr<UniqueFd> destination = AcceptWithin(listener->get(), absl::Seconds(10));
  if (!destination.ok()) return destination.status();
  connection.source = std::move(*source);
  connection.destination = std::move(*destination);
  return connection;
}

}  // namespace qmig
