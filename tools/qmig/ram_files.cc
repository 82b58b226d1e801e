#include "tools/qmig/ram_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/page_codec.h"
#include "parser/parse_context.h"
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

}  // namespace

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
  return out.empty() ? "%00" : out;
}

RamFileWriter::RamFileWriter(std::string dir, uint64_t max_total_bytes)
    : dir_(std::move(dir)), budget_(max_total_bytes), page_(kTargetPageSize) {
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
  BlockFile file;
  file.name = std::string(block);
  file.path = absl::StrCat(dir_, "/", BlockFileName(block), ".ram");
  file.fd = open(file.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file.fd < 0) return Errno("cannot create", file.path);
  index_.emplace(file.name, blocks_.size());
  blocks_.push_back(std::move(file));
  return &blocks_.back();
}

absl::Status RamFileWriter::DeclareBlock(absl::string_view block, uint64_t length) {
  QMIG_ASSIGN_OR_RETURN(BlockFile * file, Open(block));
  if (file->length >= length) return absl::OkStatus();
  if (length - file->length > budget_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("block '", absl::CHexEscape(block), "' would take guest RAM past the limit"));
  }
  budget_ -= length - file->length;
  file->length = length;
  file->nonzero.resize(length / kTargetPageSize);
  if (ftruncate(file->fd, static_cast<off_t>(length)) != 0) return Errno("cannot size", file->path);
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
  const uint64_t page = offset / kTargetPageSize;
  if (offset % kTargetPageSize != 0) return absl::InvalidArgumentError("unaligned page");
  if (page >= file->nonzero.size()) {
    // A block no MEM_SIZE declared (a recovery connection): grow within the limit.
    QMIG_RETURN_IF_ERROR(DeclareBlock(block, offset + kTargetPageSize));
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
        if (!file->nonzero[page]) return absl::OkStatus();  // already a hole
        QMIG_RETURN_IF_ERROR(Flush());
        QMIG_RETURN_IF_ERROR(Drain());
        file->nonzero[page] = false;
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
      QMIG_RETURN_IF_ERROR(InflatePage(bytes, absl::MakeSpan(page_)));
      data = page_;
      break;
    case RamRecordKind::kXbzrle: {
      // The delta applies to what the destination holds for the page.
      QMIG_RETURN_IF_ERROR(Flush());
      QMIG_RETURN_IF_ERROR(Drain());
      ssize_t n = pread(file->fd, page_.data(), page_.size(), static_cast<off_t>(offset));
      if (n != static_cast<ssize_t>(page_.size())) return Errno("cannot read", file->path);
      size_t error_at = 0;
      QMIG_RETURN_IF_ERROR(DecodeXbzrle(bytes, absl::MakeSpan(page_), kTargetPageSize, &error_at));
      data = page_;
      break;
    }
  }
  if (data.size() != kTargetPageSize) return absl::InvalidArgumentError("page of the wrong size");
  if (!file->nonzero[page] && IsZero(data)) return absl::OkStatus();  // keep the hole
  file->nonzero[page] = true;
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
