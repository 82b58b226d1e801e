// What a stream did to guest RAM, page by page and bounded: per block, how
// many records of each kind arrived and which kind each page saw last, as
// coalesced ranges. Page contents are never kept.
#ifndef QMIG_TOOLS_INSPECT_RAM_MAP_H_
#define QMIG_TOOLS_INSPECT_RAM_MAP_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"

namespace qmig {

// Kind of the last record a page saw; kAbsent: none yet.
enum class PageKind : uint8_t { kAbsent, kZero, kNormal, kXbzrle, kCompressed };
inline constexpr size_t kPageKindCount = 5;
absl::string_view PageKindName(PageKind kind);
PageKind PageKindOf(RamRecordKind kind);

struct PageRange {
  uint64_t start = 0;  // byte offset in the block
  uint64_t end = 0;    // exclusive
  PageKind kind = PageKind::kAbsent;
};

// Coalesces page records into ranges, in arrival order, keeping at most
// `max_ranges`, and no more than `shared_budget` allows when several lists
// share one (each range kept takes one from it); later ranges are only
// counted.
class RangeList {
 public:
  explicit RangeList(size_t max_ranges, size_t* shared_budget = nullptr)
      : max_ranges_(max_ranges), shared_budget_(shared_budget) {}
  void Add(uint64_t start, uint64_t length, PageKind kind);
  const std::vector<PageRange>& ranges() const { return ranges_; }
  uint64_t dropped() const { return dropped_; }
  nlohmann::ordered_json ToJson() const;  // [[start, end, "kind"], ...]

 private:
  size_t max_ranges_;
  size_t* shared_budget_;
  std::vector<PageRange> ranges_;
  uint64_t dropped_ = 0;
};

class RamMap {
 public:
  struct Block {
    std::string name;
    uint64_t length = 0;  // 0: never declared by MEM_SIZE
    uint64_t page_size = 0;
    std::array<uint64_t, kPageKindCount> records{};  // by PageKind
    std::vector<PageKind> pages;                     // empty when the block is not mapped
  };

  // Blocks are mapped page by page while their lengths add up to at most
  // `max_mapped_bytes`; larger ones are only counted. At most kMaxRamBlocks
  // blocks are kept; pages of further blocks are counted in
  // pages_in_other_blocks().
  explicit RamMap(uint64_t max_mapped_bytes) : budget_(max_mapped_bytes) {}

  void DeclareBlock(absl::string_view name, uint64_t length, uint64_t page_size);
  void AddPage(absl::string_view name, uint64_t offset, RamRecordKind kind);

  const std::vector<Block>& blocks() const { return blocks_; }
  uint64_t pages_in_other_blocks() const { return pages_in_other_blocks_; }
  // The block's pages by last kind, coalesced; absent pages are left out.
  RangeList Ranges(const Block& block, size_t max_ranges) const;

 private:
  // The block, added when new; nullptr past kMaxRamBlocks.
  Block* Find(absl::string_view name);

  uint64_t budget_;
  uint64_t pages_in_other_blocks_ = 0;
  std::vector<Block> blocks_;
  absl::flat_hash_map<std::string, size_t> index_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_RAM_MAP_H_
