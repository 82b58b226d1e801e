#include "tools/inspect/dump_writers.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qmig {
namespace {

// Ranges listed per block in the text view; the JSON keeps more.
constexpr size_t kTextRangesPerBlock = 8;

std::string Indent(const Record& record) { return std::string(12 + 2 * record.depth + 2, ' '); }

// Scalars as they read best: strings without quotes.
std::string Scalar(const nlohmann::ordered_json& value) {
  return value.is_string() ? value.get<std::string>() : CompactJson(value);
}

// A record's ranges and counts, from its JSON details.
std::vector<PageRange> RangesOf(const nlohmann::ordered_json& ranges) {
  std::vector<PageRange> out;
  for (const nlohmann::ordered_json& range : ranges) {
    PageKind kind = PageKind::kAbsent;
    for (size_t k = 0; k < kPageKindCount; ++k) {
      if (range[2].get<std::string>() == PageKindName(static_cast<PageKind>(k))) {
        kind = static_cast<PageKind>(k);
      }
    }
    out.push_back({range[0].get<uint64_t>(), range[1].get<uint64_t>(), kind});
  }
  return out;
}

std::array<uint64_t, kPageKindCount> CountsOf(const nlohmann::ordered_json& counts) {
  std::array<uint64_t, kPageKindCount> out{};
  for (size_t k = 1; k < kPageKindCount; ++k) {
    const std::string name(PageKindName(static_cast<PageKind>(k)));
    if (counts.contains(name)) out[k] = counts[name].get<uint64_t>();
  }
  return out;
}

}  // namespace

std::string FormatRanges(absl::Span<const PageRange> ranges, size_t max) {
  std::string out;
  size_t shown = 0;
  for (const PageRange& range : ranges) {
    if (shown == max) {
      absl::StrAppend(&out, " ...");
      break;
    }
    absl::StrAppendFormat(&out, " %#x-%#x %s", range.start, range.end, PageKindName(range.kind));
    ++shown;
  }
  return out;
}

std::string FormatPageCounts(const std::array<uint64_t, kPageKindCount>& records) {
  std::string out;
  for (size_t kind = 1; kind < kPageKindCount; ++kind) {
    if (records[kind] == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : ", ", records[kind], " ",
                    PageKindName(static_cast<PageKind>(kind)));
  }
  return out.empty() ? "no pages" : out;
}

std::string CompactJson(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/true,
                    nlohmann::ordered_json::error_handler_t::replace);
}

std::string TextDumpWriter::Line(const Record& record) {
  return absl::StrFormat("0x%08x  %s%-48s %10d bytes%s\n", record.offset,
                         std::string(2 * record.depth, ' '), record.label, record.size,
                         record.complete ? "" : "  (incomplete)");
}

void TextDumpWriter::Held::Start(const Record& record) {
  label_line_ = absl::StrFormat("0x%08x  %s%s  (size follows the fields)\n", record.offset,
                                std::string(2 * record.depth, ' '), record.label);
  text_.clear();
  passing_through_ = false;
}

void TextDumpWriter::Held::Write(absl::string_view text) {
  if (passing_through_) {
    writer_->out_->Write(text);
    return;
  }
  text_.append(text.data(), text.size());
  if (text_.size() <= kMaxHeldDeviceText) return;
  passing_through_ = true;
  writer_->out_->Write(label_line_);
  writer_->out_->Write(text_);
  text_.clear();
  text_.shrink_to_fit();
}

std::string TextDumpWriter::Held::Take() {
  std::string text = std::move(text_);
  text_.clear();
  return text;
}

VmstateFieldVisitor* TextDumpWriter::OnDeviceFields(const Record& record) {
  fields_of_ = record.offset;
  held_.Start(record);
  fields_.Begin(&held_, 0, Indent(record));
  return &fields_;
}

