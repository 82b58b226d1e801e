// The RAM section ("ram", version 4): MEM_SIZE block list, page records,
// XBZRLE and compressed pages, EOS. Pages are validated and handed to the
// observer as views; nothing is kept.
#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/page_codec.h"
#include "parser/stream_parser_internal.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/endian.h"
#include "parser/wire/escape.h"

namespace qmig {
namespace internal {
namespace {

// The last element of a page record's finding path: block@offset.
std::string PageLeaf(absl::string_view block, uint64_t address) {
  return absl::StrFormat("%s@0x%x", EscapeName(block), address);
}

constexpr uint32_t kPageRecordFlags =
    ram_flag::kZero | ram_flag::kPage | ram_flag::kXbzrle | ram_flag::kCompressPage;

bool LooksLikeHugePageSize(uint64_t value) {
  return value > kTargetPageSize && value <= kMaxHostPageSize && absl::has_single_bit(value);
}

// Whether `bytes` start as what follows a MEM_SIZE entry: another entry (a
// non-empty printable block name) or, after the last one, a RAM record word
// with exactly one known record flag.
bool FollowsMemSizeEntry(absl::Span<const uint8_t> bytes, bool last_entry, const Profile& profile) {
  if (last_entry) {
    if (bytes.size() < 8) return bytes.empty();  // the end of a short input
    uint32_t flags = static_cast<uint32_t>(LoadBe64(bytes.data()) & kRamFlagBitsMask);
    uint32_t primary = flags & ~ram_flag::kContinue;
    return (flags & ~profile.ram_flags_known) == 0 && absl::has_single_bit(primary);
  }
  if (bytes.empty() || bytes[0] == 0 || bytes.size() < 1u + bytes[0]) return false;
  for (size_t i = 1; i <= bytes[0]; ++i) {
    if (bytes[i] < 0x20 || bytes[i] > 0x7e) return false;
  }
  return true;
}

std::string FlagsText(uint32_t flags) { return absl::StrFormat("0x%03x", flags); }

}  // namespace

RamBlockState* StreamParser::FindBlock(absl::string_view name) {
  auto it = ram_blocks_.find(name);
  return it == ram_blocks_.end() ? nullptr : &it->second;
}

RamBlockState* StreamParser::AddBlockOfUnknownLength(const std::string& name) {
  if (ram_blocks_.size() >= kMaxRamBlocks) return nullptr;
  RamBlockSummary summary;
  summary.name = name;
  summary.page_size = kTargetPageSize;
  summary_.ram_blocks.push_back(std::move(summary));
  last_block_cached_ = false;
  RamBlockState& state = ram_blocks_[name];
  state = RamBlockState{summary_.ram_blocks.size() - 1, UINT64_MAX, kTargetPageSize};
  return &state;
}

absl::Status StreamParser::ParseRamPayload(Reader& reader) {
  const bool postcopy = InPostcopyRamMode();
  const bool preempt_channel = options_.channel == RamChannel::kPostcopyPreempt;
  summary_.ram_eos_seen = false;
  while (true) {
    if (preempt_channel) {
      // The channel may end at any record: from 8.0 QEMU sends no EOS on it.
      QMIG_ASSIGN_OR_RETURN(bool at_end, reader.AtEnd());
      if (at_end) return absl::OkStatus();
    }
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint64_t word, reader.Be64());
    uint32_t flags = static_cast<uint32_t>(word & kRamFlagBitsMask);
    uint64_t address = word & ~uint64_t{kRamFlagBitsMask};
    uint32_t primary = flags & ~ram_flag::kContinue;
    profile_.ObserveRamFlags(primary);
    ++summary_.ram_records;
    const Profile& profile = profile_.active();

    if ((flags & ~profile.ram_flags_known) != 0 || !absl::has_single_bit(primary)) {
      return context_.Fail(
          FindingCode::kRamBadFlags, offset,
          absl::StrCat("RAM flags ", FlagsText(flags), " are not one known record type (profile ",
                       profile.name, ")"));
    }
    if ((primary & kPageRecordFlags) == 0) {
      if (flags & ram_flag::kContinue) {
        context_.Report(
            FindingCode::kRamBadFlags, offset,
            absl::StrCat("CONTINUE on a record without a page (flags ", FlagsText(flags), ")"), {},
            /*qemu_accepts=*/true);  // QEMU ignores it there
      }
      if (primary != ram_flag::kMemSize && address != 0) {
        context_.Report(FindingCode::kRamNonzeroOffset, offset,
                        absl::StrFormat("offset bits 0x%x set on a record without a page", address),
                        {}, /*qemu_accepts=*/true);  // QEMU masks them off
      }
      if (postcopy && primary != ram_flag::kEos) {
        return context_.Fail(FindingCode::kRamPostcopyRecord, offset,
                             absl::StrCat("RAM record ", FlagsText(flags),
                                          " is not accepted once postcopy listens"));
      }
      switch (primary) {
        case ram_flag::kEos:
          summary_.ram_eos_seen = true;
          return absl::OkStatus();
        case ram_flag::kMemSize:
          QMIG_RETURN_IF_ERROR(ParseMemSize(reader, address, offset));
          continue;
        case ram_flag::kMultifdFlush:
          continue;
        case ram_flag::kHook:
          // 7.2 fails the load on it; 8.1 made it a no-op without RDMA.
          context_.Report(FindingCode::kRamBadFlags, offset,
                          "RDMA HOOK record in a non-RDMA stream: QEMU 8.1 and later ignore it, "
                          "7.2 fails the load",
                          {}, QemuReleases::From(QemuRelease::k8_2));
          continue;
        default:
          return context_.Fail(FindingCode::kRamBadFlags, offset,
                               absl::StrCat("RAM flags ", FlagsText(flags), " are obsolete"));
      }
    }

    // A page record: find its block. With mapped-ram, pages are only in the
    // block's region of the file.
    if (mapped_ram_) {
      return context_.Fail(FindingCode::kRamBadFlags, offset,
                           absl::StrCat("RAM flags ", FlagsText(flags),
                                        " with mapped-ram, where pages sit at fixed offsets "
                                        "(QEMU: unexpected RAM flags)"));
    }
    if (postcopy && primary != ram_flag::kZero && primary != ram_flag::kPage) {
      return context_.Fail(
          FindingCode::kRamPostcopyRecord, offset,
          absl::StrCat("RAM record ", FlagsText(flags), " is not accepted once postcopy listens"));
    }
    RamBlockState* block;
    if (flags & ram_flag::kContinue) {
      if (!last_ram_block_.has_value()) {
        return context_.Fail(FindingCode::kRamBadContinue, offset,
                             "CONTINUE before any page named its block");
      }
      block = last_block_cached_ ? last_block_state_ : FindBlock(*last_ram_block_);
    } else {
      QMIG_ASSIGN_OR_RETURN(std::string name, reader.CountedString());
      last_ram_block_ = std::move(name);
      block = FindBlock(*last_ram_block_);
    }
    const std::string& block_name = *last_ram_block_;
    // The finding path, built only when a finding needs it.
    auto leaf = [&] { return PageLeaf(block_name, address); };
    if (block == nullptr && summary_.headerless && !ram_blocks_known_) {
      // A recovery connection never repeats MEM_SIZE: count the block's
      // pages, with its length unknown.
      block = AddBlockOfUnknownLength(block_name);
    }
    last_block_state_ = block;
    last_block_cached_ = true;
    if (postcopy && advise_without_ram_ && !advise_with_ram_ && !unadvised_page_reported_) {
      // Blocks are set up for postcopy (postcopy_length, in init_range) only
      // by a 16-byte ADVISE. QEMU 7.2's listen thread refuses this page
      // ("Illegal RAM offset"), or, with postcopy-ram on the destination,
      // already refused the 0-byte ADVISE.
      unadvised_page_reported_ = true;
      context_.Report(FindingCode::kRamPostcopyRecord, offset,
                      "postcopy RAM page after a 0-byte POSTCOPY_ADVISE: RAM postcopy was not "
                      "advised (only dirty bitmaps), so QEMU 7.2 has no block set up to place it "
                      "in and fails here",
                      leaf());
    }
    if (block == nullptr) {
      context_.Report(
          FindingCode::kRamUnknownBlock, offset,
          absl::StrCat("page for block '", EscapeName(block_name), "' that MEM_SIZE did not list"),
          leaf());
    } else if (address >= block->length) {
      context_.Report(FindingCode::kRamOffset, offset,
                      absl::StrFormat("page offset 0x%x is outside the block's 0x%x bytes", address,
                                      block->length),
                      leaf());
    }
    RamBlockSummary* stats =
        block != nullptr ? &summary_.ram_blocks[block->summary_index] : nullptr;
    RamRecordKind kind;
    absl::Span<const uint8_t> body;
    switch (primary) {
      case ram_flag::kZero: {
        kind = RamRecordKind::kZero;
        QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(1));
        if (stats != nullptr) ++stats->zero_pages;
        if (body[0] != 0) {
          if (stats != nullptr) ++stats->nonzero_fill_pages;
          // 8.2 started refusing it ("Found a zero page with value N").
          context_.Report(FindingCode::kRamZeroFill, offset,
                          absl::StrFormat("zero page with fill byte 0x%02x: QEMU 7.2 fills the "
                                          "page with it, 8.2 and later refuse it",
                                          body[0]),
                          leaf(), QemuReleases::Only(QemuRelease::k7_2));
        }
        break;
      }
      case ram_flag::kPage: {
        kind = RamRecordKind::kPage;
        QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(kTargetPageSize));
        if (stats != nullptr) ++stats->normal_pages;
        break;
      }
      case ram_flag::kXbzrle: {
        kind = RamRecordKind::kXbzrle;
        uint64_t header_offset = reader.offset();
        QMIG_ASSIGN_OR_RETURN(uint8_t encoding, reader.U8());
        QMIG_ASSIGN_OR_RETURN(uint16_t encoded_length, reader.Be16());
        if (encoding != kXbzrleEncodingFlag) {
          return context_.Fail(
              FindingCode::kRamXbzrle, header_offset,
              absl::StrFormat("XBZRLE encoding byte 0x%02x (expected 0x01)", encoding), leaf());
        }
        if (encoded_length > kMaxXbzrleEncoded) {
          return context_.Fail(FindingCode::kRamXbzrle, header_offset,
                               absl::StrCat("XBZRLE length ", encoded_length, " exceeds a page"),
                               leaf());
        }
        QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(encoded_length));
        ValidateXbzrle(body, header_offset + 3, leaf());
        if (stats != nullptr) ++stats->xbzrle_pages;
        break;
      }
      default: {  // kCompressPage
        kind = RamRecordKind::kCompressed;
        uint64_t header_offset = reader.offset();
        QMIG_ASSIGN_OR_RETURN(uint32_t compressed_length, reader.Be32());
        if (compressed_length > kMaxCompressedPage) {
          return context_.Fail(
              FindingCode::kRamCompress, header_offset,
              absl::StrCat("compressed length ", compressed_length, " exceeds compressBound(page)"),
              leaf());
        }
        QMIG_ASSIGN_OR_RETURN(body, reader.Bytes(compressed_length));
        ValidateCompressed(body, header_offset + 4, leaf());
        if (stats != nullptr) ++stats->compressed_pages;
        break;
      }
    }
    if (postcopy && block != nullptr && block->page_size == kTargetPageSize &&
        address < block->length) {
      // Huge-page blocks are placed per host page and left out.
      NotePostcopyPlacement(*block, block_name, address, offset);
    }
    if (options_.observer != nullptr) {
      options_.observer->OnRamPage(block_name, address, kind, body, offset);
    }
  }
}

