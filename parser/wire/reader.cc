#include "parser/wire/reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/limits.h"
#include "parser/wire/status_macros.h"

namespace qmig {

absl::Status Reader::Fail(ReadFailure failure, uint64_t needed, uint64_t available) {
  if (observer_ != nullptr) {
    return observer_->OnReadFailure(failure, offset_, needed, available, limit_name_);
  }
  if (failure == ReadFailure::kTruncated) {
    return absl::OutOfRangeError(absl::StrCat("truncated at offset ", offset_ + available));
  }
  return absl::DataLossError(
      absl::StrCat("record at offset ", offset_, " runs past the ", limit_name_));
}

std::optional<uint64_t> Reader::KnownRemaining() const {
  std::optional<uint64_t> remaining;
  if (limit_.has_value()) remaining = *limit_ - offset_;
  std::optional<uint64_t> size = source_->Size();
  if (size.has_value()) {
    uint64_t in_input = *size > offset_ ? *size - offset_ : 0;
    remaining = remaining.has_value() ? std::min(*remaining, in_input) : in_input;
  }
  return remaining;
}

absl::Status Reader::CheckCanArrive(uint64_t length) {
  std::optional<uint64_t> size = source_->Size();
  uint64_t in_input = size.has_value() && *size > offset_ ? *size - offset_ : 0;
  bool input_short = size.has_value() && in_input < length;
  bool limit_short = limit_.has_value() && *limit_ - offset_ < length;
  // Truncated wins when the input ends before the limit does.
  if (input_short && (!limit_short || in_input < *limit_ - offset_)) {
    return Fail(ReadFailure::kTruncated, length, in_input);
  }
  if (limit_short) return Fail(ReadFailure::kPastLimit, length, *limit_ - offset_);
  return absl::OkStatus();
}

absl::StatusOr<Reader> Reader::Sub(uint64_t length, absl::string_view limit_name) const {
  // Only the limit is checked, not the input's size: a record that claims to
  // run past its container is malformed however much input follows, and a
  // pipe, whose size is unknown, must give the same verdict as a file.
  if (limit_.has_value() && *limit_ - offset_ < length) {
    Reader copy = *this;
    return copy.Fail(ReadFailure::kPastLimit, length, *limit_ - offset_);
  }
  Reader sub = *this;
  // Saturates: reads then fail at the input's end first.
  sub.SetLimit(CheckedAdd(offset_, length).value_or(UINT64_MAX), limit_name);
  return sub;
}

Reader Reader::Bounded(uint64_t length, absl::string_view limit_name) const {
  Reader bounded = *this;
  uint64_t end = offset_ + length;
  if (end < offset_) end = UINT64_MAX;  // saturate: reads fail at the input's end first
  if (limit_.has_value()) end = std::min(end, *limit_);
  bounded.SetLimit(end, limit_name);
  return bounded;
}

void Reader::MoveTo(uint64_t offset) { offset_ = std::max(offset_, offset); }

absl::StatusOr<bool> Reader::AtEnd() {
  if (limit_.has_value() && offset_ >= *limit_) return true;
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> view, source_->View(offset_, 1));
  return view.empty();
}

absl::StatusOr<absl::Span<const uint8_t>> Reader::Fetch(size_t n) {
  if (n > kMaxContiguousView) {
    return absl::InternalError(
        absl::StrCat("contiguous read of ", n, " bytes exceeds the view limit"));
  }
  uint64_t room = limit_.has_value() ? *limit_ - offset_ : n;
  size_t from_input = static_cast<size_t>(std::min<uint64_t>(n, room));
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> view, source_->View(offset_, from_input));
  if (view.size() < from_input) return Fail(ReadFailure::kTruncated, n, view.size());
  if (from_input < n) return Fail(ReadFailure::kPastLimit, n, from_input);
  return view.subspan(0, n);
}

absl::StatusOr<uint8_t> Reader::SlowU8() {
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, Fetch(1));
  ++offset_;
  return bytes[0];
}

absl::StatusOr<uint16_t> Reader::SlowBe16() {
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> b, Fetch(2));
  offset_ += 2;
  return LoadBe16(b.data());
}

absl::StatusOr<uint32_t> Reader::SlowBe32() {
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> b, Fetch(4));
  offset_ += 4;
  return LoadBe32(b.data());
}

absl::StatusOr<uint64_t> Reader::SlowBe64() {
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> b, Fetch(8));
  offset_ += 8;
  return LoadBe64(b.data());
}

absl::StatusOr<absl::Span<const uint8_t>> Reader::PeekUpTo(size_t n) {
  n = std::min(n, kMaxContiguousView);
  uint64_t room = limit_.has_value() ? *limit_ - offset_ : n;
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, room));
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> view, source_->View(offset_, want));
  return view.subspan(0, std::min(view.size(), want));
}

absl::Status Reader::Skip(uint64_t n) {
  if (limit_.has_value() && *limit_ - offset_ < n) {
    // Past the enclosing blob, unless the input runs out first.
    return CheckCanArrive(n);
  }
  while (n > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n, kMaxContiguousView));
    QMIG_RETURN_IF_ERROR(Bytes(chunk).status());
    n -= chunk;
  }
  return absl::OkStatus();
}

absl::Status Reader::SkipTo(uint64_t offset) {
  if (offset <= offset_) return absl::OkStatus();
  std::optional<uint64_t> size = source_->Size();
  const bool within_limit = !limit_.has_value() || offset <= *limit_;
  if (size.has_value() && offset <= *size && within_limit) {
    offset_ = offset;
    return absl::OkStatus();
  }
  return Skip(offset - offset_);
}

absl::StatusOr<std::string> Reader::CountedString() {
  QMIG_ASSIGN_OR_RETURN(uint8_t length, U8());
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, Bytes(length));
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace qmig
