#include "emulator/synthetic_source.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "emulator/return_path_writer.h"
#include "parser/encode/stream_writer.h"
#include "parser/parse_context.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kRamSectionId = 2;
constexpr uint32_t kDeviceSectionId = 3;
constexpr size_t kMaxDiscardRangesPerCommand = 12;  // as QEMU's sender

struct PageRef {
  size_t block;
  uint64_t page;
  bool operator<(const PageRef& other) const {
    return std::tie(block, page) < std::tie(other.block, other.page);
  }
};

bool IsZeroPage(const uint8_t* page) {
  for (uint64_t i = 0; i < kPage; ++i) {
    if (page[i] != 0) return false;
  }
  return true;
}

// The device state the package carries: a tiny made-up device.
DeviceSpec Device() { return DeviceSpec{"qmig-dev", 0, 1, {{"counter", "uint32", {0, 0, 0, 42}}}}; }

class Run {
 public:
  Run(GuestImage& image, const SyntheticSourceOptions& options, int fd)
      : image_(image), options_(options), fd_(fd), random_(options.seed) {}

  SyntheticSourceReport Go() {
    std::thread reader([this] { ReadReturnPath(); });
    absl::Status status = Migrate();
    if (!status.ok()) report_.error = std::string(status.message());
    shutdown(fd_, SHUT_WR);  // the end of the stream
    WaitForShut();
    reader_stop_.store(true);
    shutdown(fd_, SHUT_RD);
    reader.join();
    std::lock_guard<std::mutex> lock(mutex_);
    return report_;
  }

 private:
  absl::Status Send(StreamWriter& writer) {
    absl::Status status = WriteAll(
        fd_, writer.bytes(), static_cast<int>(absl::ToInt64Milliseconds(options_.stall_timeout)));
    report_.bytes_sent += writer.size();
    writer = StreamWriter();
    return status;
  }

  uint8_t* PagePointer(const PageRef& ref) {
    return &image_.blocks[ref.block].bytes[ref.page * kPage];
  }
  const std::string& BlockName(const PageRef& ref) { return image_.blocks[ref.block].name; }

  // One RAM record for a page, as QEMU writes it (CONTINUE after the first
  // page of a block within a section).
  void WritePage(StreamWriter& w, const PageRef& ref, const uint8_t* bytes, size_t* last_block) {
    RamBlockRef block =
        *last_block == ref.block ? RamBlockRef(kContinueBlock) : RamBlockRef(BlockName(ref));
    *last_block = ref.block;
    if (IsZeroPage(bytes)) {
      w.RamZero(block, ref.page * kPage);
    } else {
      w.RamPage(block, ref.page * kPage, absl::MakeConstSpan(bytes, kPage));
    }
    ++report_.pages_sent;
  }

  absl::Status SendPages(const std::vector<PageRef>& pages) {
    for (size_t start = 0; start < pages.size(); start += options_.pages_per_part) {
      StreamWriter w;
      w.SectionPart(kRamSectionId);
      size_t last_block = SIZE_MAX;
      size_t end = std::min(pages.size(), start + options_.pages_per_part);
      for (size_t i = start; i < end; ++i)
        WritePage(w, pages[i], PagePointer(pages[i]), &last_block);
      w.RamEos().Footer(kRamSectionId);
      QMIG_RETURN_IF_ERROR(Send(w));
    }
    return absl::OkStatus();
  }

  // The guest runs on the source: it rewrites some pages.
  std::set<PageRef> Dirty(uint64_t count) {
    std::set<PageRef> dirty;
    const GuestImage::Block& ram = image_.blocks.front();
    uint64_t pages = ram.bytes.size() / kPage;
    for (uint64_t i = 0; i < count && pages > 0; ++i) {
      PageRef ref{0, random_() % pages};
      uint8_t* page = PagePointer(ref);
      for (uint64_t b = 0; b < kPage; b += 64) page[b] = static_cast<uint8_t>(random_() | 1);
      dirty.insert(ref);
    }
    return dirty;
  }