void StreamParser::NotePostcopyPlacement(RamBlockState& block, absl::string_view block_name,
                                         uint64_t address, uint64_t offset) {
  // QEMU places a postcopy page with UFFDIO_COPY (or ZEROPAGE), which fails
  // with EEXIST on a page already there; 7.2 then stops loading and postcopy
  // pauses.
  const uint64_t page = address / kTargetPageSize;
  auto word = block.postcopy_placed.find(page / 64);
  if (word == block.postcopy_placed.end()) {
    const uint64_t most = options_.limits.max_postcopy_tracked_words;
    if (postcopy_tracked_words_ == most) {
      ++postcopy_tracked_words_;  // report once
      context_.Report(FindingCode::kRamPostcopyUntracked, offset,
                      absl::StrCat("postcopy pages in more than ", most,
                                   " runs of 64: pages of further runs are not checked for "
                                   "being placed twice"),
                      PageLeaf(block_name, address));
    }
    if (postcopy_tracked_words_ >= most) return;
    ++postcopy_tracked_words_;
    word = block.postcopy_placed.emplace(page / 64, 0).first;
  }
  const uint64_t bit = uint64_t{1} << (page % 64);
  if (word->second & bit) {
    context_.Report(FindingCode::kRamPostcopyPageTwice, offset,
                    "page placed a second time once postcopy listens: the destination's "
                    "UFFDIO_COPY finds it present (EEXIST), QEMU 7.2 stops loading and postcopy "
                    "pauses",
                    PageLeaf(block_name, address));
  }
  word->second |= bit;
}

