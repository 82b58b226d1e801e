#include "tools/inspect/field_writer.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Types analyze-migration.py reads as signed or unsigned integers. Note that
// it reads "uint8 equal" and "uint16 equal" as signed, and "int32 le" big
// endian; qmig shows them the same way so that outputs compare equal.
constexpr std::array<absl::string_view, 9> kSignedTypes = {
    "int8",  "int16",       "int32",       "int32 equal", "int32 le",
    "int64", "int64 equal", "uint8 equal", "uint16 equal"};
constexpr std::array<absl::string_view, 5> kUnsignedTypes = {"uint8", "uint16", "uint32",
                                                             "uint32 equal", "uint64"};

// Written text is handed on in pieces of about this size.
constexpr size_t kFlushBytes = size_t{64} << 10;

bool IsOneOf(absl::string_view type, absl::Span<const absl::string_view> set) {
  for (absl::string_view candidate : set) {
    if (candidate == type) return true;
  }
  return false;
}

constexpr char kHexDigits[] = "0123456789abcdef";

void AppendHexBytes(absl::Span<const uint8_t> bytes, bool leading_space, std::string* out) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0 || leading_space) out->push_back(' ');
    out->push_back(kHexDigits[bytes[i] >> 4]);
    out->push_back(kHexDigits[bytes[i] & 0xf]);
  }
}

// A value as text, and whether it is a bool (written bare in JSON) rather
// than a string. The text is ASCII without quotes or backslashes.
struct ValueText {
  std::string text;
  bool is_bool = false;
};

ValueText FormatValue(absl::string_view type, uint64_t size, absl::Span<const uint8_t> bytes) {
  if (bytes.size() != size) return {absl::StrCat("(", size, " bytes, not shown)")};
  const bool is_signed = IsOneOf(type, kSignedTypes);
  if ((is_signed || IsOneOf(type, kUnsignedTypes)) && size >= 1 && size <= 8) {
    uint64_t value = 0;
    for (uint8_t byte : bytes) value = value << 8 | byte;
    std::string hex = absl::StrFormat("0x%0*x", static_cast<int>(size * 2), value);
    const bool negative = is_signed && (bytes[0] & 0x80) != 0;
    if (!negative) return {std::move(hex)};
    // Sign-extend the big-endian value to 64 bits.
    const int unused_bits = static_cast<int>(64 - size * 8);
    const int64_t signed_value = unused_bits == 0
                                     ? static_cast<int64_t>(value)
                                     : static_cast<int64_t>(value << unused_bits) >> unused_bits;
    return {absl::StrCat(hex, " (", signed_value, ")")};
  }
  if (type == "bool" && !bytes.empty()) return {bytes[0] != 0 ? "true" : "false", true};
  ValueText out;
  out.text.reserve(bytes.size() * 3);
  AppendHexBytes(bytes, false, &out.text);
  return out;
}

}  // namespace

nlohmann::ordered_json FormatFieldValue(absl::string_view type, uint64_t size,
                                        absl::Span<const uint8_t> bytes) {
  ValueText value = FormatValue(type, size, bytes);
  if (value.is_bool) return value.text == "true";
  return value.text;
}

std::string JsonString(absl::string_view text) {
  bool plain = true;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) return absl::StrCat("\"", text, "\"");
  return nlohmann::ordered_json(std::string(text))
      .dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::ordered_json::error_handler_t::replace);
}

void FieldWriter::Begin(TextOut* out, int depth, std::string indent) {
  out_ = out;
  base_depth_ = depth;
  indent_ = std::move(indent);
  open_.assign(1, Container{});
  open_[0].depth = depth;
  opaque_depth_ = 0;
  held_.clear();
  values_ = 0;
  if (json()) Put("{");
}

void FieldWriter::Put(absl::string_view text) {
  held_.append(text.data(), text.size());
  if (held_.size() >= kFlushBytes) Flush();
}

void FieldWriter::Flush() {
  if (out_ != nullptr && !held_.empty()) out_->Write(held_);
  held_.clear();
}

void FieldWriter::Newline(int depth) {
  if (format_ != FieldFormat::kPrettyJson) return;
  held_.push_back('\n');
  held_.append(static_cast<size_t>(depth) * 4, ' ');
}

void FieldWriter::CloseArray(Container& container) {
  if (!container.array.has_value()) return;
  if (json()) {
    Newline(container.depth + 1);
    Put("]");
  }
  container.array.reset();
}

