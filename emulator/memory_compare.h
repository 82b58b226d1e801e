// The destination's memory against the source's, once a stream has ended.
#ifndef QMIG_EMULATOR_MEMORY_COMPARE_H_
#define QMIG_EMULATOR_MEMORY_COMPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "emulator/arena.h"
#include "parser/wire/finding.h"
#include "parser/wire/limits.h"

namespace qmig {

struct SourceBlock {
  std::string name;
  absl::Span<const uint8_t> bytes;
};

// Compares the arena with a source image once the stream has ended at
// `stream_end`, the offset the findings carry; reports each differing page
// (at most `max_reports` findings, in block and page order) into `findings`.
// Returns the count of differing pages, listed or not.
uint64_t CompareWithSource(GuestArena& arena, const std::vector<SourceBlock>& source,
                           uint64_t stream_end, FindingList& findings,
                           uint32_t max_reports = kMaxSourceMismatchFindings);

}  // namespace qmig

#endif  // QMIG_EMULATOR_MEMORY_COMPARE_H_
