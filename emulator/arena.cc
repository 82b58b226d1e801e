#include "emulator/arena.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// EAGAIN means the mapping is changing under the ioctl; a few retries
// always suffice unless something is badly wrong.
constexpr int kMaxEagainRetries = 1000;
const uint8_t kZeroPage[GuestArena::kPage] = {};

}  // namespace

absl::StatusOr<std::unique_ptr<GuestArena>> GuestArena::Create(
    const std::vector<ArenaBlockSpec>& specs, uint64_t max_total_bytes,
    uint64_t max_resident_bytes) {
  std::unique_ptr<GuestArena> arena(new GuestArena());
  arena->max_resident_pages_ = max_resident_bytes / kPage;
  if (specs.size() > kMaxRamBlocks) return absl::InvalidArgumentError("too many RAM blocks");
  uint64_t total = 0;
  for (const ArenaBlockSpec& spec : specs) {
    std::optional<uint64_t> sum = CheckedAdd(total, spec.length);
    if (!sum.has_value() || *sum > max_total_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("guest RAM of the stream's blocks is over the limit of ", max_total_bytes,
                       " bytes (ParseLimits::max_guest_ram_bytes)"));
    }
    total = *sum;
  }
  for (const ArenaBlockSpec& spec : specs) {
    if (spec.length == 0 || spec.length > kMaxRamBlockLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("block '", EscapeName(spec.name), "' has an unusable length ", spec.length));
    }
    auto block = std::make_unique<Block>();
    block->name = spec.name;
    block->length = spec.length;
    block->page_size = spec.page_size;
    block->mapped = (spec.length + kPage - 1) / kPage * kPage;
    void* base = mmap(nullptr, block->mapped, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("mmap ", block->mapped, " bytes for '", spec.name, "'"));
    }
    block->base = static_cast<uint8_t*>(base);
    block->states.reset(new std::atomic<uint8_t>[block->pages()]);
    for (uint64_t i = 0; i < block->pages(); ++i) block->states[i].store(0);
    const uint64_t words = (block->pages() + 63) / 64;
    block->resident.reset(new std::atomic<uint64_t>[words]);
    for (uint64_t i = 0; i < words; ++i) block->resident[i].store(0);
    arena->blocks_.push_back(std::move(block));
  }
  return arena;
}

GuestArena::~GuestArena() {
  Unregister();
  for (const auto& block : blocks_) {
    if (block->base != nullptr) munmap(block->base, block->mapped);
  }
}

GuestArena::Block* GuestArena::Find(absl::string_view name) {
  for (const auto& block : blocks_) {
    if (block->name == name) return block.get();
  }
  return nullptr;
}

GuestArena::Block* GuestArena::BlockOf(uint64_t address, uint64_t* page_index) {
  for (const auto& block : blocks_) {
    uint64_t base = reinterpret_cast<uint64_t>(block->base);
    if (address >= base && address - base < block->mapped) {
      *page_index = (address - base) / kPage;
      return block.get();
    }
  }
  return nullptr;
}

bool GuestArena::MarkRequested(Block& block, uint64_t page) {
  uint8_t expected = static_cast<uint8_t>(PageState::kAbsent);
  if (block.states[page].compare_exchange_strong(expected,
                                                 static_cast<uint8_t>(PageState::kRequested))) {
    return false;
  }
  expected = static_cast<uint8_t>(PageState::kDiscarded);
  if (block.states[page].compare_exchange_strong(expected,
                                                 static_cast<uint8_t>(PageState::kRequested))) {
    return false;
  }
  return State(block, page) == PageState::kReceived;
}

bool GuestArena::ChargeResident(Block& block, uint64_t page) {
  std::atomic<uint64_t>& word = block.resident[page / 64];
  const uint64_t bit = uint64_t{1} << (page % 64);
  if (word.load(std::memory_order_acquire) & bit) return true;
  uint64_t pages = resident_pages_.load();
  do {
    if (pages >= max_resident_pages_) return false;
  } while (!resident_pages_.compare_exchange_weak(pages, pages + 1));
  // Another writer may have charged the page meanwhile: then give ours back.
  if (word.fetch_or(bit, std::memory_order_acq_rel) & bit) resident_pages_.fetch_sub(1);
  return true;
}

