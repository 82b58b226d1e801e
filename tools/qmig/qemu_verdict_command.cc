// qmig qemu-verdict STREAM [--meta=FILE] [--machine=TYPE] [-- QEMU ARGS...]:
// loads STREAM into a real QEMU destination (`-incoming defer`, then
// `migrate-incoming exec:cat STREAM`, with a timeout) and prints QEMU's
// verdict next to qmig's.
//
// The destination is configured from the stream (machine type, guest RAM
// size, the capabilities its records need) or, with --meta, from a corpus
// metadata file (dest_args, dest_capabilities, dest_parameters, aux_files);
// arguments after "--" are added to QEMU's command line.
//
// Exit status: 0 when the verdicts agree, or differ only where qmig names
// why (findings QEMU accepts, or QEMU crashing or hanging); 1 when they
// differ unexplained; 2 when QEMU could not be run.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"
#include "tools/qmig/temp_dir.h"

extern char** environ;

namespace qmig {
namespace {

using Json = nlohmann::json;

constexpr absl::Duration kConnectTimeout = absl::Seconds(20);
constexpr absl::Duration kExitGrace = absl::Seconds(15);
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// Largest QMP reply line accepted.
constexpr size_t kMaxQmpLine = size_t{1} << 20;

// What the stream needs its destination to have.
struct DestinationConfig {
  std::vector<std::string> args;
  std::vector<std::string> capabilities;
  Json parameters = Json::object();
};

std::string ShellQuote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// A QMP connection on a socket QEMU connected to.
class Qmp {
 public:
  explicit Qmp(int fd) : fd_(fd) {}
  ~Qmp() { close(fd_); }

  // The next line that is not an event; nullopt on EOF, error or timeout.
  std::optional<Json> Reply(absl::Time deadline) {
    while (true) {
      size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        Json reply = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (reply.is_discarded() || !reply.is_object()) return std::nullopt;
        if (reply.contains("event")) continue;
        return reply;
      }
      if (buffer_.size() > kMaxQmpLine || absl::Now() > deadline) return std::nullopt;
      char chunk[4096];
      timeval tv{0, 100000};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n == 0) return std::nullopt;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  std::optional<Json> Command(const std::string& name, const Json& arguments, absl::Time deadline) {
    Json request = {{"execute", name}};
    if (!arguments.is_null()) request["arguments"] = arguments;
    std::string text = request.dump() + "\n";
    if (send(fd_, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size())) {
      return std::nullopt;
    }
    return Reply(deadline);
  }

 private:
  int fd_;
  std::string buffer_;
};

struct QemuVerdict {
  QemuVerdict(std::string status_in, std::string detail_in)
      : status(std::move(status_in)), detail(std::move(detail_in)) {}
  std::string status;  // completed, failed, paused, timeout, crashed, error
  std::string detail;  // QEMU's last words, or what went wrong
  std::optional<int> exit_code;
  std::optional<int> signal;
};

std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) all.push_back(line);
  }
  if (all.size() > lines) all.erase(all.begin(), all.end() - lines);
  return absl::StrJoin(all, "\n");
}

// Waits for `pid` until `deadline`; true when it exited (status in *status).
bool WaitUntil(pid_t pid, absl::Time deadline, int* status) {
  while (true) {
    pid_t done = waitpid(pid, status, WNOHANG);
    if (done == pid) return true;
    if (done < 0 || absl::Now() > deadline) return false;
    absl::SleepFor(kPollInterval);
  }
}

