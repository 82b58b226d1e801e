// qmig extract FILE|- DIR: every RAM block to DIR/ram/BLOCK.ram (sparse where
// pages are zero or never sent), the device state to DIR/state.json, the
// configuration to DIR/config.json, the vmstate description (when the stream
// has one) to DIR/desc.json, and an index of it all to DIR/extract.json.
// Works from a pipe: the stream is read once, front to back, and each file is
// written while it is read. Files are created inside DIR without following a
// symbolic link already there.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "parser/parse_context.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "tools/inspect/analyze_format.h"
#include "tools/inspect/dump_writers.h"
#include "tools/inspect/stream_inspector.h"
#include "tools/qmig/extract.h"
#include "tools/qmig/output_files.h"
#include "tools/qmig/progress.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

// Bytes of the field log gathered before one write(2).
constexpr size_t kLogBufferBytes = size_t{256} << 10;

// Hands a device's fields to two visitors.
class TeeVisitor final : public VmstateFieldVisitor {
 public:
  TeeVisitor(VmstateFieldVisitor* a, VmstateFieldVisitor* b) : a_(a), b_(b) {}
  void OnField(const VmstateFieldView& field) override {
    if (a_) a_->OnField(field);
    if (b_) b_->OnField(field);
  }
  void OnStructBegin(const VmstateFieldView& field) override {
    if (a_) a_->OnStructBegin(field);
    if (b_) b_->OnStructBegin(field);
  }
  void OnStructEnd() override {
    if (a_) a_->OnStructEnd();
    if (b_) b_->OnStructEnd();
  }
  void OnSubsectionBegin(absl::string_view name, uint32_t version, uint64_t offset) override {
    if (a_) a_->OnSubsectionBegin(name, version, offset);
    if (b_) b_->OnSubsectionBegin(name, version, offset);
  }
  void OnSubsectionEnd() override {
    if (a_) a_->OnSubsectionEnd();
    if (b_) b_->OnSubsectionEnd();
  }

 private:
  VmstateFieldVisitor* a_;
  VmstateFieldVisitor* b_;
};

// Sends device fields to the state view and the field log, and keeps the
// configuration.
class ExtractSink final : public RecordSink {
 public:
  explicit ExtractSink(const ExtractOutputs& outputs)
      : state_(outputs.state != nullptr ? std::make_unique<AnalyzeMigrationWriter>(outputs.state)
                                        : nullptr),
        log_(outputs.devices) {}

  VmstateFieldVisitor* OnDeviceFields(const Record& record) override {
    ++devices_decoded_;
    device_offset_ = record.offset;
    const nlohmann::ordered_json& d = record.details;
    tee_ = TeeVisitor(state_ != nullptr ? state_->OnDeviceFields(record) : nullptr,
                      log_ != nullptr ? log_->Begin(absl::StrCat(d["name"].get<std::string>(), "#",
                                                                 d["instance_id"].get<uint32_t>()))
                                      : nullptr);
    return &tee_;
  }
  void OnRecord(const Record& record) override {
    if (state_ != nullptr) state_->OnRecord(record);
    if (device_offset_.has_value() && *device_offset_ == record.offset) {
      device_offset_.reset();
      if (log_ != nullptr) log_->End();
    }
    if (record.kind == RecordKind::kConfiguration) configuration_ = record.details;
    if (record.kind == RecordKind::kDevice && record.details.value("decoded", true) == false &&
        record.details.contains("name") && record.details.contains("instance_id")) {
      std::string key = absl::StrCat(record.details["name"].get<std::string>(), "#",
                                     record.details["instance_id"].get<uint32_t>());
      if (devices_undecoded_.size() < kMaxUndecodedDevicesNamed ||
          devices_undecoded_.count(key) > 0) {
        devices_undecoded_.insert(std::move(key));
      } else {
        ++devices_undecoded_unnamed_;
      }
    }
  }
  void Finish() {
    if (state_ != nullptr) state_->Finish();
  }

  uint64_t devices_decoded_ = 0;
  std::set<std::string> devices_undecoded_;
  uint64_t devices_undecoded_unnamed_ = 0;
  nlohmann::ordered_json configuration_ = nlohmann::ordered_json::object();

