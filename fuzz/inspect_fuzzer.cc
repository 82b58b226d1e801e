// Fuzz target: the inspection layer (qmig dump, report, extract) over the
// whole-stream parser: every record is built, serialised as dump --json
// writes it, and the analyze-migration view is printed, so field trees,
// command payload decoding and the RAM map all see hostile input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/stream_inspector.h"

namespace {

// A small map budget keeps the RAM map's allocation per input small.
constexpr uint64_t kMappedRam = uint64_t{64} << 20;

class NullOut final : public qmig::TextOut {
 public:
  void Write(absl::string_view text) override { bytes_ += text.size(); }

 private:
  uint64_t bytes_ = 0;
};

class SerialisingSink final : public qmig::RecordSink {
 public:
  qmig::VmstateFieldVisitor* OnDeviceFields(const qmig::Record& record) override {
    return analyze_.OnDeviceFields(record);
  }
  void OnRecord(const qmig::Record& record) override {
    Check(record);
    analyze_.OnRecord(record);
  }
  void OnPackageBegin(const qmig::Record& package) override {
    Check(package);
    ++open_packages_;
  }
  void OnPackageEnd(const qmig::Record&) override {
    qmig::fuzz::Check(open_packages_-- > 0, "a package ended that never began");
  }
  qmig::AnalyzeMigrationWriter& analyze() { return analyze_; }

 private:
  void Check(const qmig::Record& record) {
    qmig::fuzz::Check(record.offset >= last_offset_, "records out of stream order");
    last_offset_ = record.offset;
    bytes_ += record.details.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
                  .size();
  }
  NullOut out_;
  qmig::AnalyzeMigrationWriter analyze_{&out_};
  uint64_t last_offset_ = 0;
  uint64_t bytes_ = 0;
  int open_packages_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qmig::MemorySource source(absl::MakeConstSpan(data, size));
  SerialisingSink sink;
  qmig::StreamInspector inspector(&sink, kMappedRam);
  qmig::ParseOptions options;
  options.observer = &inspector;
  qmig::ParseResult result = qmig::ParseMigrationStream(source, options);
  inspector.Finish(result);
  sink.analyze().Finish();
  for (const qmig::RamMap::Block& block : inspector.ram().blocks()) {
    qmig::fuzz::Check(inspector.ram().Ranges(block, 64).ranges().size() <= 64,
                      "more ranges than asked for");
  }
  return 0;
}
