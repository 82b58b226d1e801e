#include "tools/qmig/ram_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/numeric/bits.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/page_codec.h"
#include "parser/parse_context.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Bytes gathered before one write: large enough that the system call cost
// vanishes, small enough to stay in cache.
constexpr size_t kWriteRunBytes = size_t{1} << 20;

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

bool IsZero(absl::Span<const uint8_t> bytes) {
  for (uint8_t byte : bytes) {
    if (byte != 0) return false;
  }
  return true;
}

// FNV-1a: a stable hash of a name, for file names only.
uint64_t NameHash(absl::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

bool PageSet::Insert(uint64_t page) {
  uint64_t& word = words_[page / 64];
  const uint64_t bit = uint64_t{1} << (page % 64);
  if (word & bit) return true;
  word |= bit;
  ++size_;
  return false;
}

bool PageSet::Erase(uint64_t page) {
  auto it = words_.find(page / 64);
  const uint64_t bit = uint64_t{1} << (page % 64);
  if (it == words_.end() || (it->second & bit) == 0) return false;
  it->second &= ~bit;
  --size_;
  if (it->second == 0) words_.erase(it);
  return true;
}

bool PageSet::Contains(uint64_t page) const {
  auto it = words_.find(page / 64);
  return it != words_.end() && (it->second & (uint64_t{1} << (page % 64))) != 0;
}

std::vector<uint64_t> PageSet::Sorted() const {
  std::vector<uint64_t> keys;
  keys.reserve(words_.size());
  for (const auto& [key, bits] : words_) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  std::vector<uint64_t> pages;
  pages.reserve(size_);
  for (uint64_t key : keys) {
    for (uint64_t bits = words_.at(key); bits != 0; bits &= bits - 1) {
      pages.push_back(key * 64 + static_cast<uint64_t>(absl::countr_zero(bits)));
    }
  }
  return pages;
}

std::string BlockFileName(absl::string_view block) {
  std::string out;
  for (size_t i = 0; i < block.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(block[i]);
    const bool plain = absl::ascii_isalnum(c) || c == '@' || c == '_' || c == '+' || c == '-' ||
                       (c == '.' && i > 0);
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  if (out.empty()) out = "%00";
  if (out.size() > kMaxBlockFileName) {
    // The hash keeps names with a common prefix apart; the '~' never comes
    // from the escaping above, so a short name cannot look like this one.
    out.resize(kMaxBlockFileName - 17);
    absl::StrAppendFormat(&out, "~%016x", NameHash(block));
  }
  return out;
}

RamFileWriter::RamFileWriter(int dir_fd, std::string dir_path)
    : dir_fd_(dir_fd), dir_path_(std::move(dir_path)), page_(kTargetPageSize) {
  pending_.reserve(kWriteRunBytes);
  inflight_.reserve(kWriteRunBytes);
  writer_ = std::thread([this] { WriterLoop(); });
}

RamFileWriter::~RamFileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  for (BlockFile& file : blocks_) {
    if (file.fd >= 0) close(file.fd);
  }
}

absl::StatusOr<RamFileWriter::BlockFile*> RamFileWriter::Open(absl::string_view block) {
  auto it = index_.find(block);
  if (it != index_.end()) return &blocks_[it->second];
  if (blocks_.size() >= kMaxRamBlocks) return nullptr;
  BlockFile file;
  file.name = std::string(block);
  file.file_name = absl::StrCat(BlockFileName(block), ".ram");
  file.path = absl::StrCat(dir_path_, "/", file.file_name);
  // Never through a link planted in the directory.
  file.fd = openat(dir_fd_, file.file_name.c_str(),
                   O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (file.fd < 0) return Errno("cannot create", file.path);
  index_.emplace(file.name, blocks_.size());
  blocks_.push_back(std::move(file));
  return &blocks_.back();
}

absl::Status RamFileWriter::DeclareBlock(absl::string_view block, uint64_t length) {
  QMIG_ASSIGN_OR_RETURN(BlockFile * file, Open(block));
  if (file == nullptr) return absl::OkStatus();
  file->declared = true;
  return Grow(*file, length);
}

absl::Status RamFileWriter::Grow(BlockFile& file, uint64_t length) {
  if (file.length >= length) return absl::OkStatus();
  file.length = length;
  if (file.file_limit.has_value()) return absl::OkStatus();
  if (ftruncate(file.fd, static_cast<off_t>(length)) == 0) return absl::OkStatus();
  if (errno != EFBIG && errno != EINVAL) return Errno("cannot size", file.path);
  // Longer than the file system lets a file be (ext4: 16 TiB). Find how
  // long it may be, in pages: pages past that are counted, not written.
  uint64_t fits = 0, too_long = length / kTargetPageSize;
  while (too_long - fits > 1) {
    const uint64_t middle = fits + (too_long - fits) / 2;
    if (ftruncate(file.fd, static_cast<off_t>(middle * kTargetPageSize)) == 0) {
      fits = middle;
    } else {
      too_long = middle;
    }
  }
  file.file_limit = fits * kTargetPageSize;
  if (ftruncate(file.fd, static_cast<off_t>(*file.file_limit)) != 0) {
    return Errno("cannot size", file.path);
  }
  return absl::OkStatus();
}

absl::Status RamFileWriter::WriteAt(int fd, const std::string& path, uint64_t offset,
                                    absl::Span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("cannot write", path);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void RamFileWriter::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return has_inflight_ || stopping_; });
    if (!has_inflight_) return;
    lock.unlock();
    absl::Status status = WriteAt(inflight_fd_, inflight_path_, inflight_offset_, inflight_);
    lock.lock();
    if (!status.ok() && write_error_.ok()) write_error_ = status;
    has_inflight_ = false;
    cv_.notify_all();
  }
}

