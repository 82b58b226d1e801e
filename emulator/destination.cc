#include "emulator/destination.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "emulator/fault_thread.h"
#include "emulator/loader_thread.h"
#include "emulator/mutex.h"
#include "emulator/recovery.h"
#include "emulator/return_path_writer.h"
#include "emulator/stoppable_source.h"
#include "parser/page_codec.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"

namespace qmig {

namespace {
// How long guest threads may take to finish their touches after the stream
// ended (they only read memory, so this is generous).
constexpr absl::Duration kGuestDrainTimeout = absl::Seconds(30);

}  // namespace

class Destination::Impl : public StreamObserver {
 public:
  explicit Impl(DestinationOptions options)
      : options_(std::move(options)), return_path_(options_.return_path_fd) {}

  ~Impl() override { Teardown(); }

  DestinationReport Run(ByteSource& source) {
    ParseOptions parse_options = options_.parse;
    parse_options.observer = this;
    DestinationReport report;
    {
      StoppableSource stoppable(source, stop_);
      report.parse = ParseMigrationStream(stoppable, parse_options);
    }
    // What the package queued (device state, RUN) runs before the guest's
    // state decides whether a recovery can follow.
    loader_.Stop();
    while (Recoverable(report.parse) && options_.await_recovery) {
      int fd = -1;
      ByteSource* resumed = options_.await_recovery(&fd);
      if (resumed == nullptr) break;
      return_path_.Reset(fd);
      StoppableSource stoppable(*resumed, stop_);
      ParseResult next = ParseMigrationStream(stoppable, parse_options);
      MergeRecovered(report.parse, std::move(next), ++stats_recoveries_);
    }
    if (stop_.load()) ExplainStop(report.parse);  // emulator/stoppable_source.h
    Finish(report.parse);
    {
      MutexLock lock(&mutex_);
      for (const Finding& finding : findings_.findings()) report.parse.findings.Add(finding);
      report.parse.findings.AddUnstoredCountsOf(findings_);
      findings_ = FindingList(findings_.max_kept());
      report.stats = stats_;
    }
    return report;
  }

  GuestArena* arena() { return arena_ready_.load() ? arena_.get() : nullptr; }

  // QEMU pauses rather than fails when the main connection breaks while
  // postcopy runs: the guest already runs here and owns pages.
  bool Recoverable(const ParseResult& parse) const {
    if (parse.summary.eof_seen || stop_.load() || guest_ == nullptr || arena_ == nullptr ||
        !arena_->registered()) {
      return false;
    }
    return parse.findings.HasCode(FindingCode::kTruncated) ||
           parse.findings.HasCode(FindingCode::kIoError);
  }

  // Charges a page about to hold bytes; past the limit, reports it once and
  // stops the destination (the page is not written). Any thread.
  bool ChargeResident(GuestArena::Block& block, uint64_t offset, uint64_t stream_offset) {
    if (arena_->ChargeResident(block, offset / GuestArena::kPage)) return true;
    MutexLock lock(&mutex_);
    if (!stop_.exchange(true)) {
      AddFinding(FindingCode::kEmuResidentLimit, stream_offset,
                 absl::StrCat("this page would take resident guest memory past the limit of ",
                              arena_->max_resident_bytes() >> 20,
                              " MiB (--max_resident_mib; by default half of the memory this "
                              "machine has available): the destination stops"),
                 block.name, offset);
    }
    return false;
  }

