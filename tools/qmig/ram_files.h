// Guest RAM written out as one sparse file per RAMBlock, from the page
// records of a stream, in order: zero pages and pages never sent stay holes,
// XBZRLE deltas apply to what the file holds, compressed pages are inflated.
// Contiguous pages are gathered into large writes, which a writer thread
// performs while the stream is read on (double buffering).
#ifndef QMIG_TOOLS_QMIG_RAM_FILES_H_
#define QMIG_TOOLS_QMIG_RAM_FILES_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/stream_parser.h"

namespace qmig {

// A block name as a file name: bytes outside [A-Za-z0-9@_+-] and a leading
// '.' become %XX, so no name can leave the directory or hide.
std::string BlockFileName(absl::string_view block);

class RamFileWriter {
 public:
  struct BlockFile {
    std::string name;
    std::string path;
    uint64_t length = 0;         // declared by MEM_SIZE; else how far pages reached
    uint64_t pages_written = 0;  // page records applied
    std::vector<bool> nonzero;   // pages that hold data (not holes)
    int fd = -1;
  };

  // Files go to `dir`, which must exist. Blocks may add up to at most
  // `max_total_bytes`.
  RamFileWriter(std::string dir, uint64_t max_total_bytes);
  ~RamFileWriter();
  RamFileWriter(const RamFileWriter&) = delete;
  RamFileWriter& operator=(const RamFileWriter&) = delete;

  absl::Status DeclareBlock(absl::string_view block, uint64_t length);
  absl::Status AddPage(absl::string_view block, uint64_t offset, RamRecordKind kind,
                       absl::Span<const uint8_t> bytes);
  // Writes out what is gathered and closes the files.
  absl::Status Finish();

  const std::vector<BlockFile>& blocks() const { return blocks_; }

 private:
  absl::StatusOr<BlockFile*> Open(absl::string_view block);
  // Hands the gathered run to the writer thread.
  absl::Status Flush();
  // Waits until the writer thread is idle; its first error, if any.
  absl::Status Drain();
  void WriterLoop();
  static absl::Status WriteAt(int fd, const std::string& path, uint64_t offset,
                              absl::Span<const uint8_t> bytes);

  std::string dir_;
  uint64_t budget_;
  std::vector<BlockFile> blocks_;
  absl::flat_hash_map<std::string, size_t> index_;
  // The run of contiguous pages gathered for one write.
  std::vector<uint8_t> pending_;
  size_t pending_block_ = 0;
  uint64_t pending_offset_ = 0;
  std::vector<uint8_t> page_;  // scratch for decoding one page

  // The run being written by the writer thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint8_t> inflight_;
  int inflight_fd_ = -1;
  std::string inflight_path_;
  uint64_t inflight_offset_ = 0;
  bool has_inflight_ = false;
  bool stopping_ = false;
  absl::Status write_error_;
  std::thread writer_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_RAM_FILES_H_
