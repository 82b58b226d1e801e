#include "emulator/connection.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return absl::ErrnoToStatus(errno, "socket");
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener.get(), 1) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::ErrnoToStatus(errno, "listen on 127.0.0.1");
  }
  connection.source = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!connection.source.valid() ||
      connect(connection.source.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
          0) {
    return absl::ErrnoToStatus(errno, "connect to 127.0.0.1");
  }
  connection.destination = UniqueFd(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!connection.destination.valid()) return absl::ErrnoToStatus(errno, "accept");
  int one = 1;
  setsockopt(connection.source.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(connection.destination.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return connection;
}

}  // namespace qmig
