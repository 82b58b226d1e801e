#include "parser/wire/byte_source.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Mapped files are released in whole pages; mmap returns page-aligned memory.
constexpr uint64_t kReleaseAlignment = 4096;
// The kernel copies into a user buffer much faster when source and
// destination share their offset modulo a cache line (measured: 5x on the
// project's machines), so the window keeps each byte at its input offset
// modulo this in memory.
constexpr size_t kCopyAlignment = 64;
// Buffers start on a page, and pread(2) of a file starts on a page of it.
constexpr size_t kBufferAlignment = 4096;

absl::Status ReadError(int error) {
  if (error == EAGAIN || error == EWOULDBLOCK) {
    // A socket with a receive timeout: the peer went quiet.
    return absl::DeadlineExceededError(
        "no data arrived within the receive timeout: the sender stopped sending");
  }
  return absl::ErrnoToStatus(error, "read");
}

// An unlinked temporary file in `directory`, or -1 with *why set.
int OpenTemporary(const std::string& directory, std::string* why) {
  int fd = ::open(directory.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  // File systems without O_TMPFILE: a named file, unlinked at once.
  std::string path = absl::StrCat(directory, "/qmig-spill-XXXXXX");
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) {
    ::unlink(path.c_str());
    return fd;
  }
  *why = absl::StrCat("no temporary file could be made in ", directory, " (", std::strerror(errno),
                      ")");
  return -1;
}

absl::Status WriteAll(int fd, const uint8_t* bytes, size_t n) {
  while (n > 0) {
    ssize_t written = ::write(fd, bytes, n);
    if (written < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "write to the temporary file");
    }
    bytes += written;
    n -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

}  // namespace

namespace internal {
void AlignedFree::operator()(uint8_t* bytes) const {
  ::operator delete (bytes, std::align_val_t{kBufferAlignment});
}
}  // namespace internal

// --- MemorySource ---------------------------------------------------------------------------

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
    uint64_t offset, uint64_t, const std::function<bool(absl::Span<const uint8_t>)>&,
    absl::Duration) {
  // The whole rest of the input is in memory: true without asking `complete`.
  absl::StatusOr<absl::Span<const uint8_t>> tail = View(offset, 1);
  if (!tail.ok()) return tail.status();
  return true;
}

absl::StatusOr<bool> MemorySource::WaitForData(uint64_t offset, absl::Duration) {
  return offset < base_ + data_.size();
}

absl::StatusOr<InputEnd> MemorySource::MakeEndKnown(uint64_t, const KeepLimits&) {
  return InputEnd{base_ + data_.size(), ""};
}

absl::StatusOr<absl::Span<const uint8_t>> MemorySource::Tail(uint64_t from, std::vector<uint8_t>*) {
  if (from < base_) {
    return absl::InternalError(absl::StrCat("tail at ", from, " before source start ", base_));
  }
  if (from - base_ >= data_.size()) return absl::Span<const uint8_t>();
  return data_.subspan(from - base_);
}

// --- FdSource -------------------------------------------------------------------------------

FdSource::FdSource(int fd, std::optional<uint64_t> known_size, size_t window_bytes)
    : fd_(fd),
      positional_(false),
      known_size_(known_size),
      window_bytes_(std::max<size_t>(window_bytes, 1)) {}

FdSource::FdSource(int fd, uint64_t size, size_t window_bytes, bool positional)
    : fd_(fd),
      positional_(positional),
      known_size_(size),
      window_bytes_(std::max<size_t>(window_bytes, 1)) {}

std::unique_ptr<FdSource> FdSource::ForFile(int fd, uint64_t size, size_t window_bytes) {
  return absl::WrapUnique(new FdSource(fd, size, window_bytes, /*positional=*/true));
}

FdSource::~FdSource() {
  if (spill_fd_ >= 0) ::close(spill_fd_);
}

