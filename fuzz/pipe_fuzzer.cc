// Fuzz target: the whole-stream parser reading from a pipe through FdSource,
// against the same parse from memory (differential). A stream on a pipe or a
// socket must read exactly as it does from a file: the same bytes consumed,
// the same findings at the same offsets. A pipe may defer a judgement
// (input.undecidable, when it cannot keep what comes before the trailer),
// never change one.
//
// Input: byte 0 shapes the transport, the rest is the stream.
//   bits 0-3: FdSource's window, 16 << n bytes (16 B .. 512 KiB), so that
//             views cross window boundaries and BufferUntil grows it;
//   bits 4-7: seed of the writer's cuts, 1 .. 2^(1 + bits 4-5) * 16 bytes per
//             write(2), so that reads return partial views;
//   bits 6-7: also what the trailer probe may keep of the rest of the input:
//             0, 2: the default limits (32 MiB in memory);
//             1: as much as the window in memory, the rest in a temporary
//                file, so that the probe spills and reads back from it;
//             3: as much as the window in memory and in the file, so that
//                a longer rest is undecidable.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "fuzz/fuzz_support.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"

namespace {

void WriteInCuts(int fd, absl::Span<const uint8_t> bytes, uint8_t shape) {
  uint32_t state = 0x9e3779b9u ^ shape;
  const size_t largest = size_t{16} << (1 + ((shape >> 4) & 3));
  size_t at = 0;
  while (at < bytes.size()) {
    state = state * 1664525u + 1013904223u;  // LCG: cuts vary, the run repeats
    size_t cut = 1 + (state >> 8) % largest;
    if (cut > bytes.size() - at) cut = bytes.size() - at;
    const ssize_t written = ::write(fd, bytes.data() + at, cut);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) break;  // EPIPE: the parse stopped reading
    at += static_cast<size_t>(written);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  ::signal(SIGPIPE, SIG_IGN);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qmig::fuzz::Check;
  if (size == 0) return 0;
  const uint8_t shape = data[0];
  const absl::Span<const uint8_t> stream(data + 1, size - 1);

  qmig::ParseOptions options;
  const size_t window = size_t{16} << (shape & 15);
  const uint8_t keep = shape >> 6;
  if (keep == 1 || keep == 3) options.limits.max_buffered_device_state = window;
  if (keep == 3) options.limits.max_spilled_device_state = window;
  qmig::MemorySource memory(stream);
  const qmig::ParseResult from_memory = qmig::ParseMigrationStream(memory, options);

  int fds[2];
  Check(::pipe2(fds, O_CLOEXEC) == 0, "pipe2 failed");
  std::thread writer(WriteInCuts, fds[1], stream, shape);
  qmig::FdSource pipe(fds[0], std::nullopt, window);
  const qmig::ParseResult from_pipe = qmig::ParseMigrationStream(pipe, options);
  ::close(fds[0]);
  writer.join();

  const auto& ours = from_pipe.findings.findings();
  const auto& theirs = from_memory.findings.findings();
  size_t same = ours.size();
  if (from_pipe.findings.HasCode(qmig::FindingCode::kUndecidable)) {
    // Deferred: the last finding, where the parse stopped, with more to keep
    // than the limits allow; everything before it is what memory found.
    const qmig::Finding& last = ours.back();
    Check(last.code == qmig::FindingCode::kUndecidable, "the pipe went on after undecidable");
    Check(from_pipe.summary.bytes == last.offset, "undecidable is not where the pipe stopped");
    Check(stream.size() - last.offset > options.limits.max_buffered_device_state,
          "undecidable although the rest fits in memory");
    same = ours.size() - 1;
    Check(same <= theirs.size(), "the pipe found more before it deferred");
  } else {
    Check(from_pipe.summary.bytes == from_memory.summary.bytes,
          "the pipe parse read another number of bytes than the memory parse");
    Check(ours.size() == theirs.size(), "the pipe parse found more or fewer things");
    Check(from_pipe.summary.devices_decoded == from_memory.summary.devices_decoded,
          "the pipe parse decoded another number of devices");
  }
  for (size_t i = 0; i < same; ++i) {
    Check(ours[i].code == theirs[i].code && ours[i].offset == theirs[i].offset &&
              ours[i].severity == theirs[i].severity,
          "the pipe parse found other things than the memory parse");
  }
  qmig::fuzz::CheckFindings(from_pipe.findings, stream.size());
  return 0;
}
