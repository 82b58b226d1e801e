// Where stream bytes come from. A ByteSource hands out read-only views by
// absolute offset; offsets only move forward, so a source over a pipe or a
// socket keeps a bounded window and never holds the whole stream.
//
// Implementations: MemorySource (a caller-owned span, e.g. an mmap'd file),
// FdSource (a descriptor: read(2) for a pipe, a socket or stdin; pread(2) at
// absolute offsets for a regular file).
//
// A source can be asked to make the end of its input known (MakeEndKnown)
// and to hand out the last bytes (Tail), for a trailer that describes what
// comes before it. A stream then keeps what it reads: in memory up to one
// limit, beyond that in an unlinked temporary file up to another. Past both,
// it says why it cannot, rather than guessing.
#ifndef QMIG_PARSER_WIRE_BYTE_SOURCE_H_
#define QMIG_PARSER_WIRE_BYTE_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "parser/wire/limits.h"

namespace qmig {

// How much of the rest of an input a source may keep to make its end known.
struct KeepLimits {
  uint64_t memory_bytes = 0;  // held in memory
  uint64_t disk_bytes = 0;    // beyond that, in an unlinked temporary file
};

// Where an input ends, as MakeEndKnown found it.
struct InputEnd {
  std::optional<uint64_t> end;  // absolute offset one past the last byte
  std::string why_unknown;      // when `end` is unknown: why, as a sentence
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // A view of the bytes starting at absolute `offset`. It holds at least
  // `want` bytes, or every byte up to the end of input when fewer remain (an
  // empty view means end of input). It may hold more. It stays valid until the
  // next call. `offset` must not be below the offset of any earlier call's
  // view start minus what the source still retains; readers only move forward.
  virtual absl::StatusOr<absl::Span<const uint8_t>> View(uint64_t offset, size_t want) = 0;

  // Makes every byte from `offset` to the end of input available to View() at
  // once, if that costs at most `max_bytes` of buffer. Returns true when the
  // whole rest of the input is now available.
  virtual absl::StatusOr<bool> BufferToEnd(uint64_t offset, uint64_t max_bytes) = 0;

  // Like BufferToEnd, but also stops as soon as `complete` holds for the
  // bytes buffered from `offset` on, or when nothing arrives for `idle`: a
  // live peer may wait for an answer before it closes the connection.
  // Returns whether `complete` holds (or the whole rest of the input is in).
  virtual absl::StatusOr<bool> BufferUntil(
      uint64_t offset, uint64_t max_bytes,
      const std::function<bool(absl::Span<const uint8_t>)>& complete, absl::Duration idle) = 0;

  // Whether a byte at `offset` arrives within `timeout` (false at the end of
  // input or when the peer stays quiet).
  virtual absl::StatusOr<bool> WaitForData(uint64_t offset, absl::Duration timeout) = 0;

  // Makes the end of input known, keeping every byte from `offset` on
  // available to View() (in any order from then on), within `limits`. A file
  // knows its size; a stream reads its rest. When the end stays unknown,
  // `why_unknown` says why; views before the bytes read then still work,
  // unless the source had to read past what it could keep, in which case
  // every later call fails. A non-OK status is an I/O error.
  virtual absl::StatusOr<InputEnd> MakeEndKnown(uint64_t offset, const KeepLimits& limits) = 0;

  // The bytes from `from` to the end of input, which must be known (Size()):
  // a view of the source's own memory, or the bytes read into `*storage`.
  // Valid until the next call or until `*storage` changes. Does not move the
  // window that View() serves. The caller bounds the length it asks for.
  virtual absl::StatusOr<absl::Span<const uint8_t>> Tail(uint64_t from,
                                                         std::vector<uint8_t>* storage) = 0;

  // The total input size, when known: in advance (regular files), or once
  // MakeEndKnown found it.
  virtual std::optional<uint64_t> Size() const = 0;

