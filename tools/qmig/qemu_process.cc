#include "tools/qmig/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "emulator/sockets.h"

extern char** environ;

namespace qmig {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// Starts `binary args...` with stdin from /dev/null and stdout and stderr to
// `log_path`; sets `command_line` to it, shell-quoted.
absl::StatusOr<pid_t> SpawnLogged(const std::string& binary, const std::vector<std::string>& args,
                                  const std::string& log_path, std::string* command_line) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> quoted;
  for (const std::string& arg : argv) quoted.push_back(ShellQuote(arg));
  *command_line = absl::StrJoin(quoted, " ");
  std::vector<char*> raw;
  for (std::string& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  int spawned = posix_spawnp(&pid, binary.c_str(), &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", binary, ": ", std::strerror(spawned),
                                            " (tools/setup installs QEMU)"));
  }
  return pid;
}

// The last `lines` non-empty lines of a file.
std::string FileTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) all.push_back(line);
    if (all.size() > 4 * lines) all.erase(all.begin(), all.end() - lines);
  }
  if (all.size() > lines) all.erase(all.begin(), all.end() - lines);
  return absl::StrJoin(all, "\n");
}

}  // namespace

std::string ShellQuote(const std::string& text) {
  bool plain = !text.empty();
  for (char c : text) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '/' || c == ',' || c == '=' || c == ':' || c == '@')) {
      plain = false;
    }
  }
  if (plain) return text;
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

absl::StatusOr<std::string> QemuBinary(const std::string& version) {
  if (version == "7.2" || version.empty()) return std::string("qemu-system-x86_64");
  if (version.find('/') != std::string::npos) {
    if (!IsExecutable(version)) {
      return absl::NotFoundError(absl::StrCat("QEMU binary ", version, " is not executable"));
    }
    return version;
  }
  const char* root = std::getenv("QMIG_QEMU_ROOT");
  const std::string wrapper =
      absl::StrCat(root != nullptr && *root != '\0' ? root : "/var/lib/qmig/qemu", "/", version,
                   ".qemu-system-x86_64");
  if (IsExecutable(wrapper)) return wrapper;
  if (absl::StrContains(version, '.') &&
      absl::ascii_isdigit(static_cast<unsigned char>(version[0]))) {
    return absl::NotFoundError(absl::StrCat("QEMU ", version, " is not installed here (", wrapper,
                                            "); tools/qemu-versions ensure ", version,
                                            " installs it"));
  }
  return version;  // a name on PATH
}

bool QemuSeesOnlyTmp(const std::string& binary) {
  return absl::EndsWith(binary, ".qemu-system-x86_64");
}

absl::StatusOr<std::unique_ptr<QemuProcess>> QemuProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, const std::string& dir,
    absl::Duration connect_timeout) {
  std::unique_ptr<QemuProcess> process(new QemuProcess());
  const std::string socket_path = dir + "/qmp.sock";
  process->log_path_ = dir + "/qemu.log";
  absl::StatusOr<SocketAddress> address = ParseSocketAddress("unix:" + socket_path);
  if (!address.ok()) return address.status();
  absl::StatusOr<UniqueFd> listener = ListenOn(*address, nullptr);
  if (!listener.ok()) return listener.status();

  std::vector<std::string> argv = args;
  argv.push_back("-qmp");
  argv.push_back("unix:" + socket_path);
  absl::StatusOr<pid_t> pid =
      SpawnLogged(binary, argv, process->log_path_, &process->command_line_);
  if (!pid.ok()) return pid.status();
  process->pid_ = *pid;
  // QEMU connects to the monitor once it is up; it may also exit first.
  const absl::Time deadline = absl::Now() + connect_timeout;
  while (true) {
    absl::StatusOr<UniqueFd> monitor = AcceptWithin(listener->get(), absl::Milliseconds(100));
    if (monitor.ok()) {
      process->qmp_ = std::make_unique<QmpClient>(std::move(*monitor));
      break;
    }
    int status;
    if (waitpid(process->pid_, &status, WNOHANG) == process->pid_) {
      process->reaped_ = true;
      return absl::FailedPreconditionError(
          absl::StrCat("QEMU exited before its monitor came up: ", process->LogTail(6)));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("QEMU's monitor did not connect in time");
    }
  }
  const absl::Time setup = absl::Now() + connect_timeout;
  if (!process->qmp_->Reply(setup) || !process->qmp_->Command("qmp_capabilities", nullptr, setup)) {
    return absl::UnavailableError("QEMU's monitor did not answer");
  }
  return process;
}

QemuProcess::Exit QemuProcess::WaitOrKill(absl::Time deadline) {
  Exit exit;
  if (pid_ < 0 || reaped_) return exit;
  int status = 0;
  while (true) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 || absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      exit.killed_by_us = true;
      break;
    }
    absl::SleepFor(kPollInterval);
  }
  reaped_ = true;
  if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
  if (WIFEXITED(status)) exit.code = WEXITSTATUS(status);
  return exit;
}

QemuProcess::~QemuProcess() {
  qmp_.reset();
  if (pid_ >= 0 && !reaped_) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

std::string QemuProcess::LogTail(size_t lines) const { return FileTail(log_path_, lines); }

absl::StatusOr<QemuRun> RunQemuToExit(const std::string& binary,
                                      const std::vector<std::string>& args, const std::string& dir,
                                      absl::Duration timeout) {
  QemuRun run;
  const std::string log_path = dir + "/qemu.log";
  absl::StatusOr<pid_t> pid = SpawnLogged(binary, args, log_path, &run.command_line);
  if (!pid.ok()) return pid.status();
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    pid_t done = waitpid(*pid, &status, WNOHANG);
    if (done == *pid) break;
    if (done < 0 || absl::Now() > deadline) {
      kill(*pid, SIGKILL);
      waitpid(*pid, &status, 0);
      run.exit.killed_by_us = true;
      break;
    }
    absl::SleepFor(kPollInterval);
  }
  if (WIFSIGNALED(status)) run.exit.signal = WTERMSIG(status);
  if (WIFEXITED(status)) run.exit.code = WEXITSTATUS(status);
  run.log_tail = FileTail(log_path, 6);
  return run;
}

}  // namespace qmig
