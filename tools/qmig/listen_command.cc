// qmig listen tcp:HOST:PORT: the loopback destination as a real migration
// target. A QEMU source runs `migrate tcp:HOST:PORT`; qmig answers on the
// return path, faults its guest threads through userfaultfd in postcopy, and
// at the end can write the memory it received (--dump_memory) to compare
// with the source's.
#include <dirent.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "emulator/destination.h"
#include "emulator/userfaultfd.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

absl::StatusOr<UniqueFd> ListenOn(absl::string_view address, std::string* bound) {
  std::vector<std::string> parts = absl::StrSplit(address, ':');
  uint32_t port = 0;
  if (parts.size() != 3 || parts[0] != "tcp" || !absl::SimpleAtoi(parts[2], &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", address, "' is not tcp:HOST:PORT"));
  }
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, parts[1].c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("'", parts[1], "' is not an IPv4 address"));
  }
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (!listener.valid() || bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener.get(), 4) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen on ", address));
  }
  socklen_t length = sizeof(addr);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &length);
  *bound = absl::StrFormat("tcp:%s:%d", parts[1], ntohs(addr.sin_port));
  return listener;
}

absl::StatusOr<UniqueFd> AcceptWithin(int listener, absl::Duration timeout) {
  struct pollfd pfd = {listener, POLLIN, 0};
  int ready = poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready == 0) return absl::DeadlineExceededError("no source connected in time");
  if (ready < 0) return absl::ErrnoToStatus(errno, "poll");
  UniqueFd connection(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!connection.valid()) return absl::ErrnoToStatus(errno, "accept");
  int one = 1;
  setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return connection;
}

// What the process holds, to show that a migration leaves nothing behind.
struct ResourceCounts {
  int descriptors = 0;
  int threads = 0;
  int mappings = 0;
};

int CountDirectory(const char* path) {
  int count = 0;
  if (DIR* dir = opendir(path)) {
    while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
    closedir(dir);
  }
  return count;
}

ResourceCounts CountResources() {
  ResourceCounts counts;
  counts.descriptors = CountDirectory("/proc/self/fd") - 1;  // less the one counting
  counts.threads = CountDirectory("/proc/self/task");
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) ++counts.mappings;
  return counts;
}

}  // namespace