  bool PlaceChannelPage(absl::string_view block_name, uint64_t offset,
                        absl::Span<const uint8_t> page, absl::Duration wait) {
    absl::Time deadline = absl::Now() + wait;
    while (!arena_ready_.load()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    GuestArena::Block* block = arena_->Find(block_name);
    if (block == nullptr || offset % GuestArena::kPage != 0 || offset >= block->mapped ||
        page.size() != GuestArena::kPage) {
      return false;
    }
    if (!ChargeResident(*block, offset, 0)) return false;
    // Multifd carries precopy pages only; postcopy goes through the main
    // channel (or preempt), so a plain copy is right here.
    std::memcpy(arena_->PagePointer(*block, offset), page.data(), GuestArena::kPage);
    arena_->SetState(*block, offset / GuestArena::kPage, PageState::kReceived);
    MutexLock lock(&mutex_);
    ++stats_.precopy_pages;
    return true;
  }

  // --- StreamObserver: called on the parsing thread (the listen path) ---

  void OnRamBlock(absl::string_view block, uint64_t length, uint64_t page_size) override {
    pending_blocks_.push_back({std::string(block), length, page_size});
  }

  void OnRamBlockListEnd() override {
    if (arena_ != nullptr) {
      // QEMU resizes blocks here; qmig keeps its first layout and reports
      // pages outside it through the parser's offset checks.
      pending_blocks_.clear();
      return;
    }
    absl::StatusOr<std::unique_ptr<GuestArena>> arena =
        GuestArena::Create(pending_blocks_, options_.parse.limits.max_guest_ram_bytes,
                           options_.max_resident_bytes != 0 ? options_.max_resident_bytes
                                                            : DefaultMaxResidentGuestBytes());
    pending_blocks_.clear();
    if (!arena.ok()) {
      Report(FindingCode::kEmuPlacementFailed, 0, std::string(arena.status().message()));
      return;
    }
    arena_ = std::move(*arena);
    arena_ready_.store(true);
  }

  void OnPackageBegin(uint64_t, uint32_t) override { ++package_depth_; }
  void OnPackageEnd(uint64_t) override { --package_depth_; }

  void OnSection(uint8_t type, uint32_t, absl::string_view, uint32_t, uint32_t, uint64_t) override {
    if (type != static_cast<uint8_t>(SectionType::kFull) || !loader_.running()) return;
    // Device state inside the package: loaded by the main thread while the
    // listen path goes on reading the stream.
    absl::Duration delay = options_.device_load_delay;
    loader_.Enqueue([delay] {
      if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    });
  }

  void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t> payload) override {
    switch (kind) {
      case CommandKind::kOpenReturnPath:
        return_path_open_ = true;
        break;
      case CommandKind::kPing: {
        if (payload.size() != 4 || !return_path_open_) break;
        uint32_t value = LoadBe32(payload.data());
        if (loader_.running()) {
          loader_.Enqueue([this, value] { SendPong(value); });
        } else {
          SendPong(value);
        }
        break;
      }
      case CommandKind::kPostcopyRamDiscard:
        ApplyDiscard(offset, payload);
        break;
      case CommandKind::kPostcopyListen:
        StartListening(offset);
        break;
      case CommandKind::kRecvBitmap:
        SendReceivedBitmap(payload);
        break;
      case CommandKind::kPostcopyResume:
        Resume();
        break;
      case CommandKind::kPostcopyRun:
        if (loader_.running()) {
          loader_.Enqueue([this] { StartGuest(); });
        } else {
          StartGuest();
        }
        break;
      default:
        break;
    }
  }

  void OnRamPage(absl::string_view block_name, uint64_t offset, RamRecordKind kind,
                 absl::Span<const uint8_t> body, uint64_t stream_offset) override {
    if (arena_ == nullptr) return;
    GuestArena::Block* block = arena_->Find(block_name);
    if (block == nullptr || offset >= block->mapped) return;  // the parser reported it
    if (stop_.load()) return;  // what the parser still has in hand is not kept
    if (!arena_->registered()) {
      WritePrecopyPage(*block, offset, kind, body, stream_offset);
      return;
    }
    PlacePostcopyPage(*block, block_name, offset, kind, body, stream_offset);
  }

  void PlacePreemptPage(absl::string_view block_name, uint64_t offset, RamRecordKind kind,
                        absl::Span<const uint8_t> body, uint64_t channel_offset) {
    // Pages are requested after LISTEN, so the arena exists and is
    // registered by the time any arrive here.
    if (!arena_ready_.load() || !arena_->registered()) {
      Report(FindingCode::kEmuPlacementFailed, channel_offset,
             "a preempt channel page before the destination listens");
      return;
    }
    GuestArena::Block* block = arena_->Find(block_name);
    if (block == nullptr || offset >= block->mapped) return;  // the channel parser reported it
    PlacePostcopyPage(*block, block_name, offset, kind, body, channel_offset);
  }

