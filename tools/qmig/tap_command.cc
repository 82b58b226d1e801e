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
#include "emulator/userfaultfd.h"
#include "parser/multifd.h"
#include "parser/preempt_channel.h"
#include "parser/return_path.h"
#include "parser/stream_parser.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

absl::StatusOr<sockaddr_in> ParseAddress(absl::string_view address) {
  std::vector<std::string> parts = absl::StrSplit(address, ':');
  uint32_t port = 0;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  if (parts.size() != 3 || parts[0] != "tcp" || !absl::SimpleAtoi(parts[2], &port) ||
      port > 65535 || inet_pton(AF_INET, parts[1].c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", address, "' is not tcp:IPV4:PORT"));
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// One direction of one connection: forward, record, and feed a validator
// through a pipe (the validator reads it as it would any stream).
class Direction {
 public:
  Direction(int from, int to, const std::string& record_path)
      : from_(from), to_(to) {
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

int RunTap(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 2) {
    std::cerr << "qmig: tap takes tcp:LISTEN and tcp:UPSTREAM\n";
    return kExitUsage;
  }
  absl::StatusOr<sockaddr_in> listen_address = ParseAddress(operands[0]);
  absl::StatusOr<sockaddr_in> upstream = ParseAddress(operands[1]);
  absl::StatusOr<ParseOptions> parse = MakeParseOptions(options);
  for (const absl::Status& status : {listen_address.status(), upstream.status(), parse.status()}) {
    if (!status.ok()) {
      std::cerr << "qmig: " << status.message() << "\n";
      return kExitUsage;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(listener.get(), reinterpret_cast<const sockaddr*>(&*listen_address),
           sizeof(sockaddr_in)) != 0 ||
      listen(listener.get(), 8) != 0) {
    std::cerr << "qmig: cannot listen on " << operands[0] << ": " << strerror(errno) << "\n";
    return kExitUsage;
  }
  std::cerr << "qmig: tapping " << operands[0] << " -> " << operands[1] << "\n";

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
    UniqueFd client(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    UniqueFd server(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(server.get(), reinterpret_cast<const sockaddr*>(&*upstream), sizeof(sockaddr_in)) != 0) {
      std::cerr << "qmig: cannot reach " << operands[1] << ": " << strerror(errno) << "\n";
      continue;
    }
    setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(server.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::string prefix =
        options.record.empty() ? "" : absl::StrCat(options.record, ".", index);
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
    ParseOptions stream_options = *parse;
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
      bool main_stream = head.ok() && head->size() >= 4 &&
                         (((*head)[0] == 'Q' && (*head)[1] == 'E' && (*head)[2] == 'V' &&
                           (*head)[3] == 'M') ||
                          (*head)[0] == static_cast<uint8_t>(SectionType::kCommand));
      bool preempt = !multifd && !main_stream && head.ok() && !head->empty();
      std::thread back([backward, record, multifd, preempt] {
        FdSource rp(backward->validator_fd());
        if (multifd || preempt) {
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
      if (multifd) {
        record->kind = "multifd";
        MultifdResult result = ParseMultifdChannel(main, {});
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        record->summary = absl::StrCat(result.summary.packets, " packets, ", result.summary.pages,
                                       " pages");
      } else if (preempt) {
        record->kind = "preempt";
        PreemptChannelResult result = ParsePreemptChannel(main, {});
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        record->summary = absl::StrCat(result.summary.pages, " pages",
                                       result.summary.eos_seen ? ", EOS" : "");
      } else {
        record->kind = "main";
        ParseResult result = ParseMigrationStream(main, stream_options);
        for (const Finding& finding : result.findings.findings()) record->findings.Add(finding);
        record->summary = absl::StrCat(result.summary.bytes, " bytes, machine ",
                                       result.summary.machine.value_or("-"), ", postcopy ",
                                       PostcopyStateName(result.summary.postcopy));
      }
      back.join();
      --open_connections;
    });
    sockets.push_back(std::move(client));
    sockets.push_back(std::move(server));
    ++index;
  }
  for (std::thread& thread : threads) thread.join();

  bool valid = true;
  for (const auto& connection : tapped) {
    valid &= connection->findings.error_count() == 0;
    if (!options.quiet) {
      std::cout << "connection " << connection->index << " (" << connection->kind
                << "): " << connection->summary << "\n";
    }
    PrintFindings(connection->findings, options.quiet);
  }
  if (tapped.empty()) return kExitUsage;
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