void TextDumpWriter::OnRecord(const Record& record) {
  const std::string indent = Indent(record);
  const nlohmann::ordered_json& d = record.details;
  if (fields_of_.has_value() && *fields_of_ == record.offset) {
    fields_of_.reset();
    fields_.End();
    if (held_.passing_through()) {
      out_->Write(absl::StrFormat("%s(%d bytes%s)\n", indent, record.size,
                                  record.complete ? "" : ", incomplete"));
    } else {
      out_->Write(Line(record));
      out_->Write(held_.Take());
    }
    return;
  }
  std::string text = Line(record);
  switch (record.kind) {
    case RecordKind::kConfiguration:
      if (d.contains("capabilities")) {
        absl::StrAppend(&text, indent, "capabilities: ", CompactJson(d["capabilities"]), "\n");
      }
      if (d.contains("uuid")) absl::StrAppend(&text, indent, "uuid: ", Scalar(d["uuid"]), "\n");
      break;
    case RecordKind::kRam:
      if (d.contains("mem_size")) {
        for (const nlohmann::ordered_json& block : d["mem_size"]) {
          absl::StrAppendFormat(&text, "%sMEM_SIZE %s %#x bytes\n", indent,
                                block["name"].get<std::string>(), block["length"].get<uint64_t>());
        }
      }
      for (const nlohmann::ordered_json& block : d["blocks"]) {
        absl::StrAppend(&text, indent, block["name"].get<std::string>(), ": ",
                        FormatPageCounts(CountsOf(block["records"])), ";",
                        FormatRanges(RangesOf(block["ranges"]), kTextRangesPerBlock), "\n");
      }
      if (d.contains("pages_in_other_blocks")) {
        absl::StrAppend(&text, indent, d["pages_in_other_blocks"].get<uint64_t>(),
                        " pages of further blocks, not listed\n");
      }
      break;
    case RecordKind::kDevice:
      if (!d["decoded"].get<bool>()) {
        absl::StrAppend(&text, indent, "(not decoded: no description for this device)\n");
      }
      break;
    default:
      break;
  }
  out_->Write(text);
}

void TextDumpWriter::OnPackageBegin(const Record& package) { out_->Write(Line(package)); }

void TextDumpWriter::OnPackageEnd(const Record& package) {
  if (!package.complete) {
    out_->Write(absl::StrCat(std::string(12 + 2 * package.depth, ' '), "(package cut short)\n"));
  }
}

void JsonDumpWriter::Begin(int schema_version, const std::string& input) {
  out_->Write(absl::StrCat("{\"schema_version\": ", schema_version,
                           ", \"input\": ", JsonString(input), ",\n\"records\": ["));
}

void JsonDumpWriter::Separator() {
  out_->Write(first_.back() ? "\n" : ",\n");
  first_.back() = false;
}

namespace {

// The members every record starts with, then its details from `from` on.
nlohmann::ordered_json RecordHead(const Record& record, bool with_size) {
  nlohmann::ordered_json out = {{"offset", record.offset}};
  if (with_size) out["size"] = record.size;
  out["kind"] = RecordKindName(record.kind);
  out["label"] = record.label;
  out["depth"] = record.depth;
  return out;
}

// `object` without its closing brace, to append members to.
std::string Open(const nlohmann::ordered_json& object) {
  std::string text = CompactJson(object);
  text.pop_back();
  return text;
}

}  // namespace

VmstateFieldVisitor* JsonDumpWriter::OnDeviceFields(const Record& record) {
  Separator();
  nlohmann::ordered_json head = RecordHead(record, /*with_size=*/false);
  for (const auto& [key, value] : record.details.items()) head[key] = value;
  details_written_ = record.details.size();
  out_->Write(absl::StrCat(Open(head), ",\"fields\":"));
  fields_of_ = record.offset;
  fields_.Begin(out_);
  return &fields_;
}

void JsonDumpWriter::OnRecord(const Record& record) {
  if (fields_of_.has_value() && *fields_of_ == record.offset) {
    // A decoded device: its size and state are known only after its fields.
    fields_of_.reset();
    fields_.End();
    nlohmann::ordered_json tail = {{"size", record.size}, {"complete", record.complete}};
    size_t index = 0;
    for (const auto& [key, value] : record.details.items()) {
      if (index++ >= details_written_) tail[key] = value;
    }
    std::string text = CompactJson(tail);
    text[0] = ',';
    out_->Write(text);
    return;
  }
  Separator();
  nlohmann::ordered_json out = RecordHead(record, /*with_size=*/true);
  if (record.kind != RecordKind::kPackage) out["complete"] = record.complete;
  for (const auto& [key, value] : record.details.items()) out[key] = value;
  out_->Write(CompactJson(out));
}

void JsonDumpWriter::OnPackageBegin(const Record& package) {
  Separator();
  nlohmann::ordered_json out = RecordHead(package, /*with_size=*/true);
  for (const auto& [key, value] : package.details.items()) out[key] = value;
  out_->Write(absl::StrCat(Open(out), ",\"contents\": ["));
  first_.push_back(true);
}

void JsonDumpWriter::OnPackageEnd(const Record& package) {
  first_.pop_back();
  out_->Write(absl::StrCat("],\"complete\": ", package.complete ? "true" : "false", "}"));
}

void JsonDumpWriter::End(const nlohmann::ordered_json& tail) {
  std::string text = "\n]";
  for (const auto& [key, value] : tail.items()) {
    absl::StrAppend(&text, ",\n", JsonString(key), ": ", CompactJson(value));
  }
  absl::StrAppend(&text, "}\n");
  out_->Write(text);
}

}  // namespace qmig