  // Peak bytes this source held in memory (not counting caller-owned memory).
  virtual size_t PeakBufferBytes() const { return 0; }

  // The bytes [offset, offset + n) when the view this source last handed out
  // holds them, else nullptr. They stay valid as that view does; a Reader
  // serves small fixed-size reads from here without a virtual call.
  const uint8_t* Current(uint64_t offset, size_t n) const {
    if (offset < current_offset_) return nullptr;
    const uint64_t into = offset - current_offset_;
    if (into > current_size_ || n > current_size_ - into) return nullptr;
    return current_data_ + into;
  }

 protected:
  // Implementations publish each view they hand out, or a prefix of it (a
  // source that works per view, such as one releasing what lies behind,
  // publishes only as much as may be read before it must act again).
  void SetCurrent(uint64_t offset, absl::Span<const uint8_t> view) {
    current_offset_ = offset;
    current_data_ = view.data();
    current_size_ = view.size();
  }
  void ClearCurrent() { SetCurrent(0, {}); }

 private:
  uint64_t current_offset_ = 0;
  const uint8_t* current_data_ = nullptr;
  size_t current_size_ = 0;
};

// Borrowed bytes. `base_offset` is the absolute offset of data[0], so that a
// slice re-read later still reports offsets of the original stream.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(absl::Span<const uint8_t> data, uint64_t base_offset = 0)
      : data_(data), base_(base_offset) {
    SetCurrent(base_, data_);
  }

  // For a private read-only file mapping: drops the pages the reader has
  // passed (MADV_DONTNEED), `step` bytes behind it, so that resident memory
  // stays bounded on a file of any size. A dropped page reloads from the
  // file if read again, so views never change.
  void ReleaseBehind(size_t step);

  absl::StatusOr<absl::Span<const uint8_t>> View(uint64_t offset, size_t want) override;
  absl::StatusOr<bool> BufferToEnd(uint64_t offset, uint64_t max_bytes) override;
  absl::StatusOr<bool> BufferUntil(uint64_t offset, uint64_t max_bytes,
                                   const std::function<bool(absl::Span<const uint8_t>)>& complete,
                                   absl::Duration idle) override;
  absl::StatusOr<bool> WaitForData(uint64_t offset, absl::Duration timeout) override;
  absl::StatusOr<InputEnd> MakeEndKnown(uint64_t offset, const KeepLimits& limits) override;
  absl::StatusOr<absl::Span<const uint8_t>> Tail(uint64_t from,
                                                 std::vector<uint8_t>* storage) override;
  std::optional<uint64_t> Size() const override { return base_ + data_.size(); }

 private:
  absl::Span<const uint8_t> data_;
  uint64_t base_;
  size_t release_step_ = 0;
  uint64_t released_ = 0;  // bytes at the front of data_ already released
};

namespace internal {
struct AlignedFree {
  void operator()(uint8_t* bytes) const;
};
}  // namespace internal