absl::Status StreamParser::ParseMemSize(Reader& reader, uint64_t total, uint64_t offset) {
  PathScope scope(context_, "MEM_SIZE");
  if (InPostcopyRamMode()) {
    return context_.Fail(FindingCode::kRamPostcopyRecord, offset, "MEM_SIZE once postcopy listens");
  }
  uint64_t sum = 0;
  uint32_t count = 0;
  absl::flat_hash_map<std::string, RamBlockState> blocks;
  std::vector<RamBlockSummary> summaries;
  while (sum < total) {
    if (++count > kMaxRamBlocks) {
      return context_.Fail(FindingCode::kRamMemSize, offset,
                           absl::StrCat("more than ", kMaxRamBlocks, " RAM blocks"));
    }
    uint64_t entry_offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(std::string name, reader.CountedString());
    QMIG_ASSIGN_OR_RETURN(uint64_t length, reader.Be64());
    std::string leaf = absl::StrCat("'", EscapeName(name), "'");
    if (name.empty() || name.find('\0') != std::string::npos) {
      return context_.Fail(FindingCode::kRamMemSize, entry_offset,
                           "RAM block name is empty or holds a NUL", leaf);
    }
    if (length > kMaxRamBlockLength || length % kTargetPageSize != 0) {
      return context_.Fail(FindingCode::kRamMemSize, entry_offset,
                           absl::StrFormat("block length 0x%x is not page-aligned or is over the "
                                           "limit",
                                           length),
                           leaf);
    }
    RamBlockSummary summary;
    summary.name = name;
    summary.length = length;
    summary.page_size = kTargetPageSize;
    // Optional be64 fields. Which ones QEMU sends depends on the source's
    // capabilities and block page sizes, not on anything in the stream;
    // both are 64-bit values far below 2^56, so they start with a 0x00 byte
    // where a block name could not (its length byte is never 0).
    if (advise_with_ram_) {
      // QEMU sends the block's page size only when it differs from the host
      // page size, so a present field is a power of two above 4 KiB. With
      // x-ignore-shared a be64 address follows too, and an address can look
      // like a page size: then the field counts as present only if what
      // comes after both fields is what must follow this entry.
      const bool last_entry = sum + length >= total;
      const size_t after = ignore_shared_ ? 16 : 8;
      QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> next,
                            reader.PeekUpTo(after + 1 + kMaxCountedString));
      if (next.size() >= 8 && LooksLikeHugePageSize(LoadBe64(next.data())) &&
          (!ignore_shared_ ||
           FollowsMemSizeEntry(next.subspan(std::min(after, next.size())), last_entry,
                               profile_.active()) ||
           !FollowsMemSizeEntry(next.subspan(8), last_entry, profile_.active()))) {
        summary.page_size = LoadBe64(next.data());
        reader.Skip(8).IgnoreError();
      }
    }
    if (ignore_shared_) {
      QMIG_ASSIGN_OR_RETURN(uint64_t address, reader.Be64());
      summary.guest_address = address;
    }
    // Observers learn of each block before any of its pages (mapped-ram
    // pages come with their entry).
    if (options_.observer != nullptr) {
      options_.observer->OnRamBlock(summary.name, summary.length, summary.page_size);
    }
    if (mapped_ram_) {
      PathScope block_scope(context_, leaf);
      QMIG_RETURN_IF_ERROR(ParseMappedRamBlock(reader, summary));
    }
    std::optional<uint64_t> new_sum = CheckedAdd(sum, length);
    if (!new_sum.has_value() || *new_sum > total) {
      return context_.Fail(FindingCode::kRamMemSize, entry_offset,
                           absl::StrFormat("block lengths pass the announced total 0x%x", total),
                           leaf);
    }
    sum = *new_sum;
    if (blocks.contains(name)) {
      return context_.Fail(FindingCode::kRamMemSize, entry_offset, "RAM block listed twice", leaf);
    }
    blocks[name] = RamBlockState{summaries.size(), length, summary.page_size};
    summaries.push_back(std::move(summary));
  }
  if (ram_blocks_known_) {
    context_.ReportAs(Severity::kNote, FindingCode::kRamMemSize, offset,
                      "a second MEM_SIZE replaces the block list");
  }
  ram_blocks_known_ = true;
  ram_blocks_ = std::move(blocks);
  last_block_cached_ = false;
  summary_.ram_blocks = std::move(summaries);
  if (options_.observer != nullptr) options_.observer->OnRamBlockListEnd();
  return absl::OkStatus();
}