bool FdSource::Holds(uint64_t offset, size_t want) const {
  return offset >= window_start_ && offset - window_start_ <= window_len_ &&
         want <= window_len_ - (offset - window_start_);
}

void FdSource::Reserve(size_t bytes) {
  if (bytes <= capacity_) return;
  bytes = (bytes + kCopyAlignment - 1) & ~(kCopyAlignment - 1);
  std::unique_ptr<uint8_t, internal::AlignedFree> grown(
      static_cast<uint8_t*>(::operator new (bytes, std::align_val_t{kBufferAlignment})));
  if (window_len_ > 0) std::memcpy(grown.get() + head_, window(), window_len_);
  buffer_ = std::move(grown);
  capacity_ = bytes;
  peak_ = std::max(peak_, capacity_);
}

absl::Status FdSource::Fill(uint64_t offset, size_t want, size_t capacity) {
  if (!broken_.ok()) return broken_;
  ClearCurrent();  // the window may move
  return positional_ ? FillPositional(offset, want, capacity) : FillStream(offset, want, capacity);
}

absl::Status FdSource::FillStream(uint64_t offset, size_t want, size_t capacity) {
  if (offset < window_start_) {
    return absl::InternalError(
        absl::StrCat("read at ", offset, " behind the retained window at ", window_start_));
  }
  if (Holds(offset, want) || eof_) return absl::OkStatus();
  // Drop what lies before `offset`, keeping each byte at its offset modulo
  // kCopyAlignment.
  if (offset > window_start_) {
    size_t drop = static_cast<size_t>(std::min<uint64_t>(offset - window_start_, window_len_));
    size_t keep = window_len_ - drop;
    size_t head = static_cast<size_t>((window_start_ + drop) % kCopyAlignment);
    if (keep > 0) std::memmove(buffer_.get() + head, window() + drop, keep);
    window_start_ += drop;
    window_len_ = keep;
    head_ = head;
  }
  // Room for the view wherever its first byte lands.
  Reserve(std::max(capacity, want + kCopyAlignment - 1));
  while (!eof_) {
    if (window_start_ < offset && window_len_ == 0) {
      // Skipping forward: read into the buffer and throw the bytes away.
      head_ = static_cast<size_t>(window_start_ % kCopyAlignment);
      ssize_t n = ::read(
          fd_, window(),
          static_cast<size_t>(std::min<uint64_t>(offset - window_start_, capacity_ - head_)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ReadError(errno);
      }
      if (n == 0) {
        eof_ = true;
        break;
      }
      window_start_ += static_cast<uint64_t>(n);
      head_ = static_cast<size_t>(window_start_ % kCopyAlignment);
      continue;
    }
    if (window_end() >= offset + want) break;
    size_t room = capacity_ - head_ - window_len_;
    if (room == 0) break;
    ssize_t n = ::read(fd_, window() + window_len_, room);
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

absl::Status FdSource::FillPositional(uint64_t offset, size_t want, size_t capacity) {
  if (Holds(offset, want)) return absl::OkStatus();
  if (offset < origin_) {
    return absl::InternalError(
        absl::StrCat("read at ", offset, " before the kept input at ", origin_));
  }
  const uint64_t end = *known_size_;
  // Start on a page of the file, so that the copy is aligned both ways.
  const uint64_t first = offset >= end ? end - origin_ : offset - origin_;
  const uint64_t start = first & ~uint64_t{kBufferAlignment - 1};
  const uint64_t lead = first - start;
  const uint64_t length =
      std::min<uint64_t>(std::max<uint64_t>(capacity, lead + want), end - origin_ - start);
  window_len_ = 0;  // the window moves: what it held need not be copied
  head_ = 0;
  Reserve(static_cast<size_t>(length));
  window_start_ = origin_ + start;
  while (window_len_ < length) {
    ssize_t n = ::pread(fd_, window() + window_len_, length - window_len_, start + window_len_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ReadError(errno);
    }
    if (n == 0) {
      // The file shrank since it was opened: it ends here now.
      known_size_ = window_end();
      break;
    }
    window_len_ += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<const uint8_t>> FdSource::View(uint64_t offset, size_t want) {
  absl::Status status = Fill(offset, want, std::max(window_bytes_, capacity_));
  if (!status.ok()) return status;
  if (offset >= window_end() || offset < window_start_) return absl::Span<const uint8_t>();
  absl::Span<const uint8_t> view(window() + (offset - window_start_),
                                 static_cast<size_t>(window_end() - offset));
  SetCurrent(offset, view);
  return view;
}

absl::StatusOr<bool> FdSource::BufferToEnd(uint64_t offset, uint64_t max_bytes) {
  if (!broken_.ok()) return broken_;
  if (known_size_.has_value() && *known_size_ >= offset && *known_size_ - offset > max_bytes) {
    return false;
  }
  if (positional_) {
    const uint64_t rest = *known_size_ > offset ? *known_size_ - offset : 0;
    absl::Status status = Fill(offset, static_cast<size_t>(rest), static_cast<size_t>(rest));
    if (!status.ok()) return status;
    return true;
  }
  // Grow the window one step at a time so that memory follows the input.
  size_t capacity = std::max(window_bytes_, capacity_);
  while (true) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(capacity, max_bytes + 1));
    absl::Status status = Fill(offset, want, capacity);
    if (!status.ok()) return status;
    uint64_t have = window_end() > offset ? window_end() - offset : 0;
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
  if (!broken_.ok()) return broken_;
  if (Holds(offset, 1)) return true;
  if (positional_) return offset < *known_size_;
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
  if (positional_) {
    absl::StatusOr<bool> whole = BufferToEnd(offset, max_bytes);
    if (!whole.ok() || !*whole) return whole;
    return true;  // everything is here already
  }
  auto tail = [&]() -> absl::Span<const uint8_t> {
    if (offset < window_start_ || offset >= window_end()) return {};
    return absl::Span<const uint8_t>(window() + (offset - window_start_),
                                     static_cast<size_t>(window_end() - offset));
  };
  // Keep everything from `offset` on while reading more, one read at a time.
  absl::Status status = Fill(offset, 1, std::max(window_bytes_, capacity_));
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
    size_t capacity =
        std::max(capacity_, static_cast<size_t>(std::min<uint64_t>(2 * (have + 1), max_bytes + 1)));
    status = Fill(offset, static_cast<size_t>(have + 1), capacity);
    if (!status.ok()) return status;
  }
}

absl::StatusOr<InputEnd> FdSource::MakeEndKnown(uint64_t offset, const KeepLimits& limits) {
  if (!broken_.ok()) return broken_;
  if (positional_) return InputEnd{known_size_, ""};
  if (eof_ && known_size_.has_value() && offset >= window_start_) {
    return InputEnd{known_size_, ""};  // already read to the end and kept
  }
  absl::StatusOr<bool> whole = BufferToEnd(offset, limits.memory_bytes);
  if (!whole.ok()) return whole.status();
  if (*whole) {
    known_size_ = std::max(window_end(), offset);
    return InputEnd{known_size_, ""};
  }
  return Spill(offset, limits.disk_bytes);
}

absl::StatusOr<InputEnd> FdSource::Spill(uint64_t offset, uint64_t max_bytes) {
  const char* tmpdir = getenv("TMPDIR");
  const std::string directory = !spill_directory_.empty()                ? spill_directory_
                                : tmpdir != nullptr && tmpdir[0] != '\0' ? std::string(tmpdir)
                                                                         : std::string("/tmp");
  // BufferToEnd kept everything from `offset` on in the window.
  if (offset < window_start_ || offset > window_end()) {
    return absl::InternalError(absl::StrCat("spill from ", offset, " outside the window at ",
                                            window_start_, "..", window_end()));
  }
  const uint64_t from = offset;
  const uint8_t* kept = window() + (offset - window_start_);
  const size_t kept_len = static_cast<size_t>(window_end() - offset);
  auto over = [&] {
    return InputEnd{std::nullopt, absl::StrCat("more than ", max_bytes, " bytes follow offset ",
                                               offset, ", over the limit for a temporary file")};
  };
  if (kept_len > max_bytes) return over();
  std::string why;
  int fd = OpenTemporary(directory, &why);
  if (fd < 0) return InputEnd{std::nullopt, why};
  ClearCurrent();
  // From here on, bytes are read that only the file keeps: a failure loses
  // them, and the source can serve nothing more.
  auto fail = [&](absl::Status status) {
    ::close(fd);
    broken_ = absl::FailedPreconditionError(
        absl::StrCat("the input from offset ", from, " on was read but could not be kept"));
    return status;
  };
  uint64_t written = 0;
  absl::Status status = WriteAll(fd, kept, kept_len);
  if (!status.ok()) {
    // Nothing was consumed beyond the window yet: it still serves views.
    ::close(fd);
    return InputEnd{std::nullopt, absl::StrCat("the temporary file in ", directory,
                                               " could not be written (", status.message(), ")")};
  }
  written = kept_len;
  // The buffer, already as large as the memory limit allowed, carries the rest.
  head_ = 0;
  window_len_ = 0;
  while (true) {
    ssize_t n = ::read(fd_, buffer_.get(), capacity_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(ReadError(errno));
    }
    if (n == 0) break;
    if (static_cast<uint64_t>(n) > max_bytes - written) {
      (void)fail(absl::OkStatus());
      return over();
    }
    status = WriteAll(fd, buffer_.get(), static_cast<size_t>(n));
    if (!status.ok()) {
      (void)fail(absl::OkStatus());
      return InputEnd{std::nullopt, absl::StrCat("the temporary file in ", directory,
                                                 " could not be written (", status.message(), ")")};
    }
    written += static_cast<uint64_t>(n);
  }
  // Serve everything from the file now, through a window of the usual size.
  spill_fd_ = fd;
  spilled_ = written;
  fd_ = fd;
  positional_ = true;
  origin_ = from;
  known_size_ = from + written;
  eof_ = false;
  window_start_ = from;
  window_len_ = 0;
  head_ = 0;
  buffer_.reset();
  capacity_ = 0;
  return InputEnd{known_size_, ""};
}

absl::StatusOr<absl::Span<const uint8_t>> FdSource::Tail(uint64_t from,
                                                         std::vector<uint8_t>* storage) {
  if (!broken_.ok()) return broken_;
  if (!known_size_.has_value()) {
    return absl::FailedPreconditionError("the tail of an input whose end is not known");
  }
  const uint64_t end = *known_size_;
  if (from >= end) return absl::Span<const uint8_t>();
  if (!positional_) {
    if (from < window_start_ || window_end() != end) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the tail from ", from, " is not held (window ", window_start_, "..", window_end(), ")"));
    }
    return absl::Span<const uint8_t>(window() + (from - window_start_),
                                     static_cast<size_t>(end - from));
  }
  if (from < origin_) {
    return absl::InternalError(
        absl::StrCat("tail at ", from, " before the kept input at ", origin_));
  }
  storage->resize(static_cast<size_t>(end - from));
  size_t have = 0;
  while (have < storage->size()) {
    ssize_t n = ::pread(fd_, storage->data() + have, storage->size() - have,
                        static_cast<off_t>(from - origin_ + have));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ReadError(errno);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("the input ends at ", from + have, ", before its size ", end));
    }
    have += static_cast<size_t>(n);
  }
  return absl::Span<const uint8_t>(*storage);
}

// --- OpenedInput ----------------------------------------------------------------------------

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
    input->seekable_ = true;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0) {
      input->source_ = std::make_unique<MemorySource>(absl::Span<const uint8_t>());
      return input;
    }
    input->source_ = FdSource::ForFile(input->fd_, size);
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
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

}  // namespace qmig
