// The record writers of `qmig dump`: the readable tree (text) and JSON
// records (--json, schema in docs/JSON.md). Each writes a record when it
// completes and a device's fields while they are decoded, so memory stays
// bounded on a stream of any size. Every name from the stream arrives
// escaped (EscapeName), so both outputs are ASCII without control bytes.
#ifndef QMIG_TOOLS_INSPECT_DUMP_WRITERS_H_
#define QMIG_TOOLS_INSPECT_DUMP_WRITERS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "parser/wire/limits.h"
#include "tools/inspect/field_writer.h"
#include "tools/inspect/ram_map.h"
#include "tools/inspect/stream_inspector.h"

namespace qmig {

// A TextOut onto a std::ostream.
class OstreamOut final : public TextOut {
 public:
  explicit OstreamOut(std::ostream& out) : out_(out) {}
  void Write(absl::string_view text) override { out_.write(text.data(), text.size()); }

 private:
  std::ostream& out_;
};

// A small JSON value as one line (names in it are already escaped).
std::string CompactJson(const nlohmann::ordered_json& value);

// " 0-0x1000 zero 0x1000-0x3000 normal ...": at most `max` ranges.
std::string FormatRanges(absl::Span<const PageRange> ranges, size_t max);
// "31 zero, 1 normal", or "no pages".
std::string FormatPageCounts(const std::array<uint64_t, kPageKindCount>& records);

class TextDumpWriter final : public RecordSink {
 public:
  explicit TextDumpWriter(TextOut* out) : out_(out), held_(this) {}

  VmstateFieldVisitor* OnDeviceFields(const Record& record) override;
  void OnRecord(const Record& record) override;
  void OnPackageBegin(const Record& package) override;
  void OnPackageEnd(const Record& package) override;

  // "0x00041596  FULL 'timer' #0 v2      48 bytes": the record's first line.
  static std::string Line(const Record& record);

 private:
  // Holds a device's text until kMaxHeldDeviceText, then writes the record's
  // line (without its size) and passes everything through.
  class Held final : public TextOut {
   public:
    explicit Held(TextDumpWriter* writer) : writer_(writer) {}
    void Start(const Record& record);
    void Write(absl::string_view text) override;
    bool passing_through() const { return passing_through_; }
    std::string Take();

   private:
    TextDumpWriter* writer_;
    std::string label_line_;
    std::string text_;
    bool passing_through_ = false;
  };

  TextOut* out_;
  Held held_;
  FieldWriter fields_{FieldFormat::kText, FieldTreeStyle::kNested};
  std::optional<uint64_t> fields_of_;  // offset of the device being written
};

// One JSON object: the header fields first, then "records" written as they
// come (one per line), then what End() is given.
class JsonDumpWriter final : public RecordSink {
 public:
  explicit JsonDumpWriter(TextOut* out) : out_(out) {}

  void Begin(int schema_version, const std::string& input);
  VmstateFieldVisitor* OnDeviceFields(const Record& record) override;
  void OnRecord(const Record& record) override;
  void OnPackageBegin(const Record& package) override;
  void OnPackageEnd(const Record& package) override;
  // Closes "records" and writes `tail`'s members after it.
  void End(const nlohmann::ordered_json& tail);

 private:
  void Separator();

  TextOut* out_;
  std::vector<bool> first_{true};
  FieldWriter fields_{FieldFormat::kJson, FieldTreeStyle::kNested};
  std::optional<uint64_t> fields_of_;  // offset of the device being written
  size_t details_written_ = 0;         // of that device's details, before its fields
};

}  // namespace qmig

#endif  // QMIG_TOOLS_INSPECT_DUMP_WRITERS_H_
