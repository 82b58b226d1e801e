#include "emulator/replay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "emulator/connection.h"
#include "emulator/return_path_writer.h"
#include "emulator/userfaultfd.h"
#include "parser/wire/limits.h"

namespace qmig {

absl::StatusOr<ReplayResult> ReplayStream(ByteSource& stream, const ReplayOptions& options) {
  absl::StatusOr<Connection> connection = Connect(options.transport);
  if (!connection.ok()) return connection.status();
  int source_fd = connection->source.get();
  int destination_fd = connection->destination.get();
  struct timeval timeout = absl::ToTimeval(options.stall_timeout);
  setsockopt(destination_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  ReplayResult result;
  // The source: the captured bytes, front to back.
  std::thread sender([&] {
    uint64_t offset = 0;
    while (true) {
      absl::StatusOr<absl::Span<const uint8_t>> view = stream.View(offset, 1);
      if (!view.ok() || view->empty()) break;
      size_t chunk = std::min<size_t>(view->size(), kMaxContiguousView);
      if (!WriteAll(source_fd, view->subspan(0, chunk),
                    absl::ToInt64Milliseconds(options.stall_timeout))
               .ok()) {
        break;
      }
      offset += chunk;
    }
    result.bytes_sent = offset;
    shutdown(source_fd, SHUT_WR);  // end of stream, as a source closing its side
  });
  // What the destination sends back.
  std::vector<uint8_t> returned;
  std::thread collector([&] {
    uint8_t buffer[65536];
    while (true) {
      ssize_t n = read(source_fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (returned.size() + static_cast<size_t>(n) > kMaxReturnPathBytes) break;
      returned.insert(returned.end(), buffer, buffer + n);
    }
  });

  DestinationOptions destination_options = options.destination;
  destination_options.return_path_fd = destination_fd;
  {
    Destination destination(destination_options);
    FdSource incoming(destination_fd);
    result.report = destination.Run(incoming);
  }
  // Closing our side ends the collector and unblocks a sender the
  // destination stopped reading from.
  shutdown(destination_fd, SHUT_RDWR);
  sender.join();
  collector.join();

  MemorySource returned_source(returned);
  result.return_path = ParseReturnPath(returned_source, {});

  // Every PING answered exactly once (in any order: PING 3 waits for the
  // device state), and, given a recording, the same answers as QEMU gave.
  FindingList& findings = result.report.parse.findings;
  const StreamSummary& summary = result.report.parse.summary;
  if (summary.return_path_opened && summary.pings.size() < kMaxRecordedPings) {
    std::vector<uint32_t> pings = summary.pings, pongs = result.return_path.summary.pongs;
    std::sort(pings.begin(), pings.end());
    std::sort(pongs.begin(), pongs.end());
    if (pings != pongs) {
      Finding finding;
      finding.code = FindingCode::kEmuPongMismatch;
      finding.message = absl::StrCat("the destination answered ", pongs.size(), " of ",
                                     pings.size(), " PINGs differently");
      findings.Add(std::move(finding));
    }
  }
  if (options.recorded_return_path.has_value()) {
    MemorySource recorded_source(*options.recorded_return_path);
    ReturnPathResult recorded = ParseReturnPath(recorded_source, {});
    std::vector<uint32_t> ours = result.return_path.summary.pongs, theirs = recorded.summary.pongs;
    std::sort(ours.begin(), ours.end());
    std::sort(theirs.begin(), theirs.end());
    if (ours != theirs) {
      Finding finding;
      finding.code = FindingCode::kEmuPongMismatch;
      finding.message = absl::StrCat("PONGs differ from the recorded return path (", ours.size(),
                                     " here, ", theirs.size(), " recorded)");
      findings.Add(std::move(finding));
    }
    if (recorded.summary.shut_status.has_value() &&
        recorded.summary.shut_status != result.return_path.summary.shut_status) {
      Finding finding;
      finding.code = FindingCode::kEmuPongMismatch;
      finding.message = absl::StrCat("SHUT status differs from the recording: ",
                                     result.return_path.summary.shut_status.value_or(UINT32_MAX),
                                     " here, ", *recorded.summary.shut_status, " recorded");
      findings.Add(std::move(finding));
    }
  }
  return result;
}

}  // namespace qmig
