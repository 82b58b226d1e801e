#include "tools/qmig/qmp_client.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "absl/time/clock.h"
#include "parser/wire/limits.h"

namespace qmig {

std::optional<nlohmann::json> QmpClient::Reply(absl::Time deadline) {
  while (true) {
    size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      nlohmann::json reply = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (reply.is_discarded() || !reply.is_object()) return std::nullopt;
      if (reply.contains("event")) continue;
      return reply;
    }
    if (buffer_.size() > kMaxQmpLine || absl::Now() > deadline) return std::nullopt;
    char chunk[4096];
    timeval tv{0, 100000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n == 0) return std::nullopt;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return std::nullopt;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

std::optional<nlohmann::json> QmpClient::Command(const std::string& name,
                                                 const nlohmann::json& arguments,
                                                 absl::Time deadline) {
  nlohmann::json request = {{"execute", name}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  std::string text = request.dump() + "\n";
  if (send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(text.size())) {
    return std::nullopt;
  }
  return Reply(deadline);
}

}  // namespace qmig