QemuVerdict RunQemu(const std::string& qemu, const DestinationConfig& config,
                    const std::string& stream, const std::string& dir, absl::Duration timeout) {
  const std::string socket_path = dir + "/qmp.sock";
  const std::string log_path = dir + "/qemu.log";
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (listener < 0 || socket_path.size() >= sizeof(address.sun_path)) {
    return {"error", "cannot make the QMP socket"};
  }
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof(address.sun_path) - 1);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener, 1) != 0) {
    close(listener);
    return {"error", absl::StrCat("cannot listen on ", socket_path, ": ", std::strerror(errno))};
  }

  std::vector<std::string> argv = {qemu};
  argv.insert(argv.end(), config.args.begin(), config.args.end());
  for (const char* arg : {"-qmp", ""}) argv.push_back(arg);
  argv.back() = "unix:" + socket_path;
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
  int spawned = posix_spawnp(&pid, qemu.c_str(), &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    close(listener);
    return {"error", absl::StrCat("cannot run ", qemu, ": ", std::strerror(spawned),
                                  " (tools/setup installs QEMU)")};
  }

  auto finish = [&](QemuVerdict v, bool kill_now) {
    int status = 0;
    if (kill_now || !WaitUntil(pid, absl::Now() + kExitGrace, &status)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      if (!kill_now && v.status == "completed") v.status = "hung at exit";
    } else if (WIFSIGNALED(status)) {
      v.signal = WTERMSIG(status);
      v.status = v.status == "completed" ? "crashed at exit" : "crashed";
    } else if (WIFEXITED(status)) {
      v.exit_code = WEXITSTATUS(status);
    }
    std::string last = Tail(log_path, 6);
    if (!last.empty()) v.detail = v.detail.empty() ? last : absl::StrCat(v.detail, "\n", last);
    return v;
  };

  // QEMU connects to the monitor socket once it is up.
  const absl::Time connect_deadline = absl::Now() + kConnectTimeout;
  int fd = -1;
  while (fd < 0 && absl::Now() < connect_deadline) {
    timeval tv{0, 100000};
    fd_set ready;
    FD_ZERO(&ready);
    FD_SET(listener, &ready);
    if (select(listener + 1, &ready, nullptr, nullptr, &tv) > 0)
      fd = accept(listener, nullptr, nullptr);
    int status;
    if (fd < 0 && waitpid(pid, &status, WNOHANG) == pid) {
      close(listener);
      std::string last = Tail(log_path, 6);
      return {"error", absl::StrCat("QEMU exited before its monitor came up: ", last)};
    }
  }
  close(listener);
  if (fd < 0) return finish({"error", "QEMU's monitor did not connect"}, true);
  Qmp qmp(fd);
  const absl::Time setup_deadline = absl::Now() + kConnectTimeout;
  if (!qmp.Reply(setup_deadline) || !qmp.Command("qmp_capabilities", nullptr, setup_deadline)) {
    return finish({"error", "QMP did not answer"}, true);
  }
  if (!config.capabilities.empty()) {
    Json caps = Json::array();
    for (const std::string& cap : config.capabilities)
      caps.push_back({{"capability", cap}, {"state", true}});
    std::optional<Json> reply =
        qmp.Command("migrate-set-capabilities", {{"capabilities", caps}}, setup_deadline);
    if (!reply || reply->contains("error")) {
      return finish(
          {"error", absl::StrCat("migrate-set-capabilities: ", reply ? reply->dump() : "no reply")},
          true);
    }
  }
  if (!config.parameters.empty()) {
    std::optional<Json> reply =
        qmp.Command("migrate-set-parameters", config.parameters, setup_deadline);
    if (!reply || reply->contains("error")) {
      return finish(
          {"error", absl::StrCat("migrate-set-parameters: ", reply ? reply->dump() : "no reply")},
          true);
    }
  }
  std::optional<Json> started = qmp.Command(
      "migrate-incoming", {{"uri", absl::StrCat("exec:cat ", ShellQuote(stream))}}, setup_deadline);
  if (!started || started->contains("error")) {
    return finish(
        {"error", absl::StrCat("migrate-incoming: ", started ? started->dump() : "no reply")},
        true);
  }

  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<Json> reply = qmp.Command("query-migrate", nullptr, deadline + absl::Seconds(5));
    if (!reply) {
      // The monitor went away: QEMU exited (7.2 exits after a failed load) or died.
      return finish({"failed", ""}, false);
    }
    std::string status;
    if (reply->contains("return") && (*reply)["return"].is_object() &&
        (*reply)["return"].contains("status") && (*reply)["return"]["status"].is_string()) {
      status = (*reply)["return"]["status"].get<std::string>();
    }
    if (status == "completed") {
      qmp.Command("quit", nullptr, absl::Now() + absl::Seconds(5));
      return finish({"completed", ""}, false);
    }
    if (status == "failed") return finish({"failed", ""}, false);
    if (status == "postcopy-paused") {
      // QEMU's answer to a postcopy stream that breaks after RUN: it keeps
      // the guest and waits for the source to resume.
      return finish({"paused", "postcopy paused, waiting for the source to resume"}, true);
    }
    if (absl::Now() > deadline) {
      return finish({"timeout", absl::StrCat("still loading after ", absl::FormatDuration(timeout),
                                             "; killed")},
                    true);
    }
    absl::SleepFor(kPollInterval);
  }
}