// A descriptor the caller owns, through a window of `window_bytes` (grown by
// BufferToEnd and BufferUntil up to their bound, and to any larger view asked
// for). Streams are read front to back with read(2); a regular file (ForFile)
// with pread(2) at absolute offsets, so nothing is mapped and a page fault
// costs nothing per page. The window's bytes sit at the same offset modulo 64
// in memory as in the input, which keeps the kernel's copy fast. The default
// window suits a stream; fuzzers and tests pass small windows so that every
// view crosses window boundaries.
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd, std::optional<uint64_t> known_size = std::nullopt,
                    size_t window_bytes = kStreamWindowBytes);
  // A regular file of `size` bytes.
  static std::unique_ptr<FdSource> ForFile(int fd, uint64_t size,
                                           size_t window_bytes = kFileWindowBytes);
  ~FdSource() override;
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;

  // Where MakeEndKnown puts its temporary file; by default $TMPDIR, or /tmp.
  void set_spill_directory(std::string directory) { spill_directory_ = std::move(directory); }

  absl::StatusOr<absl::Span<const uint8_t>> View(uint64_t offset, size_t want) override;
  absl::StatusOr<bool> BufferToEnd(uint64_t offset, uint64_t max_bytes) override;
  absl::StatusOr<bool> BufferUntil(uint64_t offset, uint64_t max_bytes,
                                   const std::function<bool(absl::Span<const uint8_t>)>& complete,
                                   absl::Duration idle) override;
  absl::StatusOr<bool> WaitForData(uint64_t offset, absl::Duration timeout) override;
  absl::StatusOr<InputEnd> MakeEndKnown(uint64_t offset, const KeepLimits& limits) override;
  absl::StatusOr<absl::Span<const uint8_t>> Tail(uint64_t from,
                                                 std::vector<uint8_t>* storage) override;
  std::optional<uint64_t> Size() const override { return known_size_; }
  size_t PeakBufferBytes() const override { return peak_; }
  // Bytes MakeEndKnown wrote to its temporary file.
  uint64_t SpilledBytes() const { return spilled_; }

 private:
  FdSource(int fd, uint64_t size, size_t window_bytes, bool positional);

  uint8_t* window() const { return buffer_.get() + head_; }
  uint64_t window_end() const { return window_start_ + window_len_; }
  bool Holds(uint64_t offset, size_t want) const;
  // Makes the buffer at least `bytes` long, keeping the window where it is.
  void Reserve(size_t bytes);
  // Reads until the window holds `[offset, offset + want)` or input ends.
  absl::Status Fill(uint64_t offset, size_t want, size_t capacity);
  absl::Status FillStream(uint64_t offset, size_t want, size_t capacity);
  absl::Status FillPositional(uint64_t offset, size_t want, size_t capacity);
  // Whether the descriptor has bytes (or EOF) to read within `timeout`.
  absl::StatusOr<bool> Readable(absl::Duration timeout);
  // Writes what the window holds from `offset` on, and the rest of the
  // stream, to a temporary file, then reads from that file.
  absl::StatusOr<InputEnd> Spill(uint64_t offset, uint64_t max_bytes);

  int fd_;
  bool positional_;      // pread(2) at `offset - origin_`
  uint64_t origin_ = 0;  // absolute offset of the descriptor's first byte
  std::optional<uint64_t> known_size_;
  size_t window_bytes_;
  std::unique_ptr<uint8_t, internal::AlignedFree> buffer_;
  size_t capacity_ = 0;
  size_t head_ = 0;            // index of window_start_'s byte in buffer_
  uint64_t window_start_ = 0;  // absolute offset of the window's first byte
  size_t window_len_ = 0;      // valid bytes in the window
  bool eof_ = false;
  size_t peak_ = 0;
  std::string spill_directory_;
  int spill_fd_ = -1;  // owned: the temporary file, once spilled
  uint64_t spilled_ = 0;
  absl::Status broken_;  // bytes were read that could not be kept
};

// An input opened by path ("-" is stdin): a regular file through
// FdSource::ForFile (pread(2), not a mapping: on a host where a page fault is
// expensive, touching every page of a mapped stream cost 5x reading it),
// anything else through a streaming FdSource.
class OpenedInput {
 public:
  static absl::StatusOr<std::unique_ptr<OpenedInput>> Open(const std::string& path);
  ~OpenedInput();
  OpenedInput(const OpenedInput&) = delete;
  OpenedInput& operator=(const OpenedInput&) = delete;

  ByteSource& source() { return *source_; }
  bool seekable() const { return seekable_; }
  const std::string& path() const { return path_; }

 private:
  OpenedInput() = default;

  std::string path_;
  int fd_ = -1;
  bool owns_fd_ = false;
  bool seekable_ = false;
  std::unique_ptr<ByteSource> source_;
};

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_BYTE_SOURCE_H_
