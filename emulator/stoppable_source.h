// How the destination stops reading early, whatever thread decides it (the
// resident memory limit): the stream as the parser reads it, ending in an
// error once a flag is set; and what the parse result then says.
#ifndef QMIG_EMULATOR_STOPPABLE_SOURCE_H_
#define QMIG_EMULATOR_STOPPABLE_SOURCE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"

namespace qmig {

inline constexpr absl::string_view kStoppedMessage = "stopped at the resident memory limit";

// The stream as the parser reads it, ending in an error once `stop` is set:
// how the destination stops reading early, whatever thread decides it.
class StoppableSource final : public ByteSource {
 public:
  StoppableSource(ByteSource& source, const std::atomic<bool>& stop)
      : source_(source), stop_(stop) {}

  absl::StatusOr<absl::Span<const uint8_t>> View(uint64_t offset, size_t want) override {
    if (stop_.load()) return absl::CancelledError(kStoppedMessage);
    // Its views are not published for the Reader's inline reads (Current()):
    // every read asks here, so a stop takes effect at the next record.
    return source_.View(offset, want);
  }
  absl::StatusOr<bool> BufferToEnd(uint64_t offset, uint64_t max_bytes) override {
    return source_.BufferToEnd(offset, max_bytes);
  }
  absl::StatusOr<bool> BufferUntil(uint64_t offset, uint64_t max_bytes,
                                   const std::function<bool(absl::Span<const uint8_t>)>& complete,
                                   absl::Duration idle) override {
    return source_.BufferUntil(offset, max_bytes, complete, idle);
  }
  absl::StatusOr<bool> WaitForData(uint64_t offset, absl::Duration timeout) override {
    if (stop_.load()) return false;
    return source_.WaitForData(offset, timeout);
  }
  absl::StatusOr<InputEnd> MakeEndKnown(uint64_t offset, const KeepLimits& limits) override {
    return source_.MakeEndKnown(offset, limits);
  }
  absl::StatusOr<absl::Span<const uint8_t>> Tail(uint64_t from,
                                                 std::vector<uint8_t>* storage) override {
    return source_.Tail(from, storage);
  }
  std::optional<uint64_t> Size() const override { return source_.Size(); }
  size_t PeakBufferBytes() const override { return source_.PeakBufferBytes(); }

 private:
  ByteSource& source_;
  const std::atomic<bool>& stop_;
};

// The parser's read that the stop cut short is no fault of the stream: it
// becomes a note where reading stopped. The emulator's finding says why.
void ExplainStop(ParseResult& parse);

}  // namespace qmig

#endif  // QMIG_EMULATOR_STOPPABLE_SOURCE_H_