int RunListen(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 1) {
    std::cerr << "qmig: listen takes one address, tcp:HOST:PORT\n";
    return kExitUsage;
  }
  DestinationOptions destination;
  absl::StatusOr<ParseOptions> parse = MakeParseOptions(options);
  absl::StatusOr<GuestPattern> guest = ParseGuestPattern(options.guest);
  for (const absl::Status& status : {parse.status(), guest.status()}) {
    if (!status.ok()) {
      std::cerr << "qmig: " << status.message() << "\n";
      return kExitUsage;
    }
  }
  destination.parse = *parse;
  destination.parse.live = true;
  destination.guest = *guest;
  std::string bound;
  absl::StatusOr<UniqueFd> listener = ListenOn(operands[0], &bound);
  if (!listener.ok()) {
    std::cerr << "qmig: " << listener.status().message() << "\n";
    return kExitUsage;
  }
  std::cerr << "qmig: listening on " << bound << "\n";
  const ResourceCounts before = CountResources();
  absl::StatusOr<UniqueFd> connection =
      AcceptWithin(listener->get(), absl::Seconds(options.accept_timeout_s));
  if (!connection.ok()) {
    std::cerr << "qmig: " << connection.status().message() << "\n";
    return kExitUsage;
  }
  // A source that goes quiet for this long counts as stopped.
  struct timeval stall = absl::ToTimeval(absl::Seconds(options.stall_timeout_s));
  setsockopt(connection->get(), SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
  destination.return_path_fd = connection->get();

  // Further connections are multifd channels: their pages go into the same
  // arena. They are accepted while the main stream runs; when it ends, the
  // destination waits for them before it accounts for pages.
  std::atomic<bool> accepting{true};
  std::mutex channels_mutex;
  std::vector<std::thread> channels;
  std::vector<UniqueFd> channel_sockets;
  std::vector<MultifdResult> channel_results;
  Destination* incoming_ptr = nullptr;
  std::thread acceptor([&] {
    while (accepting.load()) {
      absl::StatusOr<UniqueFd> channel = AcceptWithin(listener->get(), absl::Milliseconds(100));
      if (!channel.ok()) continue;
      setsockopt(channel->get(), SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
      std::lock_guard<std::mutex> lock(channels_mutex);
      int fd = channel->get();
      channel_sockets.push_back(std::move(*channel));
      size_t slot = channel_results.size();
      channel_results.emplace_back(MultifdResult{MultifdSummary{}, FindingList(1000)});
      channels.emplace_back([&, fd, slot] {
        MultifdOptions multifd;
        multifd.on_page = [&](absl::string_view block, uint64_t offset,
                              absl::Span<const uint8_t> page) {
          incoming_ptr->PlaceChannelPage(block, offset, page);
        };
        FdSource channel_source(fd);
        MultifdResult result = ParseMultifdChannel(channel_source, multifd);
        std::lock_guard<std::mutex> lock(channels_mutex);
        channel_results[slot] = std::move(result);
      });
    }
  });
  destination.on_main_stream_end = [&] {
    accepting.store(false);
    acceptor.join();
    std::vector<std::thread> running;
    {
      std::lock_guard<std::mutex> lock(channels_mutex);
      running.swap(channels);
    }
    for (std::thread& channel : running) channel.join();
  };

  DestinationReport report;
  {  // the destination's arena, threads and descriptors live in this scope
  Destination incoming(destination);
  incoming_ptr = &incoming;
  FdSource source(connection->get());
  report = incoming.Run(source);
  shutdown(connection->get(), SHUT_RDWR);
  if (acceptor.joinable()) {  // the stream never ended normally
    accepting.store(false);
    acceptor.join();
  }
  for (std::thread& channel : channels) channel.join();
  for (size_t i = 0; i < channel_results.size(); ++i) {
    for (const Finding& finding : channel_results[i].findings.findings()) {
      Finding copy = finding;
      copy.path = absl::StrCat("multifd channel ", channel_results[i].summary.channel_id, " > ",
                               copy.path);
      report.parse.findings.Add(std::move(copy));
    }
  }

  if (!options.dump_memory.empty()) {
    GuestArena* arena = incoming.arena();
    GuestArena::Block* block = arena != nullptr ? arena->Find(options.dump_block) : nullptr;
    if (block == nullptr) {
      std::cerr << "qmig: no RAM block '" << options.dump_block << "' to dump\n";
    } else {
      std::ofstream out(options.dump_memory, std::ios::binary);
      out.write(reinterpret_cast<const char*>(block->base), static_cast<std::streamsize>(block->length));
      if (!out.good()) std::cerr << "qmig: cannot write " << options.dump_memory << "\n";
    }
  }
  }
  connection->Reset();
  channel_sockets.clear();
  // Every descriptor and thread of the migration is gone now; mappings may
  // keep the allocator's per-thread arenas.
  const ResourceCounts after = CountResources();
  const bool leaked =
      after.descriptors != before.descriptors || after.threads != before.threads;
  if (leaked) {
    std::cerr << absl::StrFormat(
        "qmig: after the migration %d descriptors and %d threads remain, %d and %d before\n",
        after.descriptors, after.threads, before.descriptors, before.threads);
  }
  const FindingList& findings = report.parse.findings;
  const DestinationStats& stats = report.stats;
  bool valid = findings.error_count() == 0;
  if (options.json) {
    nlohmann::json out = {{"schema_version", kJsonSchemaVersion},
                          {"kind", "listen"},
                          {"address", bound},
                          {"valid", valid},
                          {"errors", findings.error_count()},
                          {"warnings", findings.warning_count()},
                          {"summary", SummaryToJson(report.parse.summary)},
                          {"emulator", {{"precopy_pages", stats.precopy_pages},
                                        {"postcopy_pages", stats.postcopy_pages},
                                        {"faults", stats.faults},
                                        {"page_requests", stats.page_requests},
                                        {"requests_served", stats.requests_served},
                                        {"pongs", stats.pongs},
                                        {"guest_touches", stats.guest_touches}}},
                          {"resources",
                           {{"descriptors", {before.descriptors, after.descriptors}},
                            {"threads", {before.threads, after.threads}},
                            {"mappings", {before.mappings, after.mappings}},
                            {"leaked", leaked}}},
                          {"findings", FindingsToJson(findings)}};
    std::cout << out.dump(2) << "\n";
  } else {
    if (!options.quiet) {
      const StreamSummary& s = report.parse.summary;
      std::cout << absl::StrFormat("received  %d bytes on %s, machine %s, postcopy state %s\n",
                                   s.bytes, bound, s.machine.value_or("?"),
                                   PostcopyStateName(s.postcopy));
      std::cout << absl::StrFormat(
          "pages     %d precopy, %d postcopy, %d discarded; %d faults, %d requests, %d served "
          "(p50 %.0f us); %d PONGs sent\n",
          stats.precopy_pages, stats.postcopy_pages, stats.discarded_pages, stats.faults,
          stats.page_requests, stats.requests_served, Percentile(stats.fault_latency_us, 0.5),
          stats.pongs);
    }
    PrintFindings(findings, options.quiet);
  }
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
