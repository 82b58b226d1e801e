// qmig tap tcp:LISTEN tcp:UPSTREAM: a transparent proxy between a real
// migration source and a real destination. Every connection is forwarded
// unchanged in both directions, validated while it flows (the main stream,
// its return path, multifd channels), and optionally recorded to files that
// `qmig check` and `qmig replay` read back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "emulator/return_path_writer.h"
#include "emulator/sockets.h"
#include "emulator/userfaultfd.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "parser/preempt_channel.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "tools/inspect/dump_writers.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// One direction of one connection: forward, record, and feed a validator
// through a pipe (the validator reads it as it would any stream).
class Direction {
 public:
  Direction(int from, int to, const std::string& record_path) : from_(from), to_(to) {
    if (!record_path.empty()) record_.open(record_path, std::ios::binary);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) == 0) {
      validate_read_ = UniqueFd(fds[0]);
      validate_write_ = UniqueFd(fds[1]);
    }
  }

  int validator_fd() const { return validate_read_.get(); }

  void Run() {
    uint8_t buffer[65536];
    while (true) {
      ssize_t n = read(from_, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      absl::Span<const uint8_t> bytes(buffer, static_cast<size_t>(n));
      if (!WriteAll(to_, bytes).ok()) break;
      if (record_.is_open()) record_.write(reinterpret_cast<const char*>(buffer), n);
      if (validate_write_.valid() && !WriteAll(validate_write_.get(), bytes).ok()) {
        validate_write_.Reset();  // the validator gave up; keep forwarding
      }
      bytes_ += static_cast<uint64_t>(n);
    }
    shutdown(to_, SHUT_WR);  // pass the end on, as the peer would see it
    validate_write_.Reset();
  }

  uint64_t bytes() const { return bytes_; }

 private:
  int from_, to_;
  std::ofstream record_;
  UniqueFd validate_read_, validate_write_;
  std::atomic<uint64_t> bytes_{0};
};

struct Tapped {
  int index;
  std::string kind;
  FindingList findings{1000};
  std::string summary;
};

}  // namespace