absl::Status StreamParser::ParseMappedRamBlock(Reader& reader, RamBlockSummary& block) {
  const uint64_t header_offset = reader.offset();
  QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
  QMIG_ASSIGN_OR_RETURN(uint64_t page_size, reader.Be64());
  QMIG_ASSIGN_OR_RETURN(uint64_t bitmap_offset, reader.Be64());
  QMIG_ASSIGN_OR_RETURN(uint64_t pages_offset, reader.Be64());
  const uint64_t header_end = reader.offset();
  if (version > kMappedRamVersion) {
    return context_.Fail(FindingCode::kRamMappedRam, header_offset,
                         absl::StrCat("mapped-ram header version ", version,
                                      "; QEMU reads version 1 and refuses later ones"));
  }
  if (version == 0) {
    context_.Report(FindingCode::kRamMappedRam, header_offset,
                    "mapped-ram header version 0, which no QEMU writes", {},
                    /*qemu_accepts=*/true);
  }
  if (page_size != kTargetPageSize) {
    // QEMU divides the block's length by it: 0 crashes the destination.
    return context_.Fail(FindingCode::kRamMappedRam, header_offset + 4,
                         absl::StrCat("mapped-ram page size ", page_size, " (expected ",
                                      kTargetPageSize, "); QEMU divides the block by it"),
                         {}, /*qemu_accepts=*/page_size != 0);
  }
  // The source leaves both offsets 0 for a block it shares (x-ignore-shared).
  if (ignore_shared_ && bitmap_offset == 0 && pages_offset == 0) return absl::OkStatus();
  const uint64_t pages = block.length / kTargetPageSize;
  const uint64_t bitmap_bytes = (pages + 63) / 64 * 8;
  if (bitmap_offset < header_end) {
    return context_.Fail(FindingCode::kRamMappedRam, header_offset + 12,
                         absl::StrFormat("bitmap at 0x%x, before the header's end at 0x%x: QEMU "
                                         "writes it right after the header, and qmig reads the "
                                         "file front to back",
                                         bitmap_offset, header_end),
                         {}, /*qemu_accepts=*/true);
  }
  std::optional<uint64_t> bitmap_end = CheckedAdd(bitmap_offset, bitmap_bytes);
  std::optional<uint64_t> end = CheckedAdd(pages_offset, block.length);
  if (pages_offset % kTargetPageSize != 0 || !bitmap_end.has_value() || !end.has_value() ||
      pages_offset < *bitmap_end) {
    return context_.Fail(
        FindingCode::kRamMappedRam, header_offset + 20,
        absl::StrFormat("pages at 0x%x: not page-aligned, or overlapping the bitmap of 0x%x bytes "
                        "at 0x%x (QEMU refuses a misaligned region)",
                        pages_offset, bitmap_bytes, bitmap_offset));
  }
  if (bitmap_offset != header_end) {
    context_.Report(FindingCode::kRamMappedRam, header_offset + 12,
                    absl::StrFormat("bitmap at 0x%x, not right after the header at 0x%x, where "
                                    "QEMU writes it",
                                    bitmap_offset, header_end),
                    {}, /*qemu_accepts=*/true);
  }
  // The bitmap: host-endian (x86-64: little-endian) 64-bit words, bit i for
  // page i. Kept, within a limit, to find the pages that were written.
  QMIG_RETURN_IF_ERROR(reader.SkipTo(bitmap_offset));
  if (bitmap_bytes > kMaxMappedRamBitmapBytes) {
    context_.ReportAs(Severity::kNote, FindingCode::kRamMappedRam, bitmap_offset,
                      absl::StrCat("a bitmap of ", bitmap_bytes, " bytes, over the limit of ",
                                   kMaxMappedRamBitmapBytes, ": the block's pages are not read"));
  } else {
    std::vector<uint64_t> words;
    words.reserve(bitmap_bytes / 8);
    for (uint64_t done = 0; done < bitmap_bytes;) {
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(bitmap_bytes - done, 1 << 16));
      QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, reader.Bytes(chunk));
      for (size_t i = 0; i < chunk; i += 8) words.push_back(LoadLe64(&bytes[i]));
      done += chunk;
    }
    if (pages % 64 != 0 && !words.empty() && (words.back() >> (pages % 64)) != 0) {
      context_.Report(FindingCode::kRamMappedRam, bitmap_offset + bitmap_bytes - 8,
                      "bitmap bits set past the block's last page", {}, /*qemu_accepts=*/true);
    }
    const std::string& name = block.name;
    for (uint64_t w = 0; w < words.size(); ++w) {
      for (uint64_t bits = words[w]; bits != 0; bits &= bits - 1) {
        const uint64_t page = w * 64 + static_cast<uint64_t>(absl::countr_zero(bits));
        if (page >= pages) break;
        const uint64_t at = pages_offset + page * kTargetPageSize;
        QMIG_RETURN_IF_ERROR(reader.SkipTo(at));
        QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, reader.Bytes(kTargetPageSize));
        ++block.normal_pages;
        ++summary_.ram_records;
        if (options_.observer != nullptr) {
          options_.observer->OnRamPage(name, page * kTargetPageSize, RamRecordKind::kPage, bytes,
                                       at);
        }
      }
    }
  }
  // The next entry follows the block's page region.
  QMIG_RETURN_IF_ERROR(reader.SkipTo(*end));
  return absl::OkStatus();
}

void StreamParser::ValidateXbzrle(absl::Span<const uint8_t> encoded, uint64_t offset,
                                  absl::string_view leaf) {
  size_t error_at = 0;
  absl::Status status = DecodeXbzrle(encoded, {}, kTargetPageSize, &error_at);
  if (!status.ok()) {
    context_.Report(FindingCode::kRamXbzrle, offset + error_at,
                    absl::StrCat("XBZRLE data does not decode: ", status.message()), leaf);
  }
}

void StreamParser::ValidateCompressed(absl::Span<const uint8_t> compressed, uint64_t offset,
                                      absl::string_view leaf) {
  uint8_t page[kTargetPageSize];
  absl::Status status = InflatePage(compressed, absl::MakeSpan(page));
  if (!status.ok()) {
    // A short page is what QEMU 7.2 accepts: the rest of the page stays.
    context_.Report(FindingCode::kRamCompress, offset, std::string(status.message()), leaf,
                    /*qemu_accepts=*/absl::IsOutOfRange(status));
  }
}

}  // namespace internal
}  // namespace qmig