  void WriteDiscards(StreamWriter& w, const std::set<PageRef>& pages) {
    // Coalesce runs of pages per block into ranges, at most 12 per command.
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    size_t block = SIZE_MAX;
    auto flush = [&] {
      for (size_t i = 0; i < ranges.size(); i += kMaxDiscardRangesPerCommand) {
        std::vector<std::pair<uint64_t, uint64_t>> part(
            ranges.begin() + i,
            ranges.begin() + std::min(ranges.size(), i + kMaxDiscardRangesPerCommand));
        w.RamDiscard(image_.blocks[block].name, part);
      }
      ranges.clear();
    };
    for (const PageRef& ref : pages) {
      if (ref.block != block) {
        if (block != SIZE_MAX) flush();
        block = ref.block;
      }
      uint64_t start = ref.page * kPage;
      if (!ranges.empty() && ranges.back().first + ranges.back().second == start) {
        ranges.back().second += kPage;
      } else {
        ranges.push_back({start, kPage});
      }
    }
    if (block != SIZE_MAX) flush();
  }

  absl::Status Migrate() {
    const SourceFault fault = options_.fault;
    StreamWriter w;
    std::vector<RamBlockSpec> blocks;
    for (const GuestImage::Block& block : image_.blocks)
      blocks.push_back({block.name, block.bytes.size()});
    w.Header().Configuration({"pc-i440fx-7.2"});
    if (options_.postcopy) w.OpenReturnPath().Ping(1).Advise(true, kPage, kPage);
    w.SectionStart(kRamSectionId, "ram", 0, kRamSectionVersion).RamMemSize(blocks).RamEos();
    w.Footer(kRamSectionId);
    QMIG_RETURN_IF_ERROR(Send(w));

    // Precopy: every page once, then the pages dirtied since, round by round.
    std::vector<PageRef> all;
    for (size_t b = 0; b < image_.blocks.size(); ++b) {
      for (uint64_t p = 0; p < image_.blocks[b].bytes.size() / kPage; ++p) all.push_back({b, p});
    }
    QMIG_RETURN_IF_ERROR(SendPages(all));
    for (uint32_t round = 1; round < options_.precopy_rounds; ++round) {
      std::set<PageRef> dirty = Dirty(options_.dirty_pages_per_round);
      QMIG_RETURN_IF_ERROR(SendPages({dirty.begin(), dirty.end()}));
    }
    std::set<PageRef> pending = Dirty(options_.dirty_pages_per_round);

    if (!options_.postcopy) {
      QMIG_RETURN_IF_ERROR(SendPages({pending.begin(), pending.end()}));
      w.SectionEnd(kRamSectionId).RamEos().Footer(kRamSectionId);
      w.DeviceFull(kDeviceSectionId, Device()).Footer(kDeviceSectionId).Eof();
      return Send(w);
    }

    // Postcopy: discard what changed since it was sent, then the package.
    WriteDiscards(w, pending);
    w.Ping(2);
    StreamWriter package;
    if (fault == SourceFault::kRunBeforeListen) package.Run();
    package.Listen();
    if (fault == SourceFault::kForbiddenInPackage) WriteDiscards(package, {*pending.begin()});
    package.DeviceFull(kDeviceSectionId, Device()).Footer(kDeviceSectionId).Ping(3);
    if (fault != SourceFault::kRunBeforeListen) package.Run();
    if (fault == SourceFault::kMisSizePackage) {
      w.Packaged(static_cast<uint32_t>(package.size() + 1), package.bytes());
    } else {
      w.Packaged(package);
    }
    w.Ping(4);
    if (fault == SourceFault::kDiscardAfterListen) {
      // A page received in precopy and not pending: nothing will resend it.
      for (const PageRef& ref : all) {
        if (!pending.count(ref) && !IsZeroPage(PagePointer(ref))) {
          WriteDiscards(w, {ref});
          break;
        }
      }
    }
    QMIG_RETURN_IF_ERROR(Send(w));

    PageRef dropped{SIZE_MAX, 0};
    if (fault == SourceFault::kDropPage) dropped = *pending.begin();
    const size_t stop_below = pending.size() / 2;
    while (!pending.empty()) {
      if (fault == SourceFault::kStopMidStream && pending.size() <= stop_below) {
        return absl::AbortedError("stopped mid-stream (injected fault)");
      }
      // Requested pages first, as QEMU's source does.
      std::vector<PageRef> batch = TakeRequests(pending);
      bool requested = !batch.empty();
      if (!requested) {
        absl::SleepFor(options_.background_page_delay);
        batch = TakeRequests(pending);
        requested = !batch.empty();
        if (!requested) batch.push_back(*pending.begin());
      }
      StreamWriter part;
      part.SectionPart(kRamSectionId);
      size_t last_block = SIZE_MAX;
      for (const PageRef& ref : batch) {
        pending.erase(ref);
        if (ref.block == dropped.block && ref.page == dropped.page) continue;
        WritePage(part, ref, PagePointer(ref), &last_block);
        if (requested) ++report_.requested_pages_sent;
        if (fault == SourceFault::kDoublePage && !doubled_) {
          doubled_ = true;
          std::vector<uint8_t> changed(PagePointer(ref), PagePointer(ref) + kPage);
          changed[0] ^= 0xff;
          changed[1] ^= 0x5a;
          last_block = SIZE_MAX;
          WritePage(part, ref, changed.data(), &last_block);
        }
      }
      part.RamEos().Footer(kRamSectionId);
      QMIG_RETURN_IF_ERROR(Send(part));
    }
    w.SectionEnd(kRamSectionId).RamEos().Footer(kRamSectionId).Eof();
    return Send(w);
  }

