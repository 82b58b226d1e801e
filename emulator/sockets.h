// Socket addresses as QEMU's migration URIs write them, and the listening,
// accepting and connecting every command and the emulator share:
//   tcp:HOST:PORT    HOST a name, an IPv4 address or [an IPv6 address]
//   tcp::PORT        every local address
//   unix:PATH        a Unix stream socket
// Port 0 asks the system for a free port; the bound address says which.
#ifndef QMIG_EMULATOR_SOCKETS_H_
#define QMIG_EMULATOR_SOCKETS_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "parser/wire/unique_fd.h"

namespace qmig {

struct SocketAddress {
  sockaddr_storage storage = {};
  socklen_t length = 0;
  std::string text;  // as given, for messages
  bool unix_path() const { return storage.ss_family == AF_UNIX; }
};

// Parses (and for a host name, resolves) `text`. The message of an error
// lists the forms above.
absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text);

// A listening socket on `address`; `bound` gets the address it listens on
// in the same notation (with the port the system chose for port 0).
absl::StatusOr<UniqueFd> ListenOn(const SocketAddress& address, std::string* bound);
// The next connection on `listener`, within `timeout`; TCP without Nagle.
absl::StatusOr<UniqueFd> AcceptWithin(int listener, absl::Duration timeout);
// A connection to `address`; TCP without Nagle.
absl::StatusOr<UniqueFd> ConnectTo(const SocketAddress& address);

}  // namespace qmig

#endif  // QMIG_EMULATOR_SOCKETS_H_
