#include "tools/inspect/stream_inspector.h"

#include "absl/strings/str_cat.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "tools/inspect/command_decode.h"

namespace qmig {
namespace {

// A command record: type byte, be16 command, be16 length, payload.
constexpr uint64_t kCommandHeaderBytes = 5;
// A PACKAGED record before its blob: the command header and the be32 length.
constexpr uint64_t kPackagedHeaderBytes = kCommandHeaderBytes + 4;

nlohmann::ordered_json CountsToJson(const std::array<uint64_t, kPageKindCount>& records) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (size_t kind = 1; kind < kPageKindCount; ++kind) {
    out[std::string(PageKindName(static_cast<PageKind>(kind)))] = records[kind];
  }
  return out;
}

}  // namespace

absl::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kHeader:
      return "header";
    case RecordKind::kConfiguration:
      return "configuration";
    case RecordKind::kRam:
      return "ram";
    case RecordKind::kDevice:
      return "device";
    case RecordKind::kIterable:
      return "iterable";
    case RecordKind::kCommand:
      return "command";
    case RecordKind::kPackage:
      return "package";
    case RecordKind::kEof:
      return "eof";
    case RecordKind::kTrailer:
      return "trailer";
  }
  return "command";
}

StreamInspector::StreamInspector(RecordSink* sink, uint64_t max_mapped_ram)
    : sink_(sink), ram_(max_mapped_ram) {}

void StreamInspector::Emit(const Record& record) {
  if (sink_ != nullptr) sink_->OnRecord(record);
}

void StreamInspector::OnHeader(const StreamSummary& summary, uint64_t end_offset) {
  if (summary.headerless) return;
  Record header;
  header.kind = RecordKind::kHeader;
  header.size = 8;
  header.label = absl::StrCat("QEVM v", summary.file_version);
  header.details = {{"magic", "QEVM"}, {"version", summary.file_version}};
  Emit(header);
  if (end_offset <= header.size) return;
  Record config;
  config.kind = RecordKind::kConfiguration;
  config.offset = header.size;
  config.size = end_offset - header.size;
  const std::string machine = EscapeName(summary.machine.value_or(""));
  config.label = absl::StrCat("CONFIGURATION '", machine, "'");
  config.details["machine"] = machine;
  if (!summary.capabilities.empty()) {
    nlohmann::ordered_json capabilities = nlohmann::ordered_json::array();
    for (const std::string& capability : summary.capabilities) {
      capabilities.push_back(EscapeName(capability));
    }
    config.details["capabilities"] = std::move(capabilities);
  }
  if (summary.target_page_bits.has_value()) {
    config.details["target_page_bits"] = *summary.target_page_bits;
  }
  if (summary.uuid.has_value()) config.details["uuid"] = *summary.uuid;
  Emit(config);
}

void StreamInspector::OnSection(uint8_t type, uint32_t section_id, absl::string_view idstr,
                                uint32_t instance_id, uint32_t version, uint64_t offset) {
  if (progress_) progress_(offset);
  if (section_ != nullptr) CloseSection(offset, /*complete=*/false);
  auto open = std::make_unique<OpenSection>();
  open->id = section_id;
  Record& record = open->record;
  record.offset = offset;
  record.depth = static_cast<int>(packages_.size());
  if (idstr == kRamSectionName) {
    record.kind = RecordKind::kRam;
  } else if (idstr == kDirtyBitmapSectionName || idstr == kBlockSectionName) {
    record.kind = RecordKind::kIterable;
  } else {
    record.kind = RecordKind::kDevice;
  }
  absl::string_view type_name = SectionTypeName(type);
  const std::string name = EscapeName(idstr);
  record.label = absl::StrCat(type_name, " '", name, "' #", instance_id, " v", version);
  record.details = {{"type", type_name},
                    {"section_id", section_id},
                    {"name", name},
                    {"instance_id", instance_id},
                    {"version", version}};
  section_ = std::move(open);
}

VmstateFieldVisitor* StreamInspector::OnDeviceDecode(const DeviceDescription&) {
  if (section_ == nullptr) return nullptr;
  section_->decoded = true;
  return sink_ != nullptr ? sink_->OnDeviceFields(section_->record) : nullptr;
}

void StreamInspector::CloseSection(uint64_t end_offset, bool complete) {
  std::unique_ptr<OpenSection> closing = std::move(section_);
  OpenSection& open = *closing;
  Record& record = open.record;
  record.size = end_offset - record.offset;
  record.complete = complete;
  if (record.kind == RecordKind::kRam) {
    nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
    for (const auto& [name, ram] : open.ram) {
      nlohmann::ordered_json block = {{"name", EscapeName(name)},
                                      {"records", CountsToJson(ram.records)},
                                      {"ranges", ram.ranges.ToJson()}};
      if (ram.ranges.dropped() > 0) block["ranges_dropped"] = ram.ranges.dropped();
      blocks.push_back(std::move(block));
    }
    if (!open.mem_size.empty()) record.details["mem_size"] = std::move(open.mem_size);
    record.details["blocks"] = std::move(blocks);
    if (open.pages_in_other_blocks > 0) {
      record.details["pages_in_other_blocks"] = open.pages_in_other_blocks;
    }
  } else if (record.kind == RecordKind::kDevice) {
    record.details["decoded"] = open.decoded;
  }
  Emit(record);
}