// A destination for the stream, from what the stream shows.
DestinationConfig ConfigFromStream(const ParseResult& result, const std::string& machine) {
  const StreamSummary& s = result.summary;
  DestinationConfig config;
  uint64_t ram_mib = 16;
  for (const RamBlockSummary& block : s.ram_blocks) {
    if (block.name == "pc.ram" || block.name == "ram")
      ram_mib = std::max<uint64_t>(1, block.length >> 20);
  }
  config.args = {"-machine",    machine.empty() ? s.machine.value_or("pc-i440fx-7.2") : machine,
                 "-m",          absl::StrCat(ram_mib),
                 "-nodefaults", "-vga",
                 "none",        "-display",
                 "none",        "-accel",
                 "tcg",         "-S",
                 "-incoming",   "defer"};
  auto need = [&config](const std::string& capability) {
    if (std::find(config.capabilities.begin(), config.capabilities.end(), capability) ==
        config.capabilities.end()) {
      config.capabilities.push_back(capability);
    }
  };
  for (const std::string& capability : s.capabilities) need(capability);
  if (s.commands.count("POSTCOPY_ADVISE") > 0) need("postcopy-ram");
  uint64_t xbzrle = 0, compressed = 0;
  for (const RamBlockSummary& block : s.ram_blocks) {
    xbzrle += block.xbzrle_pages;
    compressed += block.compressed_pages;
  }
  if (xbzrle > 0) need("xbzrle");
  if (compressed > 0) need("compress");
  return config;
}

absl::StatusOr<DestinationConfig> ConfigFromMeta(const std::string& path, const std::string& dir) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  Json meta = Json::parse(text.str(), nullptr, false);
  if (!in || meta.is_discarded() || !meta.is_object() || !meta.contains("dest_args") ||
      !meta["dest_args"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not corpus metadata with dest_args"));
  }
  DestinationConfig config;
  // Recordings of live migrations keep the whole command line: the binary,
  // the harness's monitor and qtest sockets, a "(QMP) ..." note. Keep only
  // the machine's own configuration.
  const Json& args = meta["dest_args"];
  Json aux_files = meta.contains("aux_files") && meta["aux_files"].is_object() ? meta["aux_files"]
                                                                               : Json::object();
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].is_string()) return absl::InvalidArgumentError("dest_args holds a non-string");
    std::string arg = args[i].get<std::string>();
    if (i == 0 && !arg.empty() && arg[0] != '-') continue;
    if (arg.rfind("(QMP)", 0) == 0) continue;
    if (arg == "-qmp" || arg == "-qtest" || arg == "-qtest-log") {
      ++i;
      continue;
    }
    if (arg.find("$TMP/tiny-bios.bin") != std::string::npos &&
        !aux_files.contains("tiny-bios.bin")) {
      aux_files["tiny-bios.bin"] = {{"kind", "tiny-bios"}, {"size", 65536}};
    }
    config.args.push_back(absl::StrReplaceAll(arg, {{"$TMP", dir}}));
  }
  config.args.insert(config.args.end(), {"-accel", "tcg"});
  if (meta.contains("dest_capabilities") && meta["dest_capabilities"].is_array()) {
    for (const Json& cap : meta["dest_capabilities"]) {
      if (cap.is_string()) config.capabilities.push_back(cap.get<std::string>());
    }
  }
  if (meta.contains("dest_parameters") && meta["dest_parameters"].is_object()) {
    config.parameters = meta["dest_parameters"];
  }
  // Files the configuration refers to as $TMP/NAME: a 64 KiB firmware that
  // halts at the reset vector, or zero-filled backing files.
  {
    for (const auto& [name, aux] : aux_files.items()) {
      if (name.find('/') != std::string::npos || !aux.is_object()) continue;
      uint64_t size = aux.value("size", uint64_t{0});
      if (size > (uint64_t{1} << 30)) return absl::InvalidArgumentError("aux file too large");
      std::string file = dir + "/" + name;
      std::ofstream out(file, std::ios::binary);
      std::vector<char> bytes(size, 0);
      if (aux.value("kind", std::string()) == "tiny-bios" && size >= 16) {
        bytes[size - 16] = static_cast<char>(0xf4);  // hlt
        bytes[size - 15] = static_cast<char>(0xeb);  // jmp $-1
        bytes[size - 14] = static_cast<char>(0xfd);
      }
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", file));
    }
  }
  return config;
}

}  // namespace

