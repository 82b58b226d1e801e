// Destination: a loopback stand-in for QEMU's incoming side.
//
// It reads a migration stream through the strict parser and acts on it as
// QEMU's destination does, over a real userfaultfd-backed GuestArena:
//  * precopy pages are written straight into the arena;
//  * on LISTEN the arena is registered with userfaultfd and the stream after
//    the package is read by the listen path (the parsing thread) while a
//    separate device-loading thread works through the package's device
//    state, PINGs and RUN, as QEMU's main thread does;
//  * from RUN on, guest threads touch pages; a touch of a missing page is a
//    real fault, served by a fault thread that sends REQ_PAGES on the return
//    path; the page is placed with UFFDIO_COPY when the stream brings it;
//  * PINGs are answered with PONGs once the return path is open, and SHUT
//    ends the return path.
// It reports what QEMU would not notice: pages placed twice with other
// bytes, pages requested and never delivered, discarded pages never sent
// again, and (given the source's memory) memory that ends up different.
#ifndef QMIG_EMULATOR_DESTINATION_H_
#define QMIG_EMULATOR_DESTINATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "emulator/arena.h"
#include "emulator/guest.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/limits.h"

namespace qmig {

struct DestinationOptions {
  ParseOptions parse;       // limits, profile, schema (its observer is ignored)
  int return_path_fd = -1;  // where return-path messages go; -1: nowhere
  GuestPattern guest;       // what guest threads do after RUN
  // Guest RAM that may become resident (pages written or placed with
  // UFFDIO_COPY); 0: DefaultMaxResidentGuestBytes(), from what this machine
  // has available. The page that would pass it is reported
  // (emu.resident_limit) and the destination stops reading the stream.
  uint64_t max_resident_bytes = 0;
  // Simulated time the device-loading thread spends per device section, to
  // widen the window in which the listen path runs alongside it.
  absl::Duration device_load_delay = absl::ZeroDuration();
  // Called when the main stream has ended, before pages are accounted: the
  // place to wait for other channels (multifd) to deliver what they carry.
  std::function<void()> on_main_stream_end;
  // Postcopy recovery: when the main connection breaks while postcopy runs,
  // asks for the source's new connection (QEMU's `migrate ... resume=true`
  // after `migrate-recover` on the destination). It returns the stream to
  // read on and sets the descriptor the return path now goes to, or returns
  // nullptr when none came. Guest threads wait meanwhile; their requests are
  // sent again after the source's POSTCOPY_RESUME.
  std::function<ByteSource*(int* return_path_fd)> await_recovery;
};

struct DestinationStats {
  uint64_t precopy_pages = 0;   // written before LISTEN
  uint64_t postcopy_pages = 0;  // placed with UFFDIO_COPY / ZEROPAGE
  uint64_t zero_pages = 0;
  uint64_t discarded_pages = 0;
  uint64_t faults = 0;           // page faults read from userfaultfd
  uint64_t page_requests = 0;    // REQ_PAGES sent
  uint64_t requests_served = 0;  // requested pages that arrived
  uint64_t pongs = 0;
  uint64_t guest_touches = 0;
  uint64_t eagain_retries = 0;
  uint64_t recoveries = 0;               // connections resumed after a break
  std::vector<double> fault_latency_us;  // request to placement, per served request
  bool postcopy = false;
  std::string userfaultfd;  // how it was opened, when it was
};

struct DestinationReport {
  ParseResult parse;  // the parser's summary; findings hold both kinds
  DestinationStats stats;
  bool valid() const { return parse.findings.error_count() == 0; }
};

class Destination {
 public:
  explicit Destination(DestinationOptions options);
  ~Destination();
  Destination(const Destination&) = delete;
  Destination& operator=(const Destination&) = delete;

  // Runs the incoming side over `source` until the stream ends, then tears
  // down every thread and registration. Call once.
  DestinationReport Run(ByteSource& source);

  // The guest memory after Run (nullptr when no MEM_SIZE arrived).
  GuestArena* arena();

  // A page that arrived on another channel (multifd), from any thread. Waits
  // up to `wait` for the main stream's block list; false if it never came
  // or the page lies outside its block.
  // A page from the postcopy preempt channel (any thread): placed as a
  // postcopy page of the main stream is, answering requests.
  void PlacePreemptPage(absl::string_view block, uint64_t offset, RamRecordKind kind,
                        absl::Span<const uint8_t> body, uint64_t channel_offset);
  bool PlaceChannelPage(absl::string_view block, uint64_t offset, absl::Span<const uint8_t> page,
                        absl::Duration wait = absl::Seconds(10));

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qmig

#endif  // QMIG_EMULATOR_DESTINATION_H_
