#include "parser/wire/byte_source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Mapped files are released in whole pages; mmap returns page-aligned memory.
constexpr uint64_t kReleaseAlignment = 4096;

absl::Status ReadError(int error) {
  if (error == EAGAIN || error == EWOULDBLOCK) {
    // A socket with a receive timeout: the peer went quiet.
    return absl::DeadlineExceededError(
        "no data arrived within the receive timeout: the sender stopped sending");
  }
  return absl::ErrnoToStatus(error, "read");
}

}  // namespace

void MemorySource::ReleaseBehind(size_t step) {
  release_step_ = step;
  ClearCurrent();  // a view must come through View() now and then
}

absl::StatusOr<absl::Span<const uint8_t>> MemorySource::View(uint64_t offset, size_t) {
  if (offset < base_) {
    return absl::InternalError(absl::StrCat("view at ", offset, " before source start ", base_));
  }
  uint64_t relative = offset - base_;
  if (release_step_ != 0 && relative >= released_ + 2 * release_step_) {
    uint64_t upto = (relative - release_step_) & ~uint64_t{kReleaseAlignment - 1};
    ::madvise(const_cast<uint8_t*>(data_.data()) + released_, upto - released_, MADV_DONTNEED);
    released_ = upto;
  }
  if (relative >= data_.size()) return absl::Span<const uint8_t>();
  absl::Span<const uint8_t> view = data_.subspan(relative);
  // Releasing works per view: publish no more than a step for reads to use.
  SetCurrent(offset, release_step_ != 0 ? view.subspan(0, release_step_) : view);
  return view;
}

absl::StatusOr<bool> MemorySource::BufferToEnd(uint64_t, uint64_t) {
  return true;  // Everything is already in memory, at no extra cost.
}

absl::StatusOr<bool> MemorySource::BufferUntil(
    uint64_t offset, uint64_t, const std::function<bool(absl::Span<const uint8_t>)>& complete,
    absl::Duration) {
  absl::StatusOr<absl::Span<const uint8_t>> tail = View(offset, 1);
  if (!tail.ok()) return tail.status();
  return complete(*tail) || true;  // everything is here already
}

absl::StatusOr<bool> MemorySource::WaitForData(uint64_t offset, absl::Duration) {
  return offset < base_ + data_.size();
}

FdSource::FdSource(int fd, std::optional<uint64_t> known_size, size_t window_bytes)
    : fd_(fd), known_size_(known_size), window_bytes_(std::max<size_t>(window_bytes, 1)) {}

absl::Status FdSource::Fill(uint64_t offset, size_t want, size_t capacity) {
  ClearCurrent();  // the window may move
  if (offset < window_start_) {
    return absl::InternalError(
        absl::StrCat("read at ", offset, " behind the retained window at ", window_start_));
  }
  uint64_t window_end = window_start_ + window_len_;
  if (offset + want <= window_end || eof_) return absl::OkStatus();
  // Drop what lies before `offset`, then read more.
  if (offset > window_start_) {
    size_t drop = static_cast<size_t>(std::min<uint64_t>(offset - window_start_, window_len_));
    if (window_len_ > drop) std::memmove(buffer_.data(), buffer_.data() + drop, window_len_ - drop);
    window_len_ -= drop;
    window_start_ += drop;
  }
  // Bytes between the window end and `offset` (a forward skip) are read and
  // discarded in place.
  size_t needed_capacity = std::max(capacity, want);
  if (buffer_.size() < needed_capacity) buffer_.resize(needed_capacity);
  peak_ = std::max(peak_, buffer_.size());
  while (!eof_) {
    if (window_start_ < offset && window_len_ == 0) {
      // Skipping forward: read into the buffer and throw the bytes away.
      ssize_t n = ::read(fd_, buffer_.data(),
                         static_cast<size_t>(std::min<uint64_t>(offset - window_start_, buffer_.size())));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ReadError(errno);
      }
      if (n == 0) {
        eof_ = true;
        break;
      }
      window_start_ += static_cast<uint64_t>(n);
      continue;
    }
    if (window_start_ + window_len_ >= offset + want) break;
    if (window_len_ == buffer_.size()) break;
    ssize_t n = ::read(fd_, buffer_.data() + window_len_, buffer_.size() - window_len_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ReadError(errno);
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    window_len_ += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint8_t>> FdSource::View(uint64_t offset, size_t want) {
  absl::Status status = Fill(offset, want, std::max(window_bytes_, buffer_.size()));
  if (!status.ok()) return status;
  uint64_t window_end = window_start_ + window_len_;
  if (offset >= window_end || offset < window_start_) return absl::Span<const uint8_t>();
  absl::Span<const uint8_t> view(buffer_.data() + (offset - window_start_),
                                 static_cast<size_t>(window_end - offset));
  SetCurrent(offset, view);
  return view;
}

absl::StatusOr<bool> FdSource::BufferToEnd(uint64_t offset, uint64_t max_bytes) {
  if (known_size_.has_value() && *known_size_ >= offset && *known_size_ - offset > max_bytes) {
    return false;
  }
  // Grow the window one step at a time so that memory follows the input.
  size_t capacity = std::max(window_bytes_, buffer_.size());
  while (true) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(capacity, max_bytes + 1));
    absl::Status status = Fill(offset, want, capacity);
    if (!status.ok()) return status;
    uint64_t have = window_start_ + window_len_ > offset ? window_start_ + window_len_ - offset : 0;
    if (eof_) return have <= max_bytes;
    if (have > max_bytes) return false;
    if (capacity >= max_bytes + 1) return false;
    capacity = static_cast<size_t>(std::min<uint64_t>(capacity * 2, max_bytes + 1));
  }
}

