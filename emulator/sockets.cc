#include "emulator/sockets.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace qmig {
namespace {

constexpr char kForms[] = "tcp:HOST:PORT, tcp:[IPV6]:PORT, tcp::PORT or unix:PATH";

absl::Status BadAddress(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("address '", text, "' ", why, " (", kForms, ")"));
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// The address in URI notation: tcp:1.2.3.4:P, tcp:[::1]:P, unix:PATH.
std::string Format(const sockaddr_storage& storage) {
  char host[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat("tcp:", host, ":", ntohs(in->sin_port));
  }
  if (storage.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("tcp:[", host, "]:", ntohs(in6->sin6_port));
  }
  return absl::StrCat("unix:", reinterpret_cast<const sockaddr_un*>(&storage)->sun_path);
}

}  // namespace

absl::StatusOr<SocketAddress> ParseSocketAddress(absl::string_view text) {
  SocketAddress address;
  address.text = std::string(text);
  if (absl::StartsWith(text, "unix:")) {
    absl::string_view path = text.substr(5);
    sockaddr_un un = {};
    if (path.empty() || path.size() >= sizeof(un.sun_path)) {
      return BadAddress(text, "has an empty or too long path");
    }
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&address.storage, &un, sizeof(un));
    address.length = sizeof(un);
    return address;
  }
  if (!absl::StartsWith(text, "tcp:")) return BadAddress(text, "is not tcp: or unix:");
  absl::string_view rest = text.substr(4);
  size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos) return BadAddress(text, "has no port");
  absl::string_view host = rest.substr(0, colon);
  uint32_t port = 0;
  if (!absl::SimpleAtoi(rest.substr(colon + 1), &port) || port > 65535) {
    return BadAddress(text, "has no valid port");
  }
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (host.empty() ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const std::string host_text(host);
  const std::string port_text = absl::StrCat(port);
  int error =
      getaddrinfo(host.empty() ? nullptr : host_text.c_str(), port_text.c_str(), &hints, &found);
  if (error != 0 || found == nullptr) {
    return BadAddress(text, absl::StrCat("does not resolve: ", gai_strerror(error)));
  }
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

absl::StatusOr<UniqueFd> ListenOn(const SocketAddress& address, std::string* bound) {
  UniqueFd listener(socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return absl::ErrnoToStatus(errno, "socket");
  if (!address.unix_path()) {
    int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length) !=
          0 ||
      listen(listener.get(), 8) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen on ", address.text));
  }
  sockaddr_storage actual = {};
  socklen_t length = sizeof(actual);
  if (getsockname(listener.get(), reinterpret_cast<sockaddr*>(&actual), &length) != 0) {
    return absl::ErrnoToStatus(errno, "getsockname");
  }
  if (bound != nullptr) *bound = Format(actual);
  return listener;
}

absl::StatusOr<UniqueFd> AcceptWithin(int listener, absl::Duration timeout) {
  struct pollfd pfd = {listener, POLLIN, 0};
  int ready;
  do {
    ready = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) return absl::DeadlineExceededError("no connection arrived in time");
  if (ready < 0) return absl::ErrnoToStatus(errno, "poll");
  UniqueFd connection(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!connection.valid()) return absl::ErrnoToStatus(errno, "accept");
  NoDelay(connection.get());
  return connection;
}

absl::StatusOr<UniqueFd> ConnectTo(const SocketAddress& address) {
  UniqueFd connection(socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!connection.valid()) return absl::ErrnoToStatus(errno, "socket");
  int result;
  do {
    result = connect(connection.get(), reinterpret_cast<const sockaddr*>(&address.storage),
                     address.length);
  } while (result != 0 && errno == EINTR);
  if (result != 0) return absl::ErrnoToStatus(errno, absl::StrCat("connect to ", address.text));
  NoDelay(connection.get());
  return connection;
}

}  // namespace qmig
