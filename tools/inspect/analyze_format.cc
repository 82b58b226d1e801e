#include "tools/inspect/analyze_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/vmstate/bounded_json.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Written text is handed on in pieces of about this size.
constexpr size_t kFlushBytes = size_t{64} << 10;

std::string Indent(int depth) { return std::string(static_cast<size_t>(depth) * 4, ' '); }

bool OpensSection(const Record& record) {
  if (record.kind != RecordKind::kRam && record.kind != RecordKind::kDevice &&
      record.kind != RecordKind::kIterable) {
    return false;
  }
  const nlohmann::ordered_json& type = record.details["type"];
  return type == "START" || type == "FULL";
}

// SAX events written as Python's json module writes them with indent=4.
class PrettyJsonSax {
 public:
  using number_integer_t = nlohmann::ordered_json::number_integer_t;
  using number_unsigned_t = nlohmann::ordered_json::number_unsigned_t;
  using number_float_t = nlohmann::ordered_json::number_float_t;
  using string_t = nlohmann::ordered_json::string_t;
  using binary_t = nlohmann::ordered_json::binary_t;

  explicit PrettyJsonSax(TextOut* out) : out_(out) {}

  bool null() { return Scalar("null"); }
  bool boolean(bool value) { return Scalar(value ? "true" : "false"); }
  bool number_integer(number_integer_t value) { return Scalar(absl::StrCat(value)); }
  bool number_unsigned(number_unsigned_t value) { return Scalar(absl::StrCat(value)); }
  bool number_float(number_float_t value, const string_t&) {
    return Scalar(nlohmann::ordered_json(value).dump());
  }
  bool string(string_t& value) { return Scalar(JsonString(value)); }
  bool binary(binary_t&) { return Scalar("null"); }  // JSON text has none
  bool start_object(std::size_t) { return Open('{'); }
  bool end_object() { return Close('}'); }
  bool start_array(std::size_t) { return Open('['); }
  bool end_array() { return Close(']'); }
  bool key(string_t& key) {
    Level& level = levels_.back();
    if (level.members++ > 0) held_.push_back(',');
    held_.push_back('\n');
    held_ += Indent(static_cast<int>(levels_.size()));
    held_ += JsonString(key);
    held_ += ": ";
    return true;
  }
  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& /*token*/, const Exception& error) {
    error_ = JsonSyntaxError(position, error.what());
    return false;
  }

  void Flush() {
    if (!held_.empty()) out_->Write(held_);
    held_.clear();
  }
  const absl::Status& error() const { return error_; }

 private:
  struct Level {
    bool array = false;
    size_t members = 0;
  };

  // Separator and indentation before a value in an array; an object's key
  // wrote them already.
  void BeforeValue() {
    if (levels_.empty() || !levels_.back().array) return;
    if (levels_.back().members++ > 0) held_.push_back(',');
    held_.push_back('\n');
    held_ += Indent(static_cast<int>(levels_.size()));
  }
  bool Scalar(absl::string_view text) {
    BeforeValue();
    held_.append(text.data(), text.size());
    if (held_.size() >= kFlushBytes) Flush();
    return true;
  }
  bool Open(char bracket) {
    if (levels_.size() >= static_cast<size_t>(kMaxDescriptionNesting)) {
      error_ = JsonNestingError(kMaxDescriptionNesting);
      return false;
    }
    BeforeValue();
    held_.push_back(bracket);
    levels_.push_back(Level{bracket == '['});
    return true;
  }
  bool Close(char bracket) {
    const bool empty = levels_.back().members == 0;
    levels_.pop_back();
    if (!empty) {
      held_.push_back('\n');
      held_ += Indent(static_cast<int>(levels_.size()));
    }
    held_.push_back(bracket);
    return true;
  }

  TextOut* out_;
  std::vector<Level> levels_;
  std::string held_;
  absl::Status error_;
};

}  // namespace

bool AnalyzeMigrationWriter::StartSection(const Record& record) {
  if (!OpensSection(record)) return false;
  const nlohmann::ordered_json& d = record.details;
  const std::string key =
      absl::StrCat(d["name"].get<std::string>(), " (", d["section_id"].get<uint32_t>(), ")");
  out_->Write(absl::StrCat(any_section_ ? ",\n" : "{\n", Indent(1), JsonString(key), ": "));
  any_section_ = true;
  return true;
}

VmstateFieldVisitor* AnalyzeMigrationWriter::OnDeviceFields(const Record& record) {
  if (!StartSection(record)) return nullptr;
  fields_of_ = record.offset;
  fields_.Begin(out_, /*depth=*/1);
  return &fields_;
}

void AnalyzeMigrationWriter::OnRecord(const Record& record) {
  if (fields_of_.has_value() && *fields_of_ == record.offset) {
    fields_.End();
    fields_of_.reset();
    return;
  }
  if (!StartSection(record)) return;
  if (record.kind != RecordKind::kRam) {
    out_->Write("{}");
    return;
  }
  std::string text = absl::StrCat("{\n", Indent(2), "\"section sizes\": {");
  const nlohmann::ordered_json& d = record.details;
  bool any = false;
  if (d.contains("mem_size")) {
    for (const nlohmann::ordered_json& block : d["mem_size"]) {
      absl::StrAppend(&text, any ? "," : "", "\n", Indent(3),
                      JsonString(block["name"].get<std::string>()), ": ",
                      absl::StrFormat("\"0x%016x\"", block["length"].get<uint64_t>()));
      any = true;
    }
  }
  absl::StrAppend(&text, any ? absl::StrCat("\n", Indent(2)) : "", "}\n", Indent(1), "}");
  out_->Write(text);
}

void AnalyzeMigrationWriter::Finish() { out_->Write(any_section_ ? "\n}\n" : "{}\n"); }

std::string AnalyzeMigrationText(const nlohmann::ordered_json& value) {
  // nlohmann's pretty printer with a 4-space indent and ASCII escapes writes
  // the same bytes as Python's encoder for objects, arrays, strings and
  // booleans, the only values in these views.
  return value.dump(4, ' ', /*ensure_ascii=*/true,
                    nlohmann::ordered_json::error_handler_t::replace) +
         "\n";
}

absl::Status WritePrettyJson(absl::string_view json, TextOut* out) {
  PrettyJsonSax sax(out);
  const bool ok = nlohmann::ordered_json::sax_parse(json.begin(), json.end(), &sax);
  sax.Flush();
  if (!ok) {
    return sax.error().ok() ? absl::InvalidArgumentError("not valid JSON") : sax.error();
  }
  out->Write("\n");
  return absl::OkStatus();
}

}  // namespace qmig