absl::Status GuestArena::RegisterUserfault() {
  if (registered() || uffd_.fd.valid()) return absl::OkStatus();
  absl::StatusOr<Userfaultfd> uffd = OpenUserfaultfd();
  if (!uffd.ok()) return uffd.status();
  for (const auto& block : blocks_) {
    struct uffdio_register reg = {};
    reg.range.start = reinterpret_cast<uint64_t>(block->base);
    reg.range.len = block->mapped;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (ioctl(uffd->fd.get(), UFFDIO_REGISTER, &reg) != 0) {
      return absl::ErrnoToStatus(errno,
                                 absl::StrCat("UFFDIO_REGISTER '", EscapeName(block->name), "'"));
    }
    if ((reg.ioctls & (1ull << _UFFDIO_COPY)) == 0 ||
        (reg.ioctls & (1ull << _UFFDIO_ZEROPAGE)) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("block '", EscapeName(block->name), "' cannot take UFFDIO_COPY/ZEROPAGE"));
    }
  }
  uffd_ = std::move(*uffd);
  registered_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<Placement> GuestArena::Resolve(Block& block, uint64_t offset,
                                              absl::Span<const uint8_t> page, int error) {
  if (error == EEXIST) {
    // Already there: the same bytes are a harmless resend, others a conflict.
    bool same = std::memcmp(block.base + offset, page.data(), kPage) == 0;
    return same ? Placement::kAlreadySame : Placement::kAlreadyDifferent;
  }
  if (error == ENOENT || error == EINVAL) {
    // The mapping changed under us: wake waiters so nobody hangs on it.
    struct uffdio_range range = {reinterpret_cast<uint64_t>(block.base + offset), kPage};
    ioctl(uffd(), UFFDIO_WAKE, &range);
  }
  return absl::ErrnoToStatus(error,
                             absl::StrFormat("placing %s@0x%x", EscapeName(block.name), offset));
}

absl::StatusOr<Placement> GuestArena::PlacePage(Block& block, uint64_t offset,
                                                absl::Span<const uint8_t> page) {
  if (offset % kPage != 0 || offset >= block.mapped || page.size() != kPage) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad placement %s@0x%x", EscapeName(block.name), offset));
  }
  for (int attempt = 0;; ++attempt) {
    struct uffdio_copy copy = {};
    copy.dst = reinterpret_cast<uint64_t>(block.base + offset);
    copy.src = reinterpret_cast<uint64_t>(page.data());
    copy.len = kPage;
    copy.mode = 0;
    if (ioctl(uffd(), UFFDIO_COPY, &copy) == 0) {
      SetState(block, offset / kPage, PageState::kReceived);
      return Placement::kPlaced;
    }
    int error = copy.copy < 0 ? static_cast<int>(-copy.copy) : errno;
    if (error == EAGAIN && attempt < kMaxEagainRetries) {
      eagain_retries_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    return Resolve(block, offset, page, error);
  }
}

absl::StatusOr<Placement> GuestArena::PlaceZeroPage(Block& block, uint64_t offset) {
  if (offset % kPage != 0 || offset >= block.mapped) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad placement %s@0x%x", EscapeName(block.name), offset));
  }
  for (int attempt = 0;; ++attempt) {
    struct uffdio_zeropage zero = {};
    zero.range.start = reinterpret_cast<uint64_t>(block.base + offset);
    zero.range.len = kPage;
    zero.mode = 0;
    if (ioctl(uffd(), UFFDIO_ZEROPAGE, &zero) == 0) {
      SetState(block, offset / kPage, PageState::kReceived);
      return Placement::kPlaced;
    }
    int error = zero.zeropage < 0 ? static_cast<int>(-zero.zeropage) : errno;
    if (error == EAGAIN && attempt < kMaxEagainRetries) {
      eagain_retries_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    return Resolve(block, offset, absl::Span<const uint8_t>(kZeroPage, kPage), error);
  }
}

absl::Status GuestArena::Discard(Block& block, uint64_t start, uint64_t length) {
  if (start % kPage != 0 || length % kPage != 0 || start > block.mapped ||
      length > block.mapped - start) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad discard %s@0x%x+0x%x", EscapeName(block.name), start, length));
  }
  if (length == 0) return absl::OkStatus();
  if (madvise(block.base + start, length, MADV_DONTNEED) != 0) {
    return absl::ErrnoToStatus(errno, "madvise(MADV_DONTNEED)");
  }
  for (uint64_t page = start / kPage; page < (start + length) / kPage; ++page) {
    SetState(block, page, PageState::kDiscarded);
    const uint64_t bit = uint64_t{1} << (page % 64);
    if (block.resident[page / 64].fetch_and(~bit, std::memory_order_acq_rel) & bit) {
      resident_pages_.fetch_sub(1);
    }
  }
  return absl::OkStatus();
}

uint64_t MaxResidentGuestBytesFromMeminfo(absl::string_view meminfo) {
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemAvailable:")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumeSuffix(&line, " kB")) break;
    uint64_t kib = 0;
    if (!absl::SimpleAtoi(line, &kib) || kib > (UINT64_MAX >> 11)) break;
    return std::clamp(kib * 1024 / 2, kMinDefaultResidentGuestBytes, kMaxDefaultResidentGuestBytes);
  }
  return kMinDefaultResidentGuestBytes;
}

uint64_t DefaultMaxResidentGuestBytes() {
  std::ifstream in("/proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();  // nothing when it cannot be opened
  return MaxResidentGuestBytesFromMeminfo(text.str());
}

void GuestArena::Unregister() {
  if (!registered_.exchange(false)) return;
  for (const auto& block : blocks_) {
    struct uffdio_range range = {reinterpret_cast<uint64_t>(block->base), block->mapped};
    ioctl(uffd(), UFFDIO_WAKE, &range);
    ioctl(uffd(), UFFDIO_UNREGISTER, &range);
  }
}

}  // namespace qmig