void StreamInspector::OnSectionEnd(uint32_t section_id, uint64_t end_offset) {
  if (section_ != nullptr && section_->id == section_id) CloseSection(end_offset, true);
}

void StreamInspector::OnRamBlock(absl::string_view block, uint64_t length, uint64_t page_size) {
  ram_.DeclareBlock(block, length, page_size);
  if (block_callback_) block_callback_(block, length);
  if (section_ != nullptr) {
    section_->mem_size.push_back(
        {{"name", EscapeName(block)}, {"length", length}, {"page_size", page_size}});
  }
}

void StreamInspector::OnRamPage(absl::string_view block, uint64_t block_offset, RamRecordKind kind,
                                absl::Span<const uint8_t> page, uint64_t stream_offset) {
  if (progress_) progress_(stream_offset);
  ram_.AddPage(block, block_offset, kind);
  if (section_ != nullptr) {
    auto it = section_->ram.find(block);
    if (it == section_->ram.end()) {
      if (section_->ram.size() >= kMaxRamBlocks) {
        ++section_->pages_in_other_blocks;
        if (page_callback_) page_callback_(block, block_offset, kind, page, stream_offset);
        return;
      }
      it = section_->ram.emplace(std::string(block), SectionRam(&section_->range_budget)).first;
    }
    PageKind page_kind = PageKindOf(kind);
    ++it->second.records[static_cast<size_t>(page_kind)];
    it->second.ranges.Add(block_offset, kTargetPageSize, page_kind);
  }
  if (page_callback_) page_callback_(block, block_offset, kind, page, stream_offset);
}

void StreamInspector::OnCommand(CommandKind kind, uint64_t offset,
                                absl::Span<const uint8_t> payload) {
  if (command_callback_) command_callback_(kind, offset);
  if (kind == CommandKind::kPackaged) return;  // a package record, from OnPackageBegin
  Record record;
  record.kind = RecordKind::kCommand;
  record.offset = offset;
  record.size = kCommandHeaderBytes + payload.size();
  record.depth = static_cast<int>(packages_.size());
  nlohmann::ordered_json decoded = DecodeCommandPayload(kind, payload);
  record.label = std::string(CommandKindName(kind));
  std::string described = DescribeCommandPayload(kind, decoded);
  if (!described.empty()) absl::StrAppend(&record.label, " ", described);
  record.details = {{"command", CommandKindName(kind)}, {"length", payload.size()}};
  if (!decoded.empty()) record.details["payload"] = std::move(decoded);
  Emit(record);
}

void StreamInspector::OnPackageBegin(uint64_t offset, uint32_t length) {
  Record record;
  record.kind = RecordKind::kPackage;
  record.offset = offset;
  record.size = kPackagedHeaderBytes + length;
  record.depth = static_cast<int>(packages_.size());
  record.label = absl::StrCat("PACKAGED ", Counted(length, "byte"));
  record.details = {{"command", "PACKAGED"}, {"length", length}};
  if (sink_ != nullptr) sink_->OnPackageBegin(record);
  packages_.push_back(std::move(record));
}

void StreamInspector::OnPackageEnd(uint64_t) {
  if (packages_.empty()) return;
  Record record = std::move(packages_.back());
  packages_.pop_back();
  if (sink_ != nullptr) sink_->OnPackageEnd(record);
}

void StreamInspector::OnEof(uint64_t offset) {
  Record record;
  record.kind = RecordKind::kEof;
  record.offset = offset;
  record.size = 1;
  record.label = "EOF";
  Emit(record);
}

void StreamInspector::OnTrailer(uint64_t offset, absl::string_view json) {
  trailer_json_ = std::string(json);
  Record record;
  record.kind = RecordKind::kTrailer;
  record.offset = offset;
  record.size = 5 + json.size();
  record.label = absl::StrCat("VMDESCRIPTION ", Counted(json.size(), "byte"));
  record.details = {{"length", json.size()}};
  Emit(record);
}

void StreamInspector::Finish(const ParseResult& result) {
  const uint64_t end = result.summary.bytes;
  if (section_ != nullptr) CloseSection(std::max(end, section_->record.offset), false);
  while (!packages_.empty()) {
    Record record = std::move(packages_.back());
    packages_.pop_back();
    record.complete = false;
    if (sink_ != nullptr) sink_->OnPackageEnd(record);
  }
}

}  // namespace qmig
