// StreamInspector: turns the parser's observer events into records, the unit
// every inspection command shows (dump, report, analyze-migration output).
//
// A record is one piece of the stream with its offset and size: the header,
// the configuration, a section (RAM, device or iterable), a command, a
// PACKAGED command with its blob, the EOF, the trailer. Records are handed to
// a RecordSink as soon as they are complete, in stream order; records inside
// a package arrive between the package's begin and end. Nothing is kept
// beyond the record at hand and a bounded RAM map, so memory stays bounded
// whatever the stream's size.
#ifndef QMIG_TOOLS_INSPECT_STREAM_INSPECTOR_H_
#define QMIG_TOOLS_INSPECT_STREAM_INSPECTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/limits.h"
#include "tools/inspect/field_writer.h"
#include "tools/inspect/ram_map.h"

namespace qmig {

enum class RecordKind : uint8_t {
  kHeader,
  kConfiguration,
  kRam,
  kDevice,
  kIterable,  // dirty-bitmap, block
  kCommand,
  kPackage,  // a PACKAGED command and its blob
  kEof,
  kTrailer,
};
absl::string_view RecordKindName(RecordKind kind);

struct Record {
  RecordKind kind = RecordKind::kCommand;
  uint64_t offset = 0;
  uint64_t size = 0;
  int depth = 0;         // packages enclosing the record
  std::string label;     // "START 'ram' #0 v4", "PING", ...
  bool complete = true;  // false: the stream failed or ended inside it
  // Kind-specific content (documented in docs/JSON.md, "qmig dump --json").
  nlohmann::ordered_json details = nlohmann::ordered_json::object();
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  // A device section's fields are about to be decoded. `record` holds what
  // is known at its start (no size yet). The visitor returned, if any,
  // receives the fields as they are decoded; OnRecord(record) completes the
  // record afterwards, also when the stream fails inside it.
  virtual VmstateFieldVisitor* OnDeviceFields(const Record& record) { return nullptr; }
  virtual void OnRecord(const Record& record) = 0;
  // A package record, before and after its contents.
  virtual void OnPackageBegin(const Record& package) {}
  virtual void OnPackageEnd(const Record& package) {}
};

class StreamInspector final : public StreamObserver {
 public:
  // `sink` may be null when only the RAM map and devices are wanted.
  // `max_mapped_ram` bounds the per-page RAM map (ParseLimits::max_guest_ram_bytes).
  StreamInspector(RecordSink* sink, uint64_t max_mapped_ram);

  // Called for every RAM page record after the inspector has seen it.
  using PageCallback =
      std::function<void(absl::string_view block, uint64_t offset, RamRecordKind kind,
                         absl::Span<const uint8_t> bytes, uint64_t stream_offset)>;
  void set_page_callback(PageCallback callback) { page_callback_ = std::move(callback); }
  // Called for each block of a MEM_SIZE list, with its length.
  using BlockCallback = std::function<void(absl::string_view block, uint64_t length)>;
  void set_block_callback(BlockCallback callback) { block_callback_ = std::move(callback); }
  // Called for every command (after the inspector has seen it).
  using CommandCallback = std::function<void(CommandKind kind, uint64_t offset)>;
  void set_command_callback(CommandCallback callback) { command_callback_ = std::move(callback); }
  // Called often with the stream offset reached (sections, commands, pages).
  void set_progress(std::function<void(uint64_t offset)> progress) {
    progress_ = std::move(progress);
  }

  // Flushes what the parse left open (a section or package the stream failed
  // inside) with complete = false. Call once, after ParseMigrationStream.
  void Finish(const ParseResult& result);

  const RamMap& ram() const { return ram_; }
  // The VMDESCRIPTION trailer's JSON, when the stream had one.
  const std::optional<std::string>& trailer_json() const { return trailer_json_; }

  // StreamObserver.
  void OnHeader(const StreamSummary& summary, uint64_t end_offset) override;
  void OnSection(uint8_t type, uint32_t section_id, absl::string_view idstr, uint32_t instance_id,
                 uint32_t version, uint64_t offset) override;
  void OnSectionEnd(uint32_t section_id, uint64_t end_offset) override;
  VmstateFieldVisitor* OnDeviceDecode(const DeviceDescription& device) override;
  void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t> payload) override;
  void OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                 absl::Span<const uint8_t> page, uint64_t stream_offset) override;
  void OnRamBlock(absl::string_view block, uint64_t length, uint64_t page_size) override;
  void OnPackageBegin(uint64_t offset, uint32_t length) override;
  void OnPackageEnd(uint64_t offset) override;
  void OnEof(uint64_t offset) override;
  void OnTrailer(uint64_t offset, absl::string_view json) override;

 private:
  struct SectionRam {
    explicit SectionRam(size_t* range_budget) : ranges(kMaxRangesPerSection, range_budget) {}
    std::array<uint64_t, kPageKindCount> records{};
    RangeList ranges;
  };
  struct OpenSection {
    Record record;
    uint32_t id = 0;
    bool decoded = false;
    // By block (at most kMaxRamBlocks; pages of further blocks are counted).
    std::map<std::string, SectionRam, std::less<>> ram;
    uint64_t pages_in_other_blocks = 0;
    size_t range_budget = kMaxRangesPerSectionRecord;
    nlohmann::ordered_json mem_size = nlohmann::ordered_json::array();
  };

  void Emit(const Record& record);
  void CloseSection(uint64_t end_offset, bool complete);

  RecordSink* sink_;
  RamMap ram_;
  PageCallback page_callback_;
  CommandCallback command_callback_;
  BlockCallback block_callback_;
  std::function<void(uint64_t)> progress_;
  // Heap-allocated: its RangeLists point at its range budget.
  std::unique_ptr<OpenSection> section_;
  std::vector<Record> packages_;  // open packages, outermost first
  std::optional<std::string> trailer_json_;
};

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_STREAM_INSPECTOR_H_
