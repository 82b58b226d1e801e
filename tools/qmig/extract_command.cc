// qmig extract FILE|- DIR: every RAM block to DIR/ram/BLOCK.ram (sparse where
// pages are zero or never sent), the device state to DIR/state.json, the
// configuration to DIR/config.json, the vmstate description (when the stream
// has one) to DIR/desc.json, and an index of it all to DIR/extract.json.
// Works from a pipe: the stream is read once, front to back.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "parser/parse_context.h"
#include "parser/wire/byte_source.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/extract.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// Collects device trees by name and instance, and the configuration.
class ExtractSink final : public RecordSink {
 public:
  void OnRecord(const Record& record) override {
    analyze_.OnRecord(record);
    const nlohmann::ordered_json& d = record.details;
    if (record.kind == RecordKind::kDevice && d.contains("fields")) {
      devices_[absl::StrCat(d["name"].get<std::string>(), "#", d["instance_id"].get<uint32_t>())] =
          d["fields"];
    } else if (record.kind == RecordKind::kConfiguration) {
      configuration_ = d;
    }
  }
  AnalyzeMigrationSink analyze_;
  std::map<std::string, nlohmann::ordered_json> devices_;
  nlohmann::ordered_json configuration_ = nlohmann::ordered_json::object();
};

absl::Status MakeDirectory(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

std::string Pretty(const nlohmann::ordered_json& value) {
  return value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

absl::Status ExtractStream(const std::string& input, const std::string& ram_dir,
                           const CommonOptions& options, const std::string& progress_label,
                           Extracted* out) {
  QMIG_ASSIGN_OR_RETURN(StreamInput stream, OpenStreamInput(input, options));
  ParseOptions& parse_options = stream.parse;

  ExtractSink sink;
  StreamInspector inspector(&sink, parse_options.limits.max_guest_ram_bytes);
  inspector.set_field_style(FieldTreeStyle::kAnalyzeMigration);  // state.json as the script's
  RamFileWriter writer(ram_dir, parse_options.limits.max_guest_ram_bytes);
  absl::Status write_status;
  // Blocks are sized from MEM_SIZE, which the inspector has seen first.
  // Every block MEM_SIZE lists gets its file, sized, when the list arrives.
  inspector.set_block_callback([&](absl::string_view block, uint64_t length) {
    if (write_status.ok()) write_status = writer.DeclareBlock(block, length);
  });
  inspector.set_page_callback([&](absl::string_view block, uint64_t offset, RamRecordKind kind,
                                  absl::Span<const uint8_t> bytes, uint64_t) {
    if (write_status.ok()) write_status = writer.AddPage(block, offset, kind, bytes);
  });
  ProgressMeter progress(progress_label, RegularFileSize(input), options.quiet);
  inspector.set_progress([&progress](uint64_t offset) { progress.Update(offset); });
  parse_options.observer = &inspector;
  out->result = ParseMigrationStream(stream.input->source(), parse_options);
  inspector.Finish(out->result);
  progress.Done();
  absl::Status finish = writer.Finish();
  if (!write_status.ok()) return write_status;
  if (!finish.ok()) return finish;
  out->blocks = writer.blocks();
  out->state = sink.analyze_.state();
  out->devices = std::move(sink.devices_);
  out->configuration = std::move(sink.configuration_);
  out->description = inspector.trailer_json();
  return absl::OkStatus();
}

int RunExtract(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 2) {
    std::cerr << "qmig: extract takes FILE (or - for stdin) and DIR\n";
    return kExitUsage;
  }
  const std::string& dir = operands[1];
  const std::string ram_dir = dir + "/ram";
  for (const std::string& path : {dir, ram_dir}) {
    absl::Status made = MakeDirectory(path);
    if (!made.ok()) {
      std::cerr << "qmig: " << made.message() << "\n";
      return kExitUsage;
    }
  }
  Extracted extracted;
  absl::Status status = ExtractStream(operands[0], ram_dir, options, "qmig extract", &extracted);
  if (!status.ok()) {
    std::cerr << "qmig: " << status.message() << "\n";
    return kExitUsage;
  }
  const ParseResult& result = extracted.result;

  nlohmann::ordered_json config = extracted.configuration;
  config["file_version"] = result.summary.file_version;
  if (result.summary.footers.has_value()) config["footers"] = *result.summary.footers;
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (const RamFileWriter::BlockFile& block : extracted.blocks) {
    uint64_t data_pages = 0;
    for (bool nonzero : block.nonzero) data_pages += nonzero ? 1 : 0;
    blocks.push_back({{"name", block.name},
                      {"file", absl::StrCat("ram/", block.path.substr(ram_dir.size() + 1))},
                      {"length", block.length},
                      {"page_records", block.pages_written},
                      {"data_pages", data_pages}});
  }
  nlohmann::ordered_json index = {
      {"schema_version", kJsonSchemaVersion},
      {"input", operands[0]},
      {"valid", result.valid()},
      {"errors", result.findings.error_count()},
      {"warnings", result.findings.warning_count()},
      {"ram_blocks", blocks},
      {"state", "state.json"},
      {"config", "config.json"},
      {"description", extracted.description.has_value() ? nlohmann::ordered_json("desc.json")
                                                        : nlohmann::ordered_json()},
      {"findings", nlohmann::ordered_json::parse(FindingsToJson(result.findings).dump())}};
  std::vector<std::pair<std::string, std::string>> files = {
      {"state.json", AnalyzeMigrationText(extracted.state)},
      {"config.json", Pretty(config)},
      {"extract.json", Pretty(index)}};
  if (extracted.description.has_value()) {
    nlohmann::ordered_json desc = ParseOrderedJson(*extracted.description);
    if (!desc.is_discarded()) files.emplace_back("desc.json", AnalyzeMigrationText(desc));
  }
  for (const auto& [name, text] : files) {
    absl::Status written = WriteFile(absl::StrCat(dir, "/", name), text);
    if (!written.ok()) {
      std::cerr << "qmig: " << written.message() << "\n";
      return kExitUsage;
    }
  }
  if (!options.quiet) {
    std::cout << "extracted " << extracted.blocks.size() << " RAM blocks, "
              << extracted.devices.size() << " device sections to " << dir << "\n";
  }
  PrintFindings(result.findings, /*errors_only=*/true);
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
