#include "emulator/loopback.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <thread>

#include "emulator/memory_compare.h"
#include "parser/vmstate/description.h"

namespace qmig {

absl::StatusOr<LoopbackResult> RunLoopback(GuestImage& image, const LoopbackOptions& options) {
  absl::StatusOr<Connection> connection = Connect(options.transport);
  if (!connection.ok()) return connection.status();
  int destination_fd = connection->destination.get();
  struct timeval timeout = absl::ToTimeval(options.source.stall_timeout);
  setsockopt(destination_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

  LoopbackResult result;
  SyntheticSource source(image, options.source);
  std::thread sender([&] { result.source = source.Run(connection->source.get()); });

  DestinationOptions destination_options = options.destination;
  destination_options.return_path_fd = destination_fd;
  // The source's device state is known: decode it strictly.
  absl::StatusOr<VmDescription> devices = ParseVmDescription(SyntheticDeviceDescription());
  if (destination_options.parse.schema == nullptr && devices.ok()) {
    destination_options.parse.schema = &*devices;
  }
  Destination destination(destination_options);
  {
    FdSource incoming(destination_fd);
    result.report = destination.Run(incoming);
  }
  shutdown(destination_fd, SHUT_RDWR);  // ends the source's return-path reader
  sender.join();

  if (GuestArena* arena = destination.arena()) {
    std::vector<SourceBlock> expected;
    for (const GuestImage::Block& block : image.blocks)
      expected.push_back({block.name, block.bytes});
    result.differing_pages = CompareWithSource(*arena, expected, result.report.parse.summary.bytes,
                                               result.report.parse.findings);
  }
  // A source that failed on its own (not because the destination gave up on
  // a broken stream, nor by an injected stop) is a finding too.
  if (!result.source.error.empty() && options.source.fault != SourceFault::kStopMidStream &&
      result.report.parse.findings.error_count() == 0) {
    Finding finding;
    finding.code = FindingCode::kEmuSourceFailed;
    finding.message = result.source.error;
    result.report.parse.findings.Add(std::move(finding));
  }
  return result;
}

}  // namespace qmig