int RunQemuVerdict(const std::vector<std::string>& operands, const QemuVerdictOptions& options) {
  if (operands.empty()) {
    return UsageError("qemu-verdict", "takes a STREAM file (then optionally -- QEMU ARGS)");
  }
  if (operands[0] == "-") return UsageError("qemu-verdict", "needs a stream file, not stdin");
  const std::string stream = std::filesystem::absolute(operands[0]).string();
  absl::StatusOr<ParseSetup> made = MakeParseOptions(options.stream);
  if (!made.ok()) return UsageError("qemu-verdict", made.status().message());
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(stream);
  if (!input.ok()) return InputError("qemu-verdict", input.status().message());
  ParseResult result = ParseMigrationStream((*input)->source(), made->parse);

  // Streams that only load with their other connections.
  if (result.summary.headerless) {
    std::cerr << "qmig: " << operands[0]
              << " is a postcopy-recovery connection (no header): QEMU loads it only as the "
                 "resumption of a paused incoming migration, not from a file\n";
    return kExitUsage;
  }
  TempDir dir("qmig-verdict");
  if (dir.path().empty()) {
    std::cerr << "qmig: cannot create a temporary directory\n";
    return kExitUsage;
  }
  DestinationConfig config;
  if (!options.meta.empty()) {
    absl::StatusOr<DestinationConfig> from_meta = ConfigFromMeta(options.meta, dir.path());
    if (!from_meta.ok()) {
      std::cerr << "qmig: " << from_meta.status().message() << "\n";
      return kExitUsage;
    }
    config = std::move(*from_meta);
  } else {
    config = ConfigFromStream(result, options.machine);
  }
  config.args.insert(config.args.end(), operands.begin() + 1, operands.end());
  if (std::find(config.capabilities.begin(), config.capabilities.end(), "multifd") !=
      config.capabilities.end()) {
    std::cerr << "qmig: a multifd destination waits for its channels, which a file cannot "
                 "bring; check the main stream and its channels with qmig check\n";
    return kExitUsage;
  }

  QemuVerdict qemu =
      RunQemu(options.qemu, config, stream, dir.path(), absl::Seconds(options.timeout_s));
  if (qemu.status == "error") {
    std::cerr << "qmig: " << qemu.detail << "\n";
    return kExitUsage;
  }

  // How the two verdicts relate.
  std::vector<std::string> lax;  // errors QEMU loads anyway
  bool strict_only = true;       // every qmig error is one QEMU accepts
  for (const Finding& finding : result.findings.findings()) {
    if (finding.severity != Severity::kError) continue;
    if (finding.qemu_accepts) {
      lax.push_back(std::string(DescribeFinding(finding.code).name));
    } else {
      strict_only = false;
    }
  }
  const bool qemu_loaded = qemu.status == "completed" || qemu.status == "crashed at exit" ||
                           qemu.status == "hung at exit";
  const bool qemu_misbehaved = qemu.status == "timeout" || qemu.status == "crashed" ||
                               qemu.status == "crashed at exit" || qemu.status == "hung at exit";
  std::string relation;
  bool explained = true;
  if (result.valid() && qemu_loaded && !qemu_misbehaved) {
    relation = "agree: both accept";
  } else if (!result.valid() && !qemu_loaded && !qemu_misbehaved) {
    relation = "agree: both reject";
  } else if (!result.valid() && qemu_loaded && strict_only) {
    relation = absl::StrCat("QEMU is lax: it loads the stream despite ", absl::StrJoin(lax, ", "));
  } else if (qemu_misbehaved && !result.valid()) {
    relation = absl::StrCat("QEMU is wrong: it ", qemu.status, " on a stream qmig rejects");
  } else if (qemu_misbehaved) {
    relation = absl::StrCat("QEMU ", qemu.status, " on a stream qmig accepts");
    explained = false;
  } else {
    relation = result.valid() ? "DISAGREE: QEMU rejects a stream qmig accepts"
                              : "DISAGREE: QEMU loads a stream qmig rejects for reasons QEMU "
                                "should share";
    explained = false;
  }

  if (options.output.json) {
    Json qemu_json = {{"status", qemu.status}, {"message", qemu.detail}};
    qemu_json["exit_code"] = qemu.exit_code.has_value() ? Json(*qemu.exit_code) : Json();
    qemu_json["signal"] = qemu.signal.has_value() ? Json(*qemu.signal) : Json();
    Json out = {{"schema_version", kJsonSchemaVersion},
                {"input", operands[0]},
                {"qmig",
                 {{"valid", result.valid()},
                  {"errors", result.findings.error_count()},
                  {"warnings", result.findings.warning_count()},
                  {"findings", FindingsToJson(result.findings)}}},
                {"qemu", qemu_json},
                {"qemu_args", config.args},
                {"qemu_capabilities", config.capabilities},
                {"relation", relation},
                {"explained", explained}};
    std::cout << out.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    std::cout << "qmig:     " << FormatVerdict(result.findings) << "\n";
    std::cout << "QEMU 7.2: " << qemu.status;
    if (qemu.exit_code.has_value()) std::cout << " (exit status " << *qemu.exit_code << ")";
    if (qemu.signal.has_value())
      std::cout << " (signal " << *qemu.signal << ", " << strsignal(*qemu.signal) << ")";
    std::cout << "\n";
    if (!qemu.detail.empty())
      std::cout << "  " << absl::StrReplaceAll(qemu.detail, {{"\n", "\n  "}}) << "\n";
    std::cout << relation << "\n";
    if (!options.output.quiet) {
      for (const Finding& finding : result.findings.findings()) {
        if (finding.severity == Severity::kError) std::cout << FormatFinding(finding) << "\n";
      }
    }
  }
  return explained ? kExitValid : kExitInvalid;
}

}  // namespace qmig