  // Pending pages the destination asked for, in request order.
  std::vector<PageRef> TakeRequests(const std::set<PageRef>& pending) {
    std::vector<PageRef> pages;
    std::lock_guard<std::mutex> lock(mutex_);
    while (!requests_.empty()) {
      PageRef ref = requests_.front();
      requests_.pop_front();
      if (pending.count(ref)) pages.push_back(ref);
    }
    return pages;
  }

  // be16 type, be16 length, payload; the only messages a postcopy source
  // needs here are PONG, REQ_PAGES[_ID] and SHUT.
  void ReadReturnPath() {
    std::vector<uint8_t> buffer;
    std::string last_block;
    uint8_t chunk[4096];
    while (!reader_stop_.load()) {
      ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      buffer.insert(buffer.end(), chunk, chunk + n);
      size_t at = 0;
      while (buffer.size() - at >= 4) {
        uint16_t type = LoadBe16(&buffer[at]);
        uint16_t length = LoadBe16(&buffer[at + 2]);
        if (buffer.size() - at < 4u + length) break;
        const uint8_t* p = &buffer[at + 4];
        std::lock_guard<std::mutex> lock(mutex_);
        switch (static_cast<ReturnPathType>(type)) {
          case ReturnPathType::kPong:
            if (length == 4) report_.pongs.push_back(LoadBe32(p));
            break;
          case ReturnPathType::kShut:
            if (length == 4) report_.shut_status = LoadBe32(p);
            break;
          case ReturnPathType::kReqPagesId:
          case ReturnPathType::kReqPages: {
            if (length < 12) break;
            if (type == static_cast<uint16_t>(ReturnPathType::kReqPagesId) && length >= 13) {
              last_block.assign(reinterpret_cast<const char*>(p + 13),
                                std::min<size_t>(p[12], length - 13));
            }
            uint64_t start = LoadBe64(p);
            uint32_t bytes = LoadBe32(p + 8);
            ++report_.requests_received;
            for (size_t b = 0; b < image_.blocks.size(); ++b) {
              if (image_.blocks[b].name != last_block) continue;
              for (uint64_t offset = start; offset < start + bytes; offset += kPage) {
                requests_.push_back({b, offset / kPage});
              }
            }
            break;
          }
          default:
            break;
        }
        at += 4u + length;
      }
      buffer.erase(buffer.begin(), buffer.begin() + at);
    }
  }