absl::Status RamFileWriter::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !has_inflight_; });
  return write_error_;
}

absl::Status RamFileWriter::Flush() {
  if (pending_.empty()) return absl::OkStatus();
  QMIG_RETURN_IF_ERROR(Drain());
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(pending_, inflight_);
    // Copied, not referenced: blocks_ may grow while the write runs.
    inflight_fd_ = blocks_[pending_block_].fd;
    inflight_path_ = blocks_[pending_block_].path;
    inflight_offset_ = pending_offset_;
    has_inflight_ = true;
  }
  cv_.notify_all();
  pending_.clear();
  return absl::OkStatus();
}

absl::Status RamFileWriter::AddPage(absl::string_view block, uint64_t offset, RamRecordKind kind,
                                    absl::Span<const uint8_t> bytes) {
  QMIG_ASSIGN_OR_RETURN(BlockFile * file, Open(block));
  if (file == nullptr) {
    ++pages_in_other_blocks_;
    return absl::OkStatus();
  }
  const uint64_t page = offset / kTargetPageSize;
  if (offset % kTargetPageSize != 0) return absl::InvalidArgumentError("unaligned page");
  if (offset >= file->length) {
    // Outside a block MEM_SIZE declared, or beyond any block's size: the
    // parser reports it, and the file does not take it.
    if (file->declared || offset >= kMaxRamBlockLength) {
      ++file->pages_skipped;
      return absl::OkStatus();
    }
    // A block no MEM_SIZE declared (a recovery connection) grows.
    QMIG_RETURN_IF_ERROR(Grow(*file, offset + kTargetPageSize));
  }
  if (file->file_limit.has_value() && offset >= *file->file_limit) {
    ++file->pages_beyond_file_limit;
    return absl::OkStatus();
  }
  ++file->pages_written;
  const size_t index = static_cast<size_t>(file - blocks_.data());

  absl::Span<const uint8_t> data;
  switch (kind) {
    case RamRecordKind::kPage:
      data = bytes;
      break;
    case RamRecordKind::kZero:
      if (bytes.empty() || bytes[0] == 0) {
        if (!file->data_pages.Contains(page)) return absl::OkStatus();  // already a hole
        QMIG_RETURN_IF_ERROR(Flush());
        QMIG_RETURN_IF_ERROR(Drain());
        file->data_pages.Erase(page);
        if (fallocate(file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(offset), kTargetPageSize) == 0) {
          return absl::OkStatus();
        }
        std::fill(page_.begin(), page_.end(), 0);  // no hole punching here: write zeros
        return WriteAt(file->fd, file->path, offset, page_);
      }
      std::fill(page_.begin(), page_.end(), bytes[0]);
      data = page_;
      break;
    case RamRecordKind::kCompressed:
      if (!InflatePage(bytes, absl::MakeSpan(page_)).ok()) {
        // The parser reports it, with its offset; the file keeps the page.
        ++file->pages_skipped;
        return absl::OkStatus();
      }
      data = page_;
      break;
    case RamRecordKind::kXbzrle: {
      // The delta applies to what the destination holds for the page.
      QMIG_RETURN_IF_ERROR(Flush());
      QMIG_RETURN_IF_ERROR(Drain());
      ssize_t n = pread(file->fd, page_.data(), page_.size(), static_cast<off_t>(offset));
      if (n < 0) return Errno("cannot read", file->path);
      // Past the end of an unsized file the page reads as zeros.
      std::fill(page_.begin() + n, page_.end(), 0);
      size_t error_at = 0;
      if (!DecodeXbzrle(bytes, absl::MakeSpan(page_), kTargetPageSize, &error_at).ok()) {
        // The parser reports it, with its offset; the file keeps the page.
        ++file->pages_skipped;
        return absl::OkStatus();
      }
      data = page_;
      break;
    }
  }
  if (data.size() != kTargetPageSize) return absl::InvalidArgumentError("page of the wrong size");
  if (!file->data_pages.Contains(page) && IsZero(data)) return absl::OkStatus();  // keep the hole
  file->data_pages.Insert(page);
  const bool continues =
      !pending_.empty() && pending_block_ == index && pending_offset_ + pending_.size() == offset;
  if (!continues || pending_.size() + data.size() > kWriteRunBytes) {
    QMIG_RETURN_IF_ERROR(Flush());
    pending_block_ = index;
    pending_offset_ = offset;
  }
  pending_.insert(pending_.end(), data.begin(), data.end());
  return absl::OkStatus();
}

absl::Status RamFileWriter::Finish() {
  absl::Status status = Flush();
  absl::Status drained = Drain();
  if (status.ok()) status = drained;
  for (BlockFile& file : blocks_) {
    if (file.fd >= 0 && close(file.fd) != 0 && status.ok())
      status = Errno("cannot close", file.path);
    file.fd = -1;
  }
  return status;
}

}  // namespace qmig
