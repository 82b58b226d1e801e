// A client of QEMU's monitor protocol (QMP) on a connected socket: one JSON
// object per line, events skipped, every wait bounded by a deadline, every
// reply line bounded in size.
#ifndef QMIG_TOOLS_QMIG_QMP_CLIENT_H_
#define QMIG_TOOLS_QMIG_QMP_CLIENT_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "parser/wire/unique_fd.h"

namespace qmig {

class QmpClient {
 public:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}

  // The next reply that is not an event; nullopt on EOF, error, a line over
  // the limit, or the deadline.
  std::optional<nlohmann::json> Reply(absl::Time deadline);
  // Sends {"execute": name, "arguments": arguments} and waits for the reply.
  std::optional<nlohmann::json> Command(const std::string& name, const nlohmann::json& arguments,
                                        absl::Time deadline);

 private:
  UniqueFd fd_;
  std::string buffer_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_QMP_CLIENT_H_
