// Reader: the one bounds-checked, big-endian cursor every decoder reads
// through.
//
// A Reader walks a ByteSource forward from an absolute offset up to an
// optional limit. `Sub(n)` makes a reader bounded to the next n bytes (a
// PACKAGED blob, a command payload); when the caller is done with it,
// `parent.MoveTo(sub.offset())` resumes the parent after what the child read.
//
// Two kinds of failure are kept apart, as in Wireshark's tvbuff:
//  * truncated: the input itself ended before the bytes a record needs;
//  * bounds:    the bytes exist, but a record runs past the limit of the
//               enclosing blob (malformed: the blob's length is wrong).
// Each failure is reported once to the ReadErrorObserver (which knows the
// decoder's path) and returned as a non-OK status.
#ifndef QMIG_PARSER_WIRE_READER_H_
#define QMIG_PARSER_WIRE_READER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/endian.h"

namespace qmig {

enum class ReadFailure {
  kTruncated,  // end of input
  kPastLimit,  // past the end of the enclosing bounded blob
};

class ReadErrorObserver {
 public:
  virtual ~ReadErrorObserver() = default;
  // `offset` is where the failed read started, `needed` how many bytes it
  // wanted, `available` how many of them there were (for kTruncated, the
  // input ends at offset + available), `limit_name` what bounds the reader
  // ("PACKAGED blob", ...).
  virtual absl::Status OnReadFailure(ReadFailure failure, uint64_t offset, uint64_t needed,
                                     uint64_t available, absl::string_view limit_name) = 0;
};

class Reader {
 public:
  Reader(ByteSource* source, ReadErrorObserver* observer, uint64_t offset = 0)
      : source_(source), observer_(observer), offset_(offset) {}

  uint64_t offset() const { return offset_; }
  std::optional<uint64_t> limit() const { return limit_; }
  absl::string_view limit_name() const { return limit_name_; }

  // A reader over the next `length` bytes. Fails as past-limit when this
  // reader's own limit is shorter; a short input shows as truncation when the
  // bytes are read, on a file as on a pipe. Nothing is read or allocated.
  absl::StatusOr<Reader> Sub(uint64_t length, absl::string_view limit_name) const;
  // A reader over the next `length` bytes without checking that they exist:
  // for a blob read in place, whose truncation shows while reading it. The
  // caller has checked `length` against this reader's own limit.
  Reader Bounded(uint64_t length, absl::string_view limit_name) const;
  // Resumes after a sub-reader finished; `offset` must not move backwards.
  void MoveTo(uint64_t offset);

  // True when no byte remains before the limit or the end of input.
  absl::StatusOr<bool> AtEnd();
  // Bytes that certainly remain before the limit or the known input size;
  // nullopt when the input size is unknown and there is no limit.
  std::optional<uint64_t> KnownRemaining() const;
  // Fails (truncated or past-limit) unless `length` more bytes can still
  // arrive. Use before allocating or skipping by a length read off the wire.
  absl::Status CheckCanArrive(uint64_t length);

  // Fixed-size reads. Each is served straight from the source's current view
  // while it holds the bytes (the common case, inline); otherwise through
  // ByteSource::View, which also reports failures.
  absl::StatusOr<uint8_t> U8() {
    if (const uint8_t* p = Near(1)) {
      offset_ += 1;
      return p[0];
    }
    return SlowU8();
  }
  absl::StatusOr<uint16_t> Be16() {
    if (const uint8_t* p = Near(2)) {
      offset_ += 2;
      return LoadBe16(p);
    }
    return SlowBe16();
  }
  absl::StatusOr<uint32_t> Be32() {
    if (const uint8_t* p = Near(4)) {
      offset_ += 4;
      return LoadBe32(p);
    }
    return SlowBe32();
  }
  absl::StatusOr<uint64_t> Be64() {
    if (const uint8_t* p = Near(8)) {
      offset_ += 8;
      return LoadBe64(p);
    }
    return SlowBe64();
  }
  // `n` bytes as one view, valid until the next read; n <= kMaxContiguousView.
  absl::StatusOr<absl::Span<const uint8_t>> Bytes(size_t n) {
    if (const uint8_t* p = n <= kMaxContiguousView ? Near(n) : nullptr) {
      offset_ += n;
      return absl::Span<const uint8_t>(p, n);
    }
    absl::StatusOr<absl::Span<const uint8_t>> bytes = Fetch(n);
    if (bytes.ok()) offset_ += n;
    return bytes;
  }
  // Like Bytes, without moving.
  absl::StatusOr<absl::Span<const uint8_t>> Peek(size_t n) {
    if (const uint8_t* p = n <= kMaxContiguousView ? Near(n) : nullptr) {
      return absl::Span<const uint8_t>(p, n);
    }
    return Fetch(n);
  }
  // Up to `n` bytes without moving and without failing: fewer at the end.
  absl::StatusOr<absl::Span<const uint8_t>> PeekUpTo(size_t n);
  absl::StatusOr<uint8_t> PeekU8() {
    if (const uint8_t* p = Near(1)) return p[0];
    absl::StatusOr<absl::Span<const uint8_t>> bytes = Fetch(1);
    if (!bytes.ok()) return bytes.status();
    return (*bytes)[0];
  }
  // Consumes `n` bytes in bounded chunks; a short input fails at the chunk
  // that runs out, the same way on a file as on a pipe.
  absl::Status Skip(uint64_t n);
  // Moves forward to absolute `offset`: without reading when the input's
  // size is known and reaches it (a region of a file nothing needs), else
  // as Skip, so that a short input fails where it ends on a file as on a
  // pipe.
  absl::Status SkipTo(uint64_t offset);
  // u8 length + bytes (no terminator).
  absl::StatusOr<std::string> CountedString();

  ByteSource* source() const { return source_; }
  ReadErrorObserver* observer() const { return observer_; }

 private:
  // The next `n` bytes when they are inside the limit and in the source's
  // current view, else nullptr (the slow path decides what is wrong).
  const uint8_t* Near(size_t n) const {
    if (offset_ > end_ || n > end_ - offset_) return nullptr;
    return source_->Current(offset_, n);
  }
  absl::StatusOr<uint8_t> SlowU8();
  absl::StatusOr<uint16_t> SlowBe16();
  absl::StatusOr<uint32_t> SlowBe32();
  absl::StatusOr<uint64_t> SlowBe64();
  absl::StatusOr<absl::Span<const uint8_t>> Fetch(size_t n);
  absl::Status Fail(ReadFailure failure, uint64_t needed, uint64_t available);
  void SetLimit(uint64_t limit, absl::string_view name) {
    limit_ = limit;
    end_ = limit;
    limit_name_ = name;
  }

  ByteSource* source_;
  ReadErrorObserver* observer_;
  uint64_t offset_;
  std::optional<uint64_t> limit_;
  uint64_t end_ = UINT64_MAX;  // *limit_, or no bound
  absl::string_view limit_name_;
};

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_READER_H_
