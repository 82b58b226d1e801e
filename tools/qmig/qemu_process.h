// A QEMU process run for one incoming migration: started with its monitor
// on a Unix socket in a private directory and its output in a log there,
// ended within a deadline whatever it does.
#ifndef QMIG_TOOLS_QMIG_QEMU_PROCESS_H_
#define QMIG_TOOLS_QMIG_QEMU_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/qmig/qmp_client.h"

namespace qmig {

// The QEMU binary for `version`: "7.2" is the system's qemu-system-x86_64;
// "10.0", "11.1" and other versions are the wrappers tools/qemu-versions
// makes under $QMIG_QEMU_ROOT (default /var/lib/qmig/qemu); anything with a
// '/' is a path, and any other name is looked up on PATH.
absl::StatusOr<std::string> QemuBinary(const std::string& version);

// Whether `binary` is a wrapper of tools/qemu-versions, whose QEMU runs in a
// chroot that sees the host's /tmp and nothing else of its files.
bool QemuSeesOnlyTmp(const std::string& binary);

class QemuProcess {
 public:
  struct Exit {
    std::optional<int> code;    // exited with this status
    std::optional<int> signal;  // killed by this signal (ours or not)
    bool killed_by_us = false;
  };

  // Runs `binary args... -qmp unix:DIR/qmp.sock` with stdin from /dev/null
  // and stdout and stderr to DIR/qemu.log, waits for it to connect to its
  // monitor and does the QMP handshake, all within `connect_timeout`.
  static absl::StatusOr<std::unique_ptr<QemuProcess>> Start(const std::string& binary,
                                                            const std::vector<std::string>& args,
                                                            const std::string& dir,
                                                            absl::Duration connect_timeout);
  ~QemuProcess();  // kills QEMU if it still runs

  QmpClient& qmp() { return *qmp_; }
  // The command line as it ran, shell-quoted, for people to run again.
  const std::string& command_line() const { return command_line_; }
  // Waits for QEMU to exit until `deadline`, then kills it.
  Exit WaitOrKill(absl::Time deadline);
  // The last `lines` non-empty lines QEMU wrote.
  std::string LogTail(size_t lines) const;

 private:
  QemuProcess() = default;

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
  std::string command_line_;
  std::unique_ptr<QmpClient> qmp_;
};

// A QEMU run that ends by itself (such as -dump-vmstate, which exits once
// the machine is created): `binary args...` with stdin from /dev/null and
// stdout and stderr to DIR/qemu.log, killed if it is still running at
// `timeout`.
struct QemuRun {
  QemuProcess::Exit exit;
  std::string command_line;  // shell-quoted
  std::string log_tail;      // the last lines QEMU wrote
};
absl::StatusOr<QemuRun> RunQemuToExit(const std::string& binary,
                                      const std::vector<std::string>& args, const std::string& dir,
                                      absl::Duration timeout);

std::string ShellQuote(const std::string& text);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_QEMU_PROCESS_H_