void FieldWriter::StartMember(absl::string_view name, std::optional<uint64_t> index) {
  Container& container = open_.back();
  const bool continues_array =
      index.has_value() && container.array.has_value() && *container.array == name;
  if (!continues_array) CloseArray(container);
  if (json()) {
    if (continues_array) {
      Put(",");
      Newline(container.depth + 2);
    } else {
      if (container.members > 0) Put(",");
      Newline(container.depth + 1);
      Put(JsonString(name));
      Put(format_ == FieldFormat::kPrettyJson ? ": " : ":");
      if (index.has_value()) {
        Put("[");
        Newline(container.depth + 2);
      }
    }
  } else {
    value_path_ = container.path;
    if (!value_path_.empty()) value_path_.push_back('.');
    value_path_.append(IsPlainName(name) ? std::string(name) : EscapeName(name));
    if (index.has_value()) {
      absl::StrAppend(&value_path_, "[", continues_array ? container.elements : 0, "]");
    }
  }
  if (continues_array) {
    ++container.elements;
  } else {
    ++container.members;
    if (index.has_value()) {
      container.array = std::string(name);
      container.elements = 1;
    }
  }
}

void FieldWriter::StartTextValue() {
  if (format_ == FieldFormat::kText) {
    Put(indent_);
    if (value_path_.size() <= kMaxShownPath) {
      Put(value_path_);
    } else {
      const absl::string_view path = value_path_;
      Put(path.substr(0, kMaxShownPath / 2));
      Put("...");
      Put(path.substr(path.size() - kMaxShownPath / 2));
    }
    Put(" = ");
  } else {
    Put(value_path_);
    Put("\t");
  }
}

void FieldWriter::OnField(const VmstateFieldView& field) {
  if (opaque_depth_ > 0) {
    std::string hex;
    AppendHexBytes(field.bytes, opaque_bytes_ > 0, &hex);
    opaque_bytes_ += field.bytes.size();
    Put(hex);
    return;
  }
  ++values_;
  ValueText value = FormatValue(field.type, field.size, field.bytes);
  StartMember(field.name, field.index);
  if (json()) {
    if (value.is_bool) {
      Put(value.text);
    } else {
      Put("\"");
      Put(value.text);
      Put("\"");
    }
    return;
  }
  StartTextValue();
  Put(value.text);
  Put("\n");
}

void FieldWriter::OpenContainer(absl::string_view name, std::optional<uint64_t> index,
                                bool opaque) {
  const int parent_depth = open_.back().depth;
  StartMember(name, index);
  Container container;
  container.depth = parent_depth + (index.has_value() ? 2 : 1);
  container.opaque = opaque;
  if (opaque) {
    ++values_;
    opaque_depth_ = 1;
    opaque_bytes_ = 0;
    if (json()) {
      Put("\"");
    } else {
      StartTextValue();
    }
  } else {
    if (json()) Put("{");
    container.path = value_path_;
  }
  open_.push_back(std::move(container));
}

void FieldWriter::OnStructBegin(const VmstateFieldView& field) {
  if (opaque_depth_ > 0) {
    ++opaque_depth_;
    return;
  }
  // Inside an opaque container everything is bytes of the outermost one.
  OpenContainer(field.name, field.index,
                style_ == FieldTreeStyle::kAnalyzeMigration && field.type != "struct");
}

void FieldWriter::OnSubsectionBegin(absl::string_view name, uint32_t, uint64_t) {
  if (opaque_depth_ > 0) {
    ++opaque_depth_;
    return;
  }
  OpenContainer(name, std::nullopt, /*opaque=*/false);
}

void FieldWriter::CloseContainer() {
  if (opaque_depth_ > 1) {
    --opaque_depth_;
    return;
  }
  if (open_.size() < 2) return;
  Container& container = open_.back();
  if (container.opaque) {
    opaque_depth_ = 0;
    Put(json() ? "\"" : "\n");
  } else if (json()) {
    CloseArray(container);
    if (container.members > 0) Newline(container.depth);
    Put("}");
  }
  open_.pop_back();
}

void FieldWriter::OnStructEnd() { CloseContainer(); }

void FieldWriter::OnSubsectionEnd() { CloseContainer(); }

void FieldWriter::End() {
  while (open_.size() > 1) {
    if (opaque_depth_ > 1) opaque_depth_ = 1;
    CloseContainer();
  }
  if (json() && !open_.empty()) {
    Container& body = open_[0];
    CloseArray(body);
    if (body.members > 0) Newline(body.depth);
    Put("}");
  }
  open_.clear();
  Flush();
}

}  // namespace qmig