  void WaitForShut() {
    absl::Time deadline = absl::Now() + options_.stall_timeout;
    while (absl::Now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (report_.shut_status >= 0) return;
      }
      struct pollfd pfd = {fd_, POLLRDHUP, 0};
      poll(&pfd, 1, 5);
      if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
        absl::SleepFor(absl::Milliseconds(2));  // let the reader take what is left
        return;
      }
    }
  }

  GuestImage& image_;
  const SyntheticSourceOptions& options_;
  int fd_;
  std::mt19937_64 random_;
  bool doubled_ = false;
  std::atomic<bool> reader_stop_{false};
  std::mutex mutex_;
  std::deque<PageRef> requests_;  // guarded by mutex_
  SyntheticSourceReport report_;  // pongs, shut, requests guarded by mutex_
};

}  // namespace

GuestImage GuestImage::Synthetic(uint64_t ram_bytes, uint64_t seed) {
  GuestImage image;
  std::mt19937_64 random(seed);
  for (auto [name, bytes] : {std::pair<const char*, uint64_t>{"pc.ram", ram_bytes},
                             std::pair<const char*, uint64_t>{"pc.rom", 16 * kPage}}) {
    Block block{name, std::vector<uint8_t>((bytes + kPage - 1) / kPage * kPage, 0)};
    for (uint64_t page = 0; page < block.bytes.size() / kPage; ++page) {
      if (page % 4 == 3) continue;  // a zero page
      for (uint64_t i = 0; i < kPage; i += 8)
        block.bytes[page * kPage + i] = static_cast<uint8_t>(random());
    }
    image.blocks.push_back(std::move(block));
  }
  return image;
}

absl::StatusOr<GuestImage> GuestImage::FromFile(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open image ", path));
  std::vector<uint8_t> bytes;
  char chunk[65536];
  while (in.read(chunk, sizeof(chunk)) || in.gcount() > 0) {
    bytes.insert(bytes.end(), chunk, chunk + in.gcount());
    if (bytes.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("image ", path, " is over ", max_bytes, " bytes"));
    }
  }
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat("image ", path, " is empty"));
  bytes.resize((bytes.size() + kPage - 1) / kPage * kPage, 0);
  GuestImage image;
  image.blocks.push_back({"pc.ram", std::move(bytes)});
  return image;
}

std::string SyntheticDeviceDescription() { return DescribeDevices({Device()}); }

absl::StatusOr<SourceFault> ParseSourceFault(absl::string_view name) {
  for (SourceFault fault : AllSourceFaults()) {
    if (SourceFaultName(fault) == name) return fault;
  }
  if (name == "none") return SourceFault::kNone;
  std::string known;
  for (SourceFault fault : AllSourceFaults()) absl::StrAppend(&known, " ", SourceFaultName(fault));
  return absl::InvalidArgumentError(absl::StrCat("unknown fault '", name, "'; known:", known));
}

absl::string_view SourceFaultName(SourceFault fault) {
  switch (fault) {
    case SourceFault::kNone:
      return "none";
    case SourceFault::kDropPage:
      return "drop-page";
    case SourceFault::kDoublePage:
      return "double-page";
    case SourceFault::kDiscardAfterListen:
      return "discard-after-listen";
    case SourceFault::kMisSizePackage:
      return "mis-size-package";
    case SourceFault::kForbiddenInPackage:
      return "forbidden-in-package";
    case SourceFault::kRunBeforeListen:
      return "run-before-listen";
    case SourceFault::kStopMidStream:
      return "stop-mid-stream";
  }
  return "none";
}

std::vector<SourceFault> AllSourceFaults() {
  return {SourceFault::kDropPage,           SourceFault::kDoublePage,
          SourceFault::kDiscardAfterListen, SourceFault::kMisSizePackage,
          SourceFault::kForbiddenInPackage, SourceFault::kRunBeforeListen,
          SourceFault::kStopMidStream};
}

SyntheticSourceReport SyntheticSource::Run(int fd) {
  class Run run(image_, options_, fd);
  return run.Go();
}

}  // namespace qmig
