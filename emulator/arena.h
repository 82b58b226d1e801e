// GuestArena: the destination's guest RAM. One anonymous mapping per
// RAMBlock, a state per page, and, from LISTEN on, userfaultfd registration
// so that a guest thread touching a missing page faults and waits until the
// page is placed atomically with UFFDIO_COPY / UFFDIO_ZEROPAGE.
//
// Thread safety: page states are atomics. Placement may run on one thread
// while the fault thread marks requests and guest threads touch memory.
#ifndef QMIG_EMULATOR_ARENA_H_
#define QMIG_EMULATOR_ARENA_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "emulator/userfaultfd.h"

namespace qmig {

enum class PageState : uint8_t {
  kAbsent = 0,     // never received
  kReceived = 1,   // holds data from the stream
  kDiscarded = 2,  // dropped by RAM_DISCARD, must arrive again
  kRequested = 3,  // a guest thread faulted on it; a page request went out
};

struct ArenaBlockSpec {
  std::string name;
  uint64_t length;
  uint64_t page_size;
};

// Result of placing a page after LISTEN.
enum class Placement : uint8_t {
  kPlaced,            // the page was missing and is now in place
  kAlreadySame,       // present already with the same bytes (sent twice)
  kAlreadyDifferent,  // present already with other bytes
};

class GuestArena {
 public:
  struct Block {
    std::string name;
    uint64_t length = 0;
    uint64_t page_size = 0;
    uint8_t* base = nullptr;
    uint64_t mapped = 0;  // bytes mapped (length rounded up to the page)
    std::unique_ptr<std::atomic<uint8_t>[]> states;
    // Pages charged as resident, a bit each (see ChargeResident).
    std::unique_ptr<std::atomic<uint64_t>[]> resident;
    uint64_t pages() const { return mapped / kPage; }
  };
  static constexpr uint64_t kPage = 4096;

  // Maps every block (MAP_NORESERVE: untouched pages cost nothing). Fails
  // when the blocks together exceed `max_total_bytes`. At most
  // `max_resident_bytes` of them may be charged as resident.
  static absl::StatusOr<std::unique_ptr<GuestArena>> Create(
      const std::vector<ArenaBlockSpec>& blocks, uint64_t max_total_bytes,
      uint64_t max_resident_bytes = UINT64_MAX);
  ~GuestArena();
  GuestArena(const GuestArena&) = delete;
  GuestArena& operator=(const GuestArena&) = delete;

  Block* Find(absl::string_view name);
  const std::vector<std::unique_ptr<Block>>& blocks() const { return blocks_; }
  // The block and page index holding a host address, or nullptr.
  Block* BlockOf(uint64_t address, uint64_t* page_index);

  PageState State(const Block& block, uint64_t page) const {
    return static_cast<PageState>(block.states[page].load(std::memory_order_acquire));
  }
  void SetState(Block& block, uint64_t page, PageState state) {
    block.states[page].store(static_cast<uint8_t>(state), std::memory_order_release);
  }
  // Sets kRequested unless the page arrived meanwhile; true when it did.
  bool MarkRequested(Block& block, uint64_t page);

  // Precopy: the page's memory, written in place by the caller.
  uint8_t* PagePointer(Block& block, uint64_t offset) { return block.base + offset; }

  // Resident memory: a page costs memory once bytes are written into it or
  // placed with UFFDIO_COPY (a zero page that is never written, or one placed
  // with UFFDIO_ZEROPAGE, costs none). A writer charges the page first: true
  // when it is charged already or now, false (nothing charged) when that
  // would take the arena past its resident limit. Any thread.
  bool ChargeResident(Block& block, uint64_t page);
  bool IsResident(const Block& block, uint64_t page) const {
    return (block.resident[page / 64].load(std::memory_order_acquire) >> (page % 64)) & 1;
  }
  uint64_t resident_bytes() const { return resident_pages_.load() * kPage; }
  uint64_t max_resident_bytes() const { return max_resident_pages_ * kPage; }

  // Registers every block with userfaultfd in MISSING mode. Pages already
  // received stay; every absent page now faults.
  absl::Status RegisterUserfault();
  bool registered() const { return registered_.load(std::memory_order_acquire); }
  int uffd() const { return uffd_.fd.get(); }
  const std::string& uffd_how() const { return uffd_.how; }

  // Postcopy placement (after RegisterUserfault). `page` must be kPage bytes.
  absl::StatusOr<Placement> PlacePage(Block& block, uint64_t offset,
                                      absl::Span<const uint8_t> page);
  absl::StatusOr<Placement> PlaceZeroPage(Block& block, uint64_t offset);
  // Drops pages (MADV_DONTNEED), marks them discarded and no longer charged.
  absl::Status Discard(Block& block, uint64_t start, uint64_t length);
  // Wakes every waiter and stops fault delivery: missing pages then read as
  // zero. Used at teardown and after a detected deadlock. The descriptor
  // stays open (a fault thread may still poll it) until the arena dies.
  void Unregister();

  uint64_t EAGAINRetries() const { return eagain_retries_; }

 private:
  GuestArena() = default;
  absl::StatusOr<Placement> Resolve(Block& block, uint64_t offset, absl::Span<const uint8_t> page,
                                    int error);

  std::vector<std::unique_ptr<Block>> blocks_;
  Userfaultfd uffd_;
  std::atomic<bool> registered_{false};
  std::atomic<uint64_t> eagain_retries_{0};
  uint64_t max_resident_pages_ = UINT64_MAX;
  std::atomic<uint64_t> resident_pages_{0};
};

// The resident limit when the caller sets none: half of MemAvailable in
// /proc/meminfo, within [kMinDefaultResidentGuestBytes,
// kMaxDefaultResidentGuestBytes]; the minimum when it cannot be read.
uint64_t DefaultMaxResidentGuestBytes();
// The same from the text of /proc/meminfo.
uint64_t MaxResidentGuestBytesFromMeminfo(absl::string_view meminfo);

}  // namespace qmig

#endif  // QMIG_EMULATOR_ARENA_H_
