#include "emulator/guest.h"

#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> LoadTrace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open trace ", path));
  std::vector<std::pair<std::string, uint64_t>> trace;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string block, offset_text;
    if (!(fields >> block >> offset_text)) {
      return absl::InvalidArgumentError(
          absl::StrCat("trace line '", line, "' is not BLOCK OFFSET"));
    }
    uint64_t offset = 0;
    bool ok = offset_text.rfind("0x", 0) == 0
                  ? absl::SimpleHexAtoi(absl::string_view(offset_text).substr(2), &offset)
                  : absl::SimpleAtoi(offset_text, &offset);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat("bad offset in '", line, "'"));
    trace.emplace_back(block, offset);
    if (trace.size() > kMaxTraceEntries) {
      return absl::InvalidArgumentError(absl::StrCat("trace over ", kMaxTraceEntries, " entries"));
    }
  }
  return trace;
}

}  // namespace

absl::StatusOr<GuestPattern> ParseGuestPattern(absl::string_view spec) {
  GuestPattern pattern;
  std::vector<std::string> parts = absl::StrSplit(spec, ',');
  const std::string kind = parts.empty() ? std::string("none") : parts[0];
  if (kind == "none" || kind.empty()) {
    pattern.kind = GuestPattern::Kind::kNone;
  } else if (kind == "sequential") {
    pattern.kind = GuestPattern::Kind::kSequential;
  } else if (kind == "random") {
    pattern.kind = GuestPattern::Kind::kRandom;
  } else if (kind == "hot") {
    pattern.kind = GuestPattern::Kind::kHotSet;
  } else if (absl::StartsWith(kind, "trace:")) {
    pattern.kind = GuestPattern::Kind::kTrace;
    absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> trace = LoadTrace(kind.substr(6));
    if (!trace.ok()) return trace.status();
    pattern.trace = std::move(*trace);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown guest pattern '", kind, "' (none, sequential, random, hot, trace:FILE)"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    uint64_t value = 0;
    if (kv.first == "block") {
      pattern.block = kv.second;
      continue;
    }
    if (!absl::SimpleAtoi(kv.second, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("bad guest option '", parts[i], "'"));
    }
    if (kv.first == "threads") {
      if (value == 0 || value > kMaxGuestThreads) {
        return absl::InvalidArgumentError(absl::StrCat("threads must be 1..", kMaxGuestThreads));
      }
      pattern.threads = static_cast<uint32_t>(value);
    } else if (kv.first == "touches") {
      pattern.touches = value;
    } else if (kv.first == "pages") {
      pattern.hot_pages = value == 0 ? 1 : value;
    } else if (kv.first == "seed") {
      pattern.seed = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown guest option '", kv.first, "'"));
    }
  }
  return pattern;
}

GuestThreads::GuestThreads(GuestArena& arena, GuestPattern pattern)
    : arena_(arena), pattern_(std::move(pattern)) {}

GuestThreads::~GuestThreads() {
  Stop();
  Join();
}

void GuestThreads::Start() {
  if (pattern_.kind == GuestPattern::Kind::kNone) return;
  running_.store(pattern_.threads);
  for (uint32_t i = 0; i < pattern_.threads; ++i) {
    threads_.emplace_back([this, i] {
      Body(i);
      running_.fetch_sub(1);
    });
  }
}

bool GuestThreads::WaitFor(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (running_.load() > 0) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

void GuestThreads::Join() {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void GuestThreads::Body(uint32_t index) {
  GuestArena::Block* target = nullptr;
  for (const auto& block : arena_.blocks()) {
    if (!pattern_.block.empty() ? block->name == pattern_.block
                                : target == nullptr || block->mapped > target->mapped) {
      target = block.get();
    }
  }
  if (target == nullptr && pattern_.kind != GuestPattern::Kind::kTrace) return;
  std::mt19937_64 random(pattern_.seed * 7919 + index);
  uint64_t pages = target != nullptr ? target->pages() : 0;
  uint8_t digest = 0;
  for (uint64_t n = 0; n < pattern_.touches && !stop_.load(std::memory_order_relaxed); ++n) {
    GuestArena::Block* block = target;
    uint64_t page = 0;
    switch (pattern_.kind) {
      case GuestPattern::Kind::kSequential:
        page = (index * pattern_.touches + n) % pages;
        break;
      case GuestPattern::Kind::kRandom:
        page = random() % pages;
        break;
      case GuestPattern::Kind::kHotSet:
        page = random() % std::min(pattern_.hot_pages, pages);
        break;
      case GuestPattern::Kind::kTrace: {
        if (pattern_.trace.empty()) return;
        const auto& [name, offset] =
            pattern_.trace[(index + n * pattern_.threads) % pattern_.trace.size()];
        block = arena_.Find(name);
        if (block == nullptr || offset >= block->mapped) continue;
        page = offset / GuestArena::kPage;
        break;
      }
      case GuestPattern::Kind::kNone:
        return;
    }
    // A plain user-mode read: faults when the page is missing.
    digest ^= *static_cast<volatile uint8_t*>(block->base + page * GuestArena::kPage);
    touches_.fetch_add(1, std::memory_order_relaxed);
  }
  digest_.fetch_xor(digest);
}

}  // namespace qmig