 private:
  std::unique_ptr<AnalyzeMigrationWriter> state_;
  DeviceFieldLog* log_;
  TeeVisitor tee_{nullptr, nullptr};
  std::optional<uint64_t> device_offset_;
};

std::string Pretty(const nlohmann::ordered_json& value) {
  return value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

VmstateFieldVisitor* DeviceFieldLog::Begin(const std::string& key) {
  key_ = key;
  start_ = written_;
  fields_.Begin(this);
  return &fields_;
}

void DeviceFieldLog::End() {
  fields_.End();
  if (key_.has_value()) index_[*key_] = Extent{start_, written_ - start_};
  key_.reset();
}

void DeviceFieldLog::Write(absl::string_view text) {
  buffer_.append(text.data(), text.size());
  written_ += text.size();
  if (buffer_.size() >= kLogBufferBytes) Flush().IgnoreError();
}

absl::Status DeviceFieldLog::Flush() {
  size_t done = 0;
  while (status_.ok() && done < buffer_.size()) {
    ssize_t n = write(fd_.get(), buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) status_ = absl::InternalError("cannot write the device field log");
    if (n > 0) done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return status_;
}

absl::Status ExtractStream(const std::string& input, int ram_dir_fd, const std::string& ram_dir,
                           const StreamFlags& flags, bool quiet, const std::string& progress_label,
                           const ExtractOutputs& outputs, Extracted* out) {
  QMIG_ASSIGN_OR_RETURN(StreamInput stream, OpenStreamInput(input, flags));
  ParseOptions& parse_options = stream.parse;

  ExtractSink sink(outputs);
  StreamInspector inspector(&sink, parse_options.limits.max_guest_ram_bytes);
  RamFileWriter writer(ram_dir_fd, ram_dir);
  absl::Status write_status;
  // Every block MEM_SIZE lists gets its file, sized, when the list arrives.
  inspector.set_block_callback([&](absl::string_view block, uint64_t length) {
    if (write_status.ok()) write_status = writer.DeclareBlock(block, length);
  });
  inspector.set_page_callback([&](absl::string_view block, uint64_t offset, RamRecordKind kind,
                                  absl::Span<const uint8_t> bytes, uint64_t) {
    if (write_status.ok()) write_status = writer.AddPage(block, offset, kind, bytes);
  });
  ProgressMeter progress(progress_label, RegularFileSize(input), quiet);
  inspector.set_progress([&progress](uint64_t offset) { progress.Update(offset); });
  parse_options.observer = &inspector;
  out->result = ParseMigrationStream(stream.input->source(), parse_options);
  inspector.Finish(out->result);
  sink.Finish();
  progress.Done();
  absl::Status finish = writer.Finish();
  if (!write_status.ok()) return write_status;
  if (!finish.ok()) return finish;
  if (outputs.devices != nullptr) QMIG_RETURN_IF_ERROR(outputs.devices->Flush());
  out->blocks = writer.blocks();
  out->pages_in_other_blocks = writer.pages_in_other_blocks();
  out->devices_decoded = sink.devices_decoded_;
  out->devices_undecoded = std::move(sink.devices_undecoded_);
  out->devices_undecoded_unnamed = sink.devices_undecoded_unnamed_;
  out->configuration = std::move(sink.configuration_);
  out->description = inspector.trailer_json();
  return absl::OkStatus();
}

int RunExtract(const std::vector<std::string>& operands, const ExtractOptions& options) {
  if (operands.size() != 2) return UsageError("extract", "takes FILE (or - for stdin) and DIR");
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return UsageError("extract", setup.status().message());
  const std::string& dir = operands[1];
  const std::string ram_dir = dir + "/ram";
  auto fail = [](const absl::Status& status) { return InputError("extract", status.message()); };
  absl::StatusOr<UniqueFd> dir_fd = OpenDirectory(dir, /*create=*/true);
  if (!dir_fd.ok()) return fail(dir_fd.status());
  absl::StatusOr<UniqueFd> ram_fd = OpenSubdirectory(dir_fd->get(), "ram", ram_dir);
  if (!ram_fd.ok()) return fail(ram_fd.status());
  absl::StatusOr<std::unique_ptr<FileOut>> state =
      FileOut::Create(dir_fd->get(), "state.json", dir + "/state.json");
  if (!state.ok()) return fail(state.status());

  Extracted extracted;
  ExtractOutputs outputs;
  outputs.state = state->get();
  absl::Status status = ExtractStream(operands[0], ram_fd->get(), ram_dir, options.stream,
                                      options.output.quiet, "qmig extract", outputs, &extracted);
  if (!status.ok()) return fail(status);
  absl::Status closed = (*state)->Close();
  if (!closed.ok()) return fail(closed);
  const ParseResult& result = extracted.result;

  // desc.json first: the index says whether it was written.
  bool described = false;
  if (extracted.description.has_value()) {
    absl::StatusOr<std::unique_ptr<FileOut>> file =
        FileOut::Create(dir_fd->get(), "desc.json", dir + "/desc.json");
    if (!file.ok()) return fail(file.status());
    described = WritePrettyJson(*extracted.description, file->get()).ok();
    absl::Status written = (*file)->Close();
    if (!written.ok()) return fail(written);
    // A trailer that is not JSON leaves no desc.json; the findings say why.
    if (!described) unlinkat(dir_fd->get(), "desc.json", 0);
  }

  nlohmann::ordered_json config = extracted.configuration;
  config["file_version"] = result.summary.file_version;
  if (result.summary.footers.has_value()) config["footers"] = *result.summary.footers;
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (const RamFileWriter::BlockFile& block : extracted.blocks) {
    nlohmann::ordered_json entry = {{"name", EscapeName(block.name)},
                                    {"file", absl::StrCat("ram/", block.file_name)},
                                    {"length", block.length},
                                    {"page_records", block.pages_written},
                                    {"data_pages", block.data_pages.size()}};
    if (block.pages_skipped > 0) entry["pages_not_applied"] = block.pages_skipped;
    if (block.file_limit.has_value()) {
      // The file system refused a file as long as the block.
      entry["file_length"] = *block.file_limit;
      entry["pages_beyond_file_length"] = block.pages_beyond_file_limit;
      std::cerr << "qmig: " << EscapeName(block.name) << ": the file system holds files of at most "
                << *block.file_limit << " bytes, the block has " << block.length << "; "
                << block.pages_beyond_file_limit << " pages past that were not written\n";
    }
    blocks.push_back(std::move(entry));
  }
  nlohmann::ordered_json index = {
      {"input", operands[0]},
      {"valid", result.valid()},
      {"errors", result.findings.error_count()},
      {"warnings", result.findings.warning_count()},
      {"ram_blocks", blocks},
      {"state", "state.json"},
      {"config", "config.json"},
      {"description", described ? nlohmann::ordered_json("desc.json") : nlohmann::ordered_json()},
      {"findings", FindingsToJson(result.findings)}};
  if (extracted.pages_in_other_blocks > 0) {
    index["pages_in_other_blocks"] = extracted.pages_in_other_blocks;
  }
  std::vector<std::pair<std::string, std::string>> files = {{"config.json", Pretty(config)},
                                                            {"extract.json", JsonDocument(index)}};
  for (const auto& [name, text] : files) {
    absl::StatusOr<std::unique_ptr<FileOut>> file =
        FileOut::Create(dir_fd->get(), name, absl::StrCat(dir, "/", name));
    if (!file.ok()) return fail(file.status());
    (*file)->Write(text);
    absl::Status written = (*file)->Close();
    if (!written.ok()) return fail(written);
  }
  if (!options.output.quiet) {
    std::cout << "extracted " << extracted.blocks.size() << " RAM blocks, "
              << extracted.devices_decoded << " device sections to " << EscapeName(dir) << "\n";
  }
  PrintFindings(result.findings, /*errors_only=*/true);
  return result.valid() ? kExitValid : kExitInvalid;
}

}  // namespace qmig
