// Guest RAM written out as one sparse file per RAMBlock, from the page
// records of a stream, in order: zero pages and pages never sent stay holes,
// XBZRLE deltas apply to what the file holds, compressed pages are inflated.
// Contiguous pages are gathered into large writes, which a writer thread
// performs while the stream is read on (double buffering).
//
// Memory follows the pages that hold data, never a block's declared length,
// so a block of any size costs what its pages cost. Files are created in a
// directory the caller opened, without following symbolic links.
#ifndef QMIG_TOOLS_QMIG_RAM_FILES_H_
#define QMIG_TOOLS_QMIG_RAM_FILES_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
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
// '.' become %XX, so no name can leave the directory or hide; a name whose
// file name would pass kMaxBlockFileName ends in a hash of the whole name
// instead. Distinct names give distinct file names.
inline constexpr size_t kMaxBlockFileName = 200;
std::string BlockFileName(absl::string_view block);

// Pages of one block, 64 to a word: page index / 64 -> bits.
class PageSet {
 public:
  // Whether the page was in the set before.
  bool Insert(uint64_t page);
  bool Erase(uint64_t page);
  bool Contains(uint64_t page) const;
  uint64_t size() const { return size_; }
  // Every page in the set, in ascending order.
  std::vector<uint64_t> Sorted() const;

 private:
  absl::flat_hash_map<uint64_t, uint64_t> words_;
  uint64_t size_ = 0;
};

class RamFileWriter {
 public:
  struct BlockFile {
    std::string name;
    std::string file_name;  // in the directory
    std::string path;       // for messages: the directory's path and file_name
    uint64_t length = 0;    // declared by MEM_SIZE; else how far pages reached
    bool declared = false;  // MEM_SIZE listed the block
    // Set when the file system refused a file as long as the block: the
    // longest file it takes. Pages past it are counted, not written.
    std::optional<uint64_t> file_limit;
    uint64_t pages_written = 0;  // page records applied
    uint64_t pages_skipped = 0;  // records that did not decode or lie outside the block
    uint64_t pages_beyond_file_limit = 0;
    PageSet data_pages;  // pages that hold data (not holes)
    int fd = -1;
  };

  // Files go to the directory open at `dir_fd` (which the caller keeps open),
  // shown as `dir_path` in messages. At most kMaxRamBlocks blocks get a file;
  // pages of further blocks are counted.
  RamFileWriter(int dir_fd, std::string dir_path);
  ~RamFileWriter();
  RamFileWriter(const RamFileWriter&) = delete;
  RamFileWriter& operator=(const RamFileWriter&) = delete;

  absl::Status DeclareBlock(absl::string_view block, uint64_t length);
  absl::Status AddPage(absl::string_view block, uint64_t offset, RamRecordKind kind,
                       absl::Span<const uint8_t> bytes);
  // Writes out what is gathered and closes the files.
  absl::Status Finish();

  const std::vector<BlockFile>& blocks() const { return blocks_; }
  uint64_t pages_in_other_blocks() const { return pages_in_other_blocks_; }

 private:
  // The block's file, created when new; nullptr past kMaxRamBlocks.
  absl::StatusOr<BlockFile*> Open(absl::string_view block);
  // Makes the file at least `length` bytes long, where the file system lets it.
  absl::Status Grow(BlockFile& file, uint64_t length);
  // Hands the gathered run to the writer thread.
  absl::Status Flush();
  // Waits until the writer thread is idle; its first error, if any.
  absl::Status Drain();
  void WriterLoop();
  static absl::Status WriteAt(int fd, const std::string& path, uint64_t offset,
                              absl::Span<const uint8_t> bytes);

  int dir_fd_;
  std::string dir_path_;
  std::vector<BlockFile> blocks_;
  absl::flat_hash_map<std::string, size_t> index_;
  uint64_t pages_in_other_blocks_ = 0;
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
