#include "tools/qmig/progress.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace qmig {
namespace {

constexpr absl::Duration kRedrawInterval = absl::Milliseconds(200);
constexpr uint32_t kCallsPerClockCheck = 1024;

}  // namespace

ProgressMeter::ProgressMeter(std::string label, std::optional<uint64_t> total, bool quiet)
    : label_(std::move(label)), total_(total), enabled_(!quiet && isatty(STDERR_FILENO) == 1) {}

void ProgressMeter::Update(uint64_t offset) {
  if (!enabled_ || ++calls_ % kCallsPerClockCheck != 0) return;
  absl::Time now = absl::Now();
  if (now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  const double mib = static_cast<double>(offset) / (1 << 20);
  if (total_.has_value() && *total_ > 0) {
    std::fprintf(stderr, "\r%s: %.0f / %.0f MiB (%.0f%%)\033[K", label_.c_str(), mib,
                 static_cast<double>(*total_) / (1 << 20),
                 100.0 * static_cast<double>(offset) / static_cast<double>(*total_));
  } else {
    std::fprintf(stderr, "\r%s: %.0f MiB\033[K", label_.c_str(), mib);
  }
  drawn_ = true;
}

void ProgressMeter::Done() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

std::optional<uint64_t> RegularFileSize(const std::string& path) {
  struct stat st;
  if (path == "-" || stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace qmig
