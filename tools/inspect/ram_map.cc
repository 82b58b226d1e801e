#include "tools/inspect/ram_map.h"

#include "parser/wire/limits.h"

namespace qmig {

absl::string_view PageKindName(PageKind kind) {
  switch (kind) {
    case PageKind::kAbsent:
      return "absent";
    case PageKind::kZero:
      return "zero";
    case PageKind::kNormal:
      return "normal";
    case PageKind::kXbzrle:
      return "xbzrle";
    case PageKind::kCompressed:
      return "compressed";
  }
  return "absent";
}

PageKind PageKindOf(RamRecordKind kind) {
  switch (kind) {
    case RamRecordKind::kZero:
      return PageKind::kZero;
    case RamRecordKind::kPage:
      return PageKind::kNormal;
    case RamRecordKind::kXbzrle:
      return PageKind::kXbzrle;
    case RamRecordKind::kCompressed:
      return PageKind::kCompressed;
  }
  return PageKind::kNormal;
}

void RangeList::Add(uint64_t start, uint64_t length, PageKind kind) {
  if (!ranges_.empty()) {
    PageRange& last = ranges_.back();
    if (last.kind == kind && last.end == start) {
      last.end = start + length;
      return;
    }
  }
  if (ranges_.size() >= max_ranges_ || (shared_budget_ != nullptr && *shared_budget_ == 0)) {
    ++dropped_;
    return;
  }
  if (shared_budget_ != nullptr) --*shared_budget_;
  ranges_.push_back({start, start + length, kind});
}

nlohmann::ordered_json RangeList::ToJson() const {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const PageRange& range : ranges_) {
    out.push_back({range.start, range.end, PageKindName(range.kind)});
  }
  return out;
}

RamMap::Block* RamMap::Find(absl::string_view name) {
  auto it = index_.find(name);
  if (it != index_.end()) return &blocks_[it->second];
  if (blocks_.size() >= kMaxRamBlocks) return nullptr;
  index_.emplace(std::string(name), blocks_.size());
  blocks_.emplace_back();
  blocks_.back().name = std::string(name);
  return &blocks_.back();
}

void RamMap::DeclareBlock(absl::string_view name, uint64_t length, uint64_t page_size) {
  Block* found = Find(name);
  if (found == nullptr) return;
  Block& block = *found;
  if (block.length != 0) return;  // a later MEM_SIZE list repeats the first
  block.length = length;
  block.page_size = page_size == 0 ? kTargetPageSize : page_size;
  uint64_t pages = length / kTargetPageSize;
  if (length <= budget_) {
    budget_ -= length;
    block.pages.assign(pages, PageKind::kAbsent);
  }
}

void RamMap::AddPage(absl::string_view name, uint64_t offset, RamRecordKind kind) {
  Block* found = Find(name);
  if (found == nullptr) {
    ++pages_in_other_blocks_;
    return;
  }
  Block& block = *found;
  PageKind page_kind = PageKindOf(kind);
  ++block.records[static_cast<size_t>(page_kind)];
  uint64_t page = offset / kTargetPageSize;
  if (page < block.pages.size()) block.pages[page] = page_kind;
}

RangeList RamMap::Ranges(const Block& block, size_t max_ranges) const {
  RangeList list(max_ranges);
  for (uint64_t page = 0; page < block.pages.size(); ++page) {
    if (block.pages[page] == PageKind::kAbsent) continue;
    list.Add(page * kTargetPageSize, kTargetPageSize, block.pages[page]);
  }
  return list;
}

}  // namespace qmig