  void PlacePostcopyPage(GuestArena::Block& block_ref, absl::string_view block_name,
                         uint64_t offset, RamRecordKind kind, absl::Span<const uint8_t> body,
                         uint64_t stream_offset) {
    GuestArena::Block* block = &block_ref;
    uint64_t page = offset / GuestArena::kPage;
    // UFFDIO_ZEROPAGE maps the shared zero page: no memory of its own.
    if (kind != RamRecordKind::kZero && !ChargeResident(*block, offset, stream_offset)) return;
    absl::StatusOr<Placement> placed =
        kind == RamRecordKind::kZero
            ? arena_->PlaceZeroPage(*block, offset)
            : arena_->PlacePage(*block, offset, body.subspan(0, GuestArena::kPage));
    if (kind != RamRecordKind::kZero && kind != RamRecordKind::kPage) return;
    MutexLock lock(&mutex_);
    ++stats_.postcopy_pages;
    if (kind == RamRecordKind::kZero) ++stats_.zero_pages;
    if (!placed.ok()) {
      AddFinding(FindingCode::kEmuPlacementFailed, stream_offset,
                 std::string(placed.status().message()), block_name, offset);
      return;
    }
    if (*placed == Placement::kAlreadySame) {
      AddFinding(FindingCode::kEmuPageDoubled, stream_offset,
                 "page sent again after it was placed, with the same bytes", block_name, offset);
    } else if (*placed == Placement::kAlreadyDifferent) {
      AddFinding(FindingCode::kEmuPageConflict, stream_offset,
                 "page sent again after it was placed, with different bytes: the guest may "
                 "already have read the first version",
                 block_name, offset);
    }
    auto request = request_times_.find({block, page});
    if (request != request_times_.end()) {
      ++stats_.requests_served;
      stats_.fault_latency_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - request->second));
      request_times_.erase(request);
    }
  }

 private:
  using PageKey = std::pair<GuestArena::Block*, uint64_t>;

  void Report(FindingCode code, uint64_t offset, std::string message) {
    MutexLock lock(&mutex_);
    AddFinding(code, offset, std::move(message), {}, 0);
  }

  void AddFinding(FindingCode code, uint64_t offset, std::string message, absl::string_view block,
                  uint64_t block_offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    Finding finding;
    finding.code = code;
    finding.severity = DescribeFinding(code).severity;
    finding.offset = offset;
    if (!block.empty()) finding.path = absl::StrFormat("%s@0x%x", EscapeName(block), block_offset);
    finding.message = std::move(message);
    findings_.Add(std::move(finding));
  }

  void WritePrecopyPage(GuestArena::Block& block, uint64_t offset, RamRecordKind kind,
                        absl::Span<const uint8_t> body, uint64_t stream_offset) {
    uint64_t page = offset / GuestArena::kPage;
    uint8_t* target = arena_->PagePointer(block, offset);
    const uint8_t fill = body.empty() ? 0 : body[0];
    // Untouched anonymous memory is already zero: a zero page costs memory
    // only with a fill byte (what QEMU 7.2 does) or over earlier bytes.
    const bool writes =
        kind != RamRecordKind::kZero || fill != 0 || arena_->IsResident(block, page);
    if (writes && !ChargeResident(block, offset, stream_offset)) return;
    switch (kind) {
      case RamRecordKind::kZero:
        if (writes) std::memset(target, fill, GuestArena::kPage);
        break;
      case RamRecordKind::kPage:
        std::memcpy(target, body.data(), GuestArena::kPage);
        break;
      case RamRecordKind::kXbzrle:
        // Malformed deltas were reported by the parser; apply what decodes.
        DecodeXbzrle(body, absl::MakeSpan(target, GuestArena::kPage), GuestArena::kPage, nullptr)
            .IgnoreError();
        break;
      case RamRecordKind::kCompressed:
        InflatePage(body, absl::MakeSpan(target, GuestArena::kPage)).IgnoreError();
        break;
    }
    arena_->SetState(block, page, PageState::kReceived);
    MutexLock lock(&mutex_);
    ++stats_.precopy_pages;
    if (kind == RamRecordKind::kZero) ++stats_.zero_pages;
    (void)stream_offset;
  }

  // u8 version, u8 len, name, u8 0, then (be64 start, be64 length) pairs.
  void ApplyDiscard(uint64_t offset, absl::Span<const uint8_t> payload) {
    if (arena_ == nullptr || payload.size() < 3) return;
    size_t name_length = payload[1];
    if (payload.size() < 3 + name_length) return;
    std::string name(payload.begin() + 2, payload.begin() + 2 + name_length);
    GuestArena::Block* block = arena_->Find(name);
    if (block == nullptr) return;
    for (size_t at = 3 + name_length; at + 16 <= payload.size(); at += 16) {
      uint64_t start = LoadBe64(&payload[at]), length = LoadBe64(&payload[at + 8]);
      if (start % GuestArena::kPage != 0 || length % GuestArena::kPage != 0 ||
          start > block->mapped || length > block->mapped - start) {
        continue;  // the parser reported it
      }
      absl::Status status = arena_->Discard(*block, start, length);
      MutexLock lock(&mutex_);
      if (!status.ok()) {
        AddFinding(FindingCode::kEmuPlacementFailed, offset, std::string(status.message()), name,
                   start);
      } else {
        stats_.discarded_pages += length / GuestArena::kPage;
      }
    }
  }

  void StartListening(uint64_t offset) {
    if (arena_ == nullptr || arena_->registered()) return;
    absl::Status status = arena_->RegisterUserfault();
    if (!status.ok()) {
      Report(FindingCode::kEmuUffdUnavailable, offset, std::string(status.message()));
      return;
    }
    {
      MutexLock lock(&mutex_);
      stats_.postcopy = true;
      stats_.userfaultfd = arena_->uffd_how();
    }
    fault_thread_.Start(arena_->uffd(), [this](uint64_t address) { HandleFault(address); });
    if (package_depth_ > 0) loader_.Start();
  }

  // RECV_BITMAP(block): which pages of the block are here, as QEMU's
  // receivedmap: a little-endian array of 64-bit words, bit i for page i.
  void SendReceivedBitmap(absl::Span<const uint8_t> payload) {
    if (payload.empty() || payload.size() != 1u + payload[0] || arena_ == nullptr) return;
    std::string name(payload.begin() + 1, payload.end());
    GuestArena::Block* block = arena_->Find(name);
    if (block == nullptr) return;  // the parser reported it
    const uint64_t pages = block->pages();
    std::vector<uint8_t> bitmap(((pages + 63) / 64) * 8, 0);
    for (uint64_t page = 0; page < pages; ++page) {
      if (arena_->State(*block, page) == PageState::kReceived) {
        bitmap[page / 8] |= static_cast<uint8_t>(1u << (page % 8));
      }
    }
    return_path_.RecvBitmap(name, bitmap).IgnoreError();
  }

  // POSTCOPY_RESUME: acknowledge, then ask again for every page a guest
  // still waits for (the requests sent before the break were lost).
  void Resume() {
    return_path_.ResumeAck().IgnoreError();
    std::vector<PageKey> waiting;
    {
      MutexLock lock(&mutex_);
      for (const auto& [key, time] : request_times_) waiting.push_back(key);
    }
    for (const PageKey& key : waiting) {
      if (arena_->State(*key.first, key.second) == PageState::kReceived) continue;
      return_path_.RequestPages(key.first->name, key.second * GuestArena::kPage, GuestArena::kPage)
          .IgnoreError();
    }
  }

  void StartGuest() {
    if (arena_ == nullptr || !arena_->registered() || guest_ != nullptr) return;
    guest_ = std::make_unique<GuestThreads>(*arena_, options_.guest);
    guest_->Start();
  }

  void SendPong(uint32_t value) {
    absl::Status status = return_path_.Pong(value);
    MutexLock lock(&mutex_);
    if (status.ok()) ++stats_.pongs;
  }

  // On the fault thread: marks the page requested and asks the source for
  // it, or, once the stream has ended, releases the guest with a zero page.
  void HandleFault(uint64_t address) {
    uint64_t page = 0;
    GuestArena::Block* block = arena_->BlockOf(address, &page);
    if (block == nullptr) return;
    {
      MutexLock lock(&mutex_);
      ++stats_.faults;
    }
    if (stream_ended_.load()) {
      // No page can come any more: the guest would hang here. Record it and
      // let the thread go on with a zero page.
      if (arena_->State(*block, page) != PageState::kReceived) {
        MutexLock lock(&mutex_);
        never_delivered_.insert({block, page});
      }
      arena_->PlaceZeroPage(*block, page * GuestArena::kPage).IgnoreError();
      WakePage(*block, page);
      return;
    }
    bool already_here = arena_->MarkRequested(*block, page);
    if (already_here) {
      // Either placed between the fault and now, or a zero page received in
      // precopy that nobody ever wrote: it is logically there but not
      // mapped. ZEROPAGE maps it (EEXIST when it was a race); then wake.
      arena_->PlaceZeroPage(*block, page * GuestArena::kPage).IgnoreError();
      WakePage(*block, page);
      return;
    }
    {
      MutexLock lock(&mutex_);
      if (stream_ended_.load()) {
        // The stream ended after the check above: nothing will bring the
        // page, and Finish() has already collected the open requests.
        never_delivered_.insert({block, page});
      } else {
        if (!request_times_.emplace(PageKey{block, page}, absl::Now()).second) return;  // asked
        ++stats_.page_requests;
      }
    }
    if (stream_ended_.load()) {
      arena_->PlaceZeroPage(*block, page * GuestArena::kPage).IgnoreError();
      WakePage(*block, page);
      return;
    }
    return_path_.RequestPages(block->name, page * GuestArena::kPage, GuestArena::kPage)
        .IgnoreError();
  }

  void WakePage(GuestArena::Block& block, uint64_t page) {
    struct uffdio_range range = {reinterpret_cast<uint64_t>(block.base) + page * GuestArena::kPage,
                                 GuestArena::kPage};
    ioctl(arena_->uffd(), UFFDIO_WAKE, &range);
  }

  // The stream has ended: account for every page, then stop every thread.
  void Finish(const ParseResult& parse) {
    loader_.Stop();
    if (options_.on_main_stream_end) options_.on_main_stream_end();
    if (arena_ != nullptr) AccountPages(parse);  // before released guests fill pages in
    if (arena_ != nullptr && arena_->registered()) {
      // From now on a fault cannot be served by the stream: the fault thread
      // records it and releases the guest with a zero page.
      std::vector<PageKey> waiting;
      {
        // Under the lock, so that a request is either collected here or sees
        // the flag in HandleFault.
        MutexLock lock(&mutex_);
        stream_ended_.store(true);
        for (const auto& [key, time] : request_times_) waiting.push_back(key);
      }
      for (const PageKey& key : waiting) {
        if (arena_->State(*key.first, key.second) == PageState::kReceived) continue;
        {
          MutexLock lock(&mutex_);
          never_delivered_.insert(key);
        }
        arena_->PlaceZeroPage(*key.first, key.second * GuestArena::kPage).IgnoreError();
      }
      // Guests run their course: every touch now either finds its page or is
      // released by the fault thread. A guest still running after the bound
      // is released by unregistering.
      if (guest_ != nullptr && !guest_->WaitFor(kGuestDrainTimeout)) {
        Report(FindingCode::kEmuPageNeverDelivered, parse.summary.bytes,
               "guest threads did not finish in time after the stream ended; released");
        guest_->Stop();
        arena_->Unregister();
      }
      ReportNeverDelivered(parse.summary.bytes);
    }
    if (guest_ != nullptr) guest_->Stop();
    if (arena_ != nullptr) arena_->Unregister();  // releases any thread still waiting
    StopThreads();
    if (guest_ != nullptr) {
      MutexLock lock(&mutex_);
      stats_.guest_touches = guest_->touches();
    }
    {
      MutexLock lock(&mutex_);
      if (arena_ != nullptr) stats_.eagain_retries = arena_->EAGAINRetries();
      stats_.recoveries = stats_recoveries_;
    }
    if (return_path_open_) {
      bool failed = parse.findings.error_count() > 0;
      {
        MutexLock lock(&mutex_);
        failed |= findings_.error_count() > 0;
      }
      return_path_.Shut(failed ? 1 : 0).IgnoreError();
    }
  }

  void ReportNeverDelivered(uint64_t offset) {
    MutexLock lock(&mutex_);
    size_t listed = 0;
    for (const PageKey& key : never_delivered_) {
      if (listed++ == kMaxNeverDeliveredListed) {
        AddFinding(FindingCode::kEmuPageNeverDelivered, offset,
                   absl::StrCat(never_delivered_.size() - kMaxNeverDeliveredListed,
                                " more pages like these"),
                   {}, 0);
        break;
      }
      AddFinding(FindingCode::kEmuPageNeverDelivered, offset,
                 "a guest thread needed this page and the stream ended without it (the guest "
                 "would hang)",
                 key.first->name, key.second * GuestArena::kPage);
    }
  }

  void AccountPages(const ParseResult& parse) {
    if (!parse.summary.eof_seen) return;  // a cut stream: pages are missing anyway
    for (const auto& block : arena_->blocks()) {
      // Blocks left out by x-ignore-shared are never in the stream.
      bool ignored = false;
      for (const RamBlockSummary& summary : parse.summary.ram_blocks) {
        if (summary.name == block->name && summary.guest_address.has_value()) ignored = true;
      }
      uint64_t lost = 0, never = 0, first_lost = 0, first_never = 0;
      for (uint64_t page = 0; page < block->pages(); ++page) {
        PageState state = arena_->State(*block, page);
        if (state == PageState::kDiscarded) {
          if (lost++ == 0) first_lost = page;
        } else if (state == PageState::kAbsent) {
          if (never++ == 0) first_never = page;
        }
      }
      MutexLock lock(&mutex_);
      if (lost > 0) {
        AddFinding(FindingCode::kEmuPageLost, parse.summary.bytes,
                   absl::StrCat(lost, " discarded page", lost == 1 ? " was" : "s were",
                                " never sent again; the guest sees zeros there"),
                   block->name, first_lost * GuestArena::kPage);
      }
      if (never > 0 && !ignored) {
        AddFinding(FindingCode::kEmuPageNeverSent, parse.summary.bytes,
                   absl::StrCat(never, " of ", Counted(block->pages(), "page"),
                                " never arrived on this stream (multifd channels carry "
                                "pages elsewhere)"),
                   block->name, first_never * GuestArena::kPage);
      }
    }
  }

  void StopThreads() {
    loader_.Stop();
    if (guest_ != nullptr) guest_->Join();
    fault_thread_.Stop();
  }

  void Teardown() {
    if (guest_ != nullptr) guest_->Stop();
    if (arena_ != nullptr) arena_->Unregister();
    StopThreads();
  }

  DestinationOptions options_;
  ReturnPathWriter return_path_;
  uint64_t stats_recoveries_ = 0;  // parsing thread only
  std::vector<ArenaBlockSpec> pending_blocks_;
  std::unique_ptr<GuestArena> arena_;
  std::atomic<bool> arena_ready_{false};  // arena_ is set; channel threads may use it
  int package_depth_ = 0;
  bool return_path_open_ = false;

  FaultThread fault_thread_;
  LoaderThread loader_;  // started at LISTEN inside a package

  std::unique_ptr<GuestThreads> guest_;

  // The parsing, loading, fault, preempt and multifd threads all count and
  // report through these.
  Mutex mutex_;
  DestinationStats stats_ ABSL_GUARDED_BY(mutex_);
  FindingList findings_ ABSL_GUARDED_BY(mutex_){options_.parse.limits.max_findings};
  std::map<PageKey, absl::Time> request_times_ ABSL_GUARDED_BY(mutex_);
  std::set<PageKey> never_delivered_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stream_ended_{false};
  std::atomic<bool> stop_{false};  // the resident limit was reached
};

Destination::Destination(DestinationOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Destination::~Destination() = default;

DestinationReport Destination::Run(ByteSource& source) { return impl_->Run(source); }
GuestArena* Destination::arena() { return impl_->arena(); }
void Destination::PlacePreemptPage(absl::string_view block, uint64_t offset, RamRecordKind kind,
                                   absl::Span<const uint8_t> body, uint64_t channel_offset) {
  impl_->PlacePreemptPage(block, offset, kind, body, channel_offset);
}

bool Destination::PlaceChannelPage(absl::string_view block, uint64_t offset,
                                   absl::Span<const uint8_t> page, absl::Duration wait) {
  return impl_->PlaceChannelPage(block, offset, page, wait);
}

}  // namespace qmig
