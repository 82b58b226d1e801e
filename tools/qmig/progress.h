// Progress of a long run on stderr, for people at a terminal: shown only when
// stderr is a terminal and --quiet is off, redrawn at most a few times a
// second, and erased when the run ends so it never mixes with the output.
#ifndef QMIG_TOOLS_QMIG_PROGRESS_H_
#define QMIG_TOOLS_QMIG_PROGRESS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace qmig {

class ProgressMeter {
 public:
  // `total`: the input's size when known (a file), for a percentage.
  ProgressMeter(std::string label, std::optional<uint64_t> total, bool quiet);
  ~ProgressMeter() { Done(); }

  // Cheap enough to call per RAM page: looks at the clock every 1024 calls.
  void Update(uint64_t offset);
  void Done();

  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  std::optional<uint64_t> total_;
  bool enabled_;
  bool drawn_ = false;
  uint32_t calls_ = 0;
  absl::Time last_draw_ = absl::InfinitePast();
};

// The size of a regular file at `path`, or nullopt (a pipe, stdin, "-").
std::optional<uint64_t> RegularFileSize(const std::string& path);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_PROGRESS_H_
