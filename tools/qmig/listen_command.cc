// qmig listen tcp:HOST:PORT: the loopback destination as a real migration
// target. A QEMU source runs `migrate tcp:HOST:PORT`; qmig answers on the
// return path, faults its guest threads through userfaultfd in postcopy, and
// at the end can write the memory it received (--dump_memory) to compare
// with the source's.
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "emulator/destination.h"
#include "emulator/sockets.h"
#include "emulator/userfaultfd.h"
#include "nlohmann/json.hpp"
#include "parser/multifd.h"
#include "parser/preempt_channel.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

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

int RunListen(const std::vector<std::string>& operands, const ListenOptions& options) {
  if (operands.size() != 1) {
    return UsageError("listen", "takes one ADDRESS: tcp:HOST:PORT, tcp::PORT or unix:PATH");
  }
  DestinationOptions destination;
  absl::StatusOr<ParseSetup> parse = MakeParseOptions(options.stream);
  absl::StatusOr<GuestPattern> guest = ParseGuestPattern(options.guest);
  absl::StatusOr<SocketAddress> address = ParseSocketAddress(operands[0]);
  for (const absl::Status& status : {parse.status(), guest.status(), address.status()}) {
    if (!status.ok()) return UsageError("listen", status.message());
  }
  destination.parse = parse->parse;
  destination.parse.live = true;
  destination.guest = *guest;
  std::string bound;
  absl::StatusOr<UniqueFd> listener = ListenOn(*address, &bound);
  if (!listener.ok()) return InputError("listen", listener.status().message());
  // A Unix socket's file is ours to remove once the migration is over.
  struct RemoveSocketFile {
    std::string path;
    ~RemoveSocketFile() {
      if (!path.empty()) unlink(path.c_str());
    }
  } remove_socket_file{address->unix_path() ? operands[0].substr(5) : ""};
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

  // Further connections are multifd channels (they open with the multifd
  // magic) or the postcopy preempt channel (no magic: RAM records). They are
  // accepted while the main stream runs; when it ends, the destination waits
  // for them (a stall's worth of time at most) before it accounts for pages.
  struct Channel {
    std::string name;  // "multifd channel N", "preempt channel"
    uint64_t pages = 0;
    FindingList findings{1000};
  };
  std::atomic<bool> accepting{true};
  std::mutex channels_mutex;
  std::condition_variable channel_done;
  size_t channels_running = 0;
  std::vector<std::thread> channels;
  std::vector<UniqueFd> channel_sockets;
  std::vector<Channel> channel_results;
  // Set once the destination exists, which can be after a channel's first
  // page arrives: the acceptor runs from before the destination is made.
  std::atomic<Destination*> incoming_ptr{nullptr};
  auto incoming_for_channel = [&]() -> Destination* {
    const absl::Time deadline = absl::Now() + absl::Seconds(options.stall_timeout_s);
    Destination* incoming = incoming_ptr.load();
    while (incoming == nullptr && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
      incoming = incoming_ptr.load();
    }
    return incoming;
  };
  // Connections that resume a broken postcopy (they open with a command,
  // RECV_BITMAP), handed from the acceptor to the listen path.
  std::vector<int> recovery_fds;
  std::condition_variable recovery_ready;
  std::vector<std::unique_ptr<FdSource>> recovered_sources;
  std::vector<int> recovered_fds;  // main connections now, not channels
  auto shut_channels = [&] {
    std::lock_guard<std::mutex> lock(channels_mutex);
    for (UniqueFd& socket : channel_sockets) {
      if (std::find(recovered_fds.begin(), recovered_fds.end(), socket.get()) ==
          recovered_fds.end()) {
        shutdown(socket.get(), SHUT_RDWR);
      }
    }
  };
  std::thread acceptor([&] {
    while (accepting.load()) {
      absl::StatusOr<UniqueFd> channel = AcceptWithin(listener->get(), absl::Milliseconds(100));
      if (!channel.ok()) continue;
      std::lock_guard<std::mutex> lock(channels_mutex);
      int fd = channel->get();
      channel_sockets.push_back(std::move(*channel));
      size_t slot = channel_results.size();
      channel_results.emplace_back();
      ++channels_running;
      channels.emplace_back([&, fd, slot] {
        // A connection that opens with a command resumes a broken postcopy:
        // it goes to the listen path untouched, so the byte is only peeked.
        uint8_t first = 0;
        ssize_t peeked;
        do {
          peeked = recv(fd, &first, 1, MSG_PEEK);
        } while (peeked < 0 && errno == EINTR);
        if (peeked == 1 && first == static_cast<uint8_t>(SectionType::kCommand)) {
          std::lock_guard<std::mutex> lock(channels_mutex);
          channel_results[slot].name = "recovered main connection";
          recovery_fds.push_back(fd);
          recovered_fds.push_back(fd);
          recovery_ready.notify_all();
          --channels_running;
          channel_done.notify_all();
          return;
        }
        Destination* incoming = incoming_for_channel();
        FdSource channel_source(fd);
        // A preempt channel may stay quiet until the guest faults, so it is
        // identified by its first bytes whenever they come; it ends with EOS,
        // or is shut down once the main stream is over.
        absl::StatusOr<absl::Span<const uint8_t>> head = channel_source.View(0, 4);
        const bool multifd =
            head.ok() && head->size() >= 4 && LoadBe32(head->data()) == kMultifdMagic;
        Channel result;
        if (multifd) {
          MultifdOptions options;
          options.on_page = [&](absl::string_view block, uint64_t offset,
                                absl::Span<const uint8_t> page) {
            if (incoming != nullptr) incoming->PlaceChannelPage(block, offset, page);
          };
          MultifdResult parsed = ParseMultifdChannel(channel_source, options);
          result.name = absl::StrCat("multifd channel ", parsed.summary.channel_id);
          result.pages = parsed.summary.pages;
          result.findings = std::move(parsed.findings);
        } else {
          PreemptChannelOptions options;
          options.live = true;
          options.on_page = [&](absl::string_view block, uint64_t offset, RamRecordKind kind,
                                absl::Span<const uint8_t> page, uint64_t channel_offset) {
            if (incoming != nullptr) {
              incoming->PlacePreemptPage(block, offset, kind, page, channel_offset);
            }
          };
          PreemptChannelResult parsed = ParsePreemptChannel(channel_source, options);
          result.name = "preempt channel";
          result.pages = parsed.summary.pages;
          result.findings = std::move(parsed.findings);
        }
        std::lock_guard<std::mutex> lock(channels_mutex);
        channel_results[slot] = std::move(result);
        --channels_running;
        channel_done.notify_all();
      });
    }
  });
  auto join_channels = [&](absl::Duration grace) {
    accepting.store(false);
    if (acceptor.joinable()) acceptor.join();
    {
      std::unique_lock<std::mutex> lock(channels_mutex);
      channel_done.wait_for(lock, absl::ToChronoSeconds(grace),
                            [&] { return channels_running == 0; });
    }
    shut_channels();  // whatever still waits for bytes will not get them
    std::vector<std::thread> running;
    {
      std::lock_guard<std::mutex> lock(channels_mutex);
      running.swap(channels);
    }
    for (std::thread& channel : running) channel.join();
  };
  destination.on_main_stream_end = [&] { join_channels(absl::Seconds(options.stall_timeout_s)); };
  if (options.recover_timeout_s > 0) {
    destination.await_recovery = [&](int* return_path_fd) -> ByteSource* {
      std::unique_lock<std::mutex> lock(channels_mutex);
      std::cerr << "qmig: the main connection broke during postcopy; waiting "
                << options.recover_timeout_s << " s for the source to resume on " << bound << "\n";
      if (!recovery_ready.wait_for(lock, std::chrono::seconds(options.recover_timeout_s),
                                   [&] { return !recovery_fds.empty(); })) {
        return nullptr;
      }
      int fd = recovery_fds.front();
      recovery_fds.erase(recovery_fds.begin());
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof(stall));
      *return_path_fd = fd;
      recovered_sources.push_back(std::make_unique<FdSource>(fd));
      return recovered_sources.back().get();
    };
  }

  DestinationReport report;
  {  // the destination's arena, threads and descriptors live in this scope
    Destination incoming(destination);
    incoming_ptr.store(&incoming);
    FdSource source(connection->get());
    report = incoming.Run(source);
    shutdown(connection->get(), SHUT_RDWR);
    for (int fd : recovered_fds) shutdown(fd, SHUT_RDWR);
    join_channels(absl::ZeroDuration());  // no-op after a normal end; else the main stream failed
    for (const Channel& channel : channel_results) {
      for (const Finding& finding : channel.findings.findings()) {
        Finding copy = finding;
        copy.path = absl::StrCat(channel.name, " > ", copy.path);
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
        out.write(reinterpret_cast<const char*>(block->base),
                  static_cast<std::streamsize>(block->length));
        if (!out.good()) std::cerr << "qmig: cannot write " << options.dump_memory << "\n";
      }
    }
  }
  connection->Reset();
  channel_sockets.clear();
  // Every descriptor and thread of the migration is gone now; mappings may
  // keep the allocator's per-thread arenas.
  const ResourceCounts after = CountResources();
  const bool leaked = after.descriptors != before.descriptors || after.threads != before.threads;
  if (leaked) {
    std::cerr << absl::StrFormat(
        "qmig: after the migration %d descriptors and %d threads remain, %d and %d before\n",
        after.descriptors, after.threads, before.descriptors, before.threads);
  }
  const FindingList& findings = report.parse.findings;
  const DestinationStats& stats = report.stats;
  bool valid = findings.error_count() == 0;
  nlohmann::json channels_json = nlohmann::json::array();
  for (const Channel& channel : channel_results) {
    channels_json.push_back({{"name", channel.name},
                             {"pages", channel.pages},
                             {"errors", channel.findings.error_count()}});
  }
  if (options.output.json) {
    nlohmann::json out = {{"kind", "listen"},
                          {"address", bound},
                          {"valid", valid},
                          {"errors", findings.error_count()},
                          {"warnings", findings.warning_count()},
                          {"summary", SummaryToJson(report.parse.summary)},
                          {"emulator",
                           {{"precopy_pages", stats.precopy_pages},
                            {"postcopy_pages", stats.postcopy_pages},
                            {"faults", stats.faults},
                            {"page_requests", stats.page_requests},
                            {"requests_served", stats.requests_served},
                            {"pongs", stats.pongs},
                            {"guest_touches", stats.guest_touches},
                            {"recoveries", stats.recoveries}}},
                          {"channels", channels_json},
                          {"resources",
                           {{"descriptors", {before.descriptors, after.descriptors}},
                            {"threads", {before.threads, after.threads}},
                            {"mappings", {before.mappings, after.mappings}},
                            {"leaked", leaked}}},
                          {"findings", FindingsToJson(findings)}};
    std::cout << JsonDocument(out);
  } else {
    if (!options.output.quiet) {
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
    PrintFindings(findings, options.output.quiet, options.output.verbose);
  }
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