int RunTap(const std::vector<std::string>& operands, const TapOptions& options) {
  if (operands.size() != 2) return UsageError("tap", "takes a LISTEN and an UPSTREAM address");
  absl::StatusOr<SocketAddress> listen_address = ParseSocketAddress(operands[0]);
  absl::StatusOr<SocketAddress> upstream = ParseSocketAddress(operands[1]);
  absl::StatusOr<ParseSetup> parse = MakeParseOptions(options.stream);
  for (const absl::Status& status : {listen_address.status(), upstream.status(), parse.status()}) {
    if (!status.ok()) return UsageError("tap", status.message());
  }
  signal(SIGPIPE, SIG_IGN);
  std::string bound;
  absl::StatusOr<UniqueFd> listening = ListenOn(*listen_address, &bound);
  if (!listening.ok()) return InputError("tap", listening.status().message());
  UniqueFd listener = std::move(*listening);
  std::cerr << "qmig: tapping " << bound << " -> " << operands[1] << "\n";

  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Tapped>> tapped;
  std::mutex tapped_mutex;
  std::vector<UniqueFd> sockets;
  // Connections are accepted for as long as any is open (multifd channels
  // and the postcopy preempt channel come after the main one); the tap ends
  // once all have ended.
  absl::Time deadline = absl::Now() + absl::Seconds(options.accept_timeout_s);
  std::atomic<int> open_connections{0};
  for (int index = 0;;) {
    struct pollfd pfd = {listener.get(), POLLIN, 0};
    int ready = poll(&pfd, 1, 200);
    if (ready <= 0) {
      if (index > 0 && open_connections.load() == 0) break;
      if (index == 0 && absl::Now() > deadline) {
        std::cerr << "qmig: no source connected in time\n";
        break;
      }
      continue;
    }
    absl::StatusOr<UniqueFd> accepted = AcceptWithin(listener.get(), absl::ZeroDuration());
    if (!accepted.ok()) continue;
    UniqueFd client = std::move(*accepted);
    absl::StatusOr<UniqueFd> connected = ConnectTo(*upstream);
    if (!connected.ok()) {
      std::cerr << "qmig tap: " << connected.status().message() << "\n";
      continue;
    }
    UniqueFd server = std::move(*connected);
    std::string prefix = options.record.empty() ? "" : absl::StrCat(options.record, ".", index);
    auto forward = std::make_shared<Direction>(client.get(), server.get(),
                                               prefix.empty() ? "" : prefix + ".fwd");
    auto backward = std::make_shared<Direction>(server.get(), client.get(),
                                                prefix.empty() ? "" : prefix + ".rev");
    ++open_connections;
    {
      std::lock_guard<std::mutex> lock(tapped_mutex);
      tapped.push_back(std::make_unique<Tapped>());
      tapped.back()->index = index;
    }
    Tapped* record = tapped.back().get();
    ParseOptions stream_options = parse->parse;
    threads.emplace_back([forward] { forward->Run(); });
    threads.emplace_back([backward] { backward->Run(); });
    // Validators: what kind of connection it is shows in its first bytes.
    threads.emplace_back([forward, backward, record, stream_options, &open_connections] {
      FdSource main(forward->validator_fd());
      absl::StatusOr<absl::Span<const uint8_t>> head = main.View(0, 4);
      bool multifd = head.ok() && head->size() >= 4 && (*head)[0] == 0x11 && (*head)[1] == 0x22 &&
                     (*head)[2] == 0x33 && (*head)[3] == 0x44;
      // A main connection opens with the QEVM magic, a recovery connection
      // with a command; the postcopy preempt channel has no magic at all.
      bool main_stream =
          head.ok() && head->size() >= 4 &&
          (((*head)[0] == 'Q' && (*head)[1] == 'E' && (*head)[2] == 'V' && (*head)[3] == 'M') ||
           (*head)[0] == static_cast<uint8_t>(SectionType::kCommand));
      bool preempt = !multifd && !main_stream && head.ok() && !head->empty();
      // A later connection that closes without a byte is a channel the
      // source opened and never used: QEMU 10.0 and later open the
      // postcopy-preempt channel when migration starts, and close it
      // unused when precopy completes first.
      bool unused = record->index > 0 && head.ok() && head->empty();
      std::thread back([backward, record, multifd, preempt, unused] {
        FdSource rp(backward->validator_fd());
        if (multifd || preempt || unused) {
          char sink[4096];
          while (read(backward->validator_fd(), sink, sizeof(sink)) > 0) {
          }
          return;
        }
        ReturnPathResult result = ParseReturnPath(rp, {});
        for (const Finding& finding : result.findings.findings()) {
          Finding copy = finding;
          copy.path = absl::StrCat("return path > ", copy.path);
          record->findings.Add(std::move(copy));
        }
      });
      if (unused) {
        record->kind = "unused";
        record->summary = "closed without sending a byte (a channel the source did not use)";
      } else if (multifd) {
        record->kind = "multifd";
        MultifdResult result = ParseMultifdChannel(main, {});
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        record->summary = absl::StrCat(Counted(result.summary.packets, "packet"), ", ",
                                       Counted(result.summary.pages, "page"));
      } else if (preempt) {
        record->kind = "preempt";
        PreemptChannelResult result = ParsePreemptChannel(main, {});
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        record->summary = absl::StrCat(Counted(result.summary.pages, "page"),
                                       result.summary.eos_seen ? ", EOS" : "");
      } else {
        record->kind = "main";
        ParseResult result = ParseMigrationStream(main, stream_options);
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        // The machine name is bytes from the stream: escaped for text and JSON alike.
        record->summary = absl::StrCat(Counted(result.summary.bytes, "byte"), ", machine ",
                                       EscapeName(result.summary.machine.value_or("-")),
                                       ", postcopy ", PostcopyStateName(result.summary.postcopy));
      }
      back.join();
      --open_connections;
    });
    sockets.push_back(std::move(client));
    sockets.push_back(std::move(server));
    ++index;
  }
  for (std::thread& thread : threads) thread.join();

  // All connections' findings, for the verdict.
  FindingList all(kMaxTapFindings);
  for (const auto& connection : tapped) {
    for (const Finding& finding : connection->findings.findings()) all.Add(finding);
  }
  if (options.output.json) {
    nlohmann::json connections = nlohmann::json::array();
    for (const auto& connection : tapped) {
      connections.push_back({{"index", connection->index},
                             {"kind", connection->kind},
                             {"summary", connection->summary},
                             {"valid", connection->findings.error_count() == 0},
                             {"errors", connection->findings.error_count()},
                             {"warnings", connection->findings.warning_count()},
                             {"findings", FindingsToJson(connection->findings)}});
    }
    nlohmann::json out = {{"kind", "tap"},
                          {"listen", bound},
                          {"upstream", operands[1]},
                          {"valid", !tapped.empty() && all.error_count() == 0},
                          {"errors", all.error_count()},
                          {"warnings", all.warning_count()},
                          {"connections", connections}};
    std::cout << JsonDocument(out);
  } else {
    for (const auto& connection : tapped) {
      if (!options.output.quiet) {
        std::cout << "connection " << connection->index << " (" << connection->kind
                  << "): " << connection->summary << "\n";
      }
      for (const Finding& finding : connection->findings.findings()) {
        if (options.output.quiet && finding.severity != Severity::kError) continue;
        std::cout << FormatFinding(finding) << "\n";
      }
    }
    std::cout << (tapped.empty() ? "no connection was tapped" : FormatVerdict(all)) << "\n";
  }
  if (tapped.empty()) return kExitUsage;
  return all.error_count() == 0 ? kExitValid : kExitInvalid;
}

}  // namespace qmig