absl::StatusOr<bool> FdSource::Readable(absl::Duration timeout) {
  struct pollfd pfd = {fd_, POLLIN, 0};
  int ready = ::poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll");
  return ready > 0;
}

absl::StatusOr<bool> FdSource::WaitForData(uint64_t offset, absl::Duration timeout) {
  if (offset < window_start_ + window_len_ && offset >= window_start_) return true;
  if (eof_) return false;
  absl::StatusOr<bool> readable = Readable(timeout);
  if (!readable.ok() || !*readable) return readable;
  absl::StatusOr<absl::Span<const uint8_t>> view = View(offset, 1);
  if (!view.ok()) return view.status();
  return !view->empty();
}

absl::StatusOr<bool> FdSource::BufferUntil(
    uint64_t offset, uint64_t max_bytes,
    const std::function<bool(absl::Span<const uint8_t>)>& complete, absl::Duration idle) {
  auto tail = [&]() -> absl::Span<const uint8_t> {
    uint64_t end = window_start_ + window_len_;
    if (offset < window_start_ || offset >= end) return {};
    return absl::Span<const uint8_t>(buffer_.data() + (offset - window_start_),
                                     static_cast<size_t>(end - offset));
  };
  // Keep everything from `offset` on while reading more, one read at a time.
  absl::Status status = Fill(offset, 1, std::max(window_bytes_, buffer_.size()));
  if (!status.ok()) return status;
  while (true) {
    uint64_t have = tail().size();
    if (have > max_bytes) return false;  // more than may be held, whatever it holds
    if (complete(tail())) return true;
    if (eof_ || have == max_bytes) return false;
    // Wait without reading: a read here must keep the bytes from `offset`.
    absl::StatusOr<bool> more = Readable(idle);
    if (!more.ok()) return more.status();
    if (!*more) return complete(tail());
    size_t capacity = std::max(buffer_.size(), static_cast<size_t>(std::min<uint64_t>(
                                                   2 * (have + 1), max_bytes + 1)));
    status = Fill(offset, static_cast<size_t>(have + 1), capacity);
    if (!status.ok()) return status;
  }
}

absl::StatusOr<std::unique_ptr<OpenedInput>> OpenedInput::Open(const std::string& path) {
  std::unique_ptr<OpenedInput> input(new OpenedInput());
  input->path_ = path;
  if (path == "-") {
    input->fd_ = STDIN_FILENO;
  } else {
    input->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (input->fd_ < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
    input->owns_fd_ = true;
  }
  struct stat st;
  if (::fstat(input->fd_, &st) != 0) return absl::ErrnoToStatus(errno, "fstat");
  if (S_ISREG(st.st_mode)) {
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0) {
      input->empty_file_ = true;
      input->source_ = std::make_unique<MemorySource>(absl::Span<const uint8_t>());
      return input;
    }
    void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, input->fd_, 0);
    if (mapped != MAP_FAILED) {
      ::madvise(mapped, size, MADV_SEQUENTIAL);
      input->mapped_ = mapped;
      input->mapped_len_ = size;
      auto source = std::make_unique<MemorySource>(
          absl::Span<const uint8_t>(static_cast<const uint8_t*>(mapped), size));
      source->ReleaseBehind(kMappedReleaseStep);
      input->source_ = std::move(source);
      return input;
    }
    input->source_ = std::make_unique<FdSource>(input->fd_, size);
    return input;
  }
  if (S_ISFIFO(st.st_mode)) {
    // A pipe buffer the size of the window: fewer, larger reads and fewer
    // wake-ups of the writer. Best effort (bounded by fs.pipe-max-size).
    ::fcntl(input->fd_, F_SETPIPE_SZ, static_cast<int>(kStreamWindowBytes));
  }
  input->source_ = std::make_unique<FdSource>(input->fd_);
  return input;
}

OpenedInput::~OpenedInput() {
  source_.reset();
  if (mapped_ != nullptr) ::munmap(mapped_, mapped_len_);
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

}  // namespace qmig
