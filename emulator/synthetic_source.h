// SyntheticSource: a migration source that migrates an in-memory guest image
// the way QEMU's source does: precopy rounds over pages the "guest" keeps
// dirtying, then postcopy (discard, the package, RUN) during which it answers
// page requests from the return path before sending background pages.
//
// It can be told to misbehave, one fault at a time, so that the destination's
// findings can be checked against a known cause.
#ifndef QMIG_EMULATOR_SYNTHETIC_SOURCE_H_
#define QMIG_EMULATOR_SYNTHETIC_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace qmig {

struct GuestImage {
  struct Block {
    std::string name;
    std::vector<uint8_t> bytes;  // a whole number of 4 KiB pages
  };
  std::vector<Block> blocks;

  // A guest of `ram_bytes` in "pc.ram" plus a small "pc.rom": patterned
  // pages with every fourth page left zero.
  static GuestImage Synthetic(uint64_t ram_bytes, uint64_t seed = 1);
  // An image read from a file: one block "pc.ram" holding the file's bytes,
  // padded to a whole page.
  static absl::StatusOr<GuestImage> FromFile(const std::string& path, uint64_t max_bytes);
};

enum class SourceFault {
  kNone,
  kDropPage,            // one postcopy page is never sent
  kDoublePage,          // one postcopy page is sent twice, the second time changed
  kDiscardAfterListen,  // a RAM_DISCARD after the package (after LISTEN)
  kMisSizePackage,      // the PACKAGED length is one byte too long
  kForbiddenInPackage,  // a RAM_DISCARD inside the package
  kRunBeforeListen,     // the package sends RUN before LISTEN
  kStopMidStream,       // the source stops halfway through postcopy
};

// The vmstate description (VMDESCRIPTION JSON) of the device state the
// synthetic source sends, for decoding it strictly on the destination.
std::string SyntheticDeviceDescription();

absl::StatusOr<SourceFault> ParseSourceFault(absl::string_view name);
absl::string_view SourceFaultName(SourceFault fault);
std::vector<SourceFault> AllSourceFaults();

struct SyntheticSourceOptions {
  SourceFault fault = SourceFault::kNone;
  bool postcopy = true;
  uint32_t precopy_rounds = 2;
  uint64_t dirty_pages_per_round = 64;
  uint32_t pages_per_part = 128;
  // Pause before each background page in postcopy, so that guest threads
  // fault on pages not sent yet and their requests overtake the background.
  absl::Duration background_page_delay = absl::Microseconds(50);
  absl::Duration stall_timeout = absl::Seconds(10);
  uint64_t seed = 1;
};

struct SyntheticSourceReport {
  uint64_t bytes_sent = 0;
  uint64_t pages_sent = 0;
  uint64_t requests_received = 0;
  uint64_t requested_pages_sent = 0;  // sent because they were asked for
  std::vector<uint32_t> pongs;
  int64_t shut_status = -1;  // -1: no SHUT arrived
  std::string error;         // why the source stopped early, if it did
};

class SyntheticSource {
 public:
  // `image` is updated as the guest "runs" on the source during precopy; at
  // the end it holds the memory the destination must end up with.
  SyntheticSource(GuestImage& image, SyntheticSourceOptions options)
      : image_(image), options_(options) {}

  // Migrates over the connected socket `fd` (main stream out, return path
  // in) and returns when the migration is over.
  SyntheticSourceReport Run(int fd);

 private:
  GuestImage& image_;
  SyntheticSourceOptions options_;
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_SYNTHETIC_SOURCE_H_
