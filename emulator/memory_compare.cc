#include "emulator/memory_compare.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "parser/wire/escape.h"

namespace qmig {

uint64_t CompareWithSource(GuestArena& arena, const std::vector<SourceBlock>& source,
                           uint64_t stream_end, FindingList& findings, uint32_t max_reports) {
  uint64_t differing = 0;
  uint32_t reported = 0;
  for (const SourceBlock& expected : source) {
    GuestArena::Block* block = arena.Find(expected.name);
    if (block == nullptr) {
      Finding finding;
      finding.code = FindingCode::kEmuMemoryMismatch;
      finding.offset = stream_end;
      finding.path = EscapeName(expected.name);
      finding.message = "the source has this block; the destination never got it";
      findings.Add(std::move(finding));
      ++differing;
      continue;
    }
    uint64_t pages = std::min<uint64_t>(
        block->pages(), (expected.bytes.size() + GuestArena::kPage - 1) / GuestArena::kPage);
    for (uint64_t page = 0; page < pages; ++page) {
      uint64_t offset = page * GuestArena::kPage;
      size_t length = std::min<size_t>(GuestArena::kPage, expected.bytes.size() - offset);
      if (std::memcmp(block->base + offset, expected.bytes.data() + offset, length) == 0) continue;
      ++differing;
      if (reported++ < max_reports) {
        Finding finding;
        finding.code = FindingCode::kEmuMemoryMismatch;
        finding.offset = stream_end;
        finding.path = absl::StrFormat("%s@0x%x", EscapeName(block->name), offset);
        finding.message = "destination page differs from the source's";
        findings.Add(std::move(finding));
      }
    }
  }
  return differing;
}

}  // namespace qmig
