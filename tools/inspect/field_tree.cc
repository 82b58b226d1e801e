#include "tools/inspect/field_tree.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

bool IsOneOf(absl::string_view type, absl::Span<const absl::string_view> set) {
  for (absl::string_view candidate : set) {
    if (candidate == type) return true;
  }
  return false;
}

std::string HexBytes(absl::Span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 3);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out.push_back(' ');
    absl::StrAppendFormat(&out, "%02x", bytes[i]);
  }
  return out;
}

}  // namespace

nlohmann::ordered_json FormatFieldValue(absl::string_view type, uint64_t size,
                                        absl::Span<const uint8_t> bytes) {
  if (bytes.size() != size) return absl::StrCat("(", size, " bytes, not shown)");
  const bool is_signed = IsOneOf(type, kSignedTypes);
  if ((is_signed || IsOneOf(type, kUnsignedTypes)) && size >= 1 && size <= 8) {
    uint64_t value = 0;
    for (uint8_t byte : bytes) value = value << 8 | byte;
    std::string hex = absl::StrFormat("0x%0*x", static_cast<int>(size * 2), value);
    const bool negative = is_signed && (bytes[0] & 0x80) != 0;
    if (!negative) return hex;
    // Sign-extend the big-endian value to 64 bits.
    const int unused_bits = static_cast<int>(64 - size * 8);
    const int64_t signed_value = unused_bits == 0
                                     ? static_cast<int64_t>(value)
                                     : static_cast<int64_t>(value << unused_bits) >> unused_bits;
    return absl::StrCat(hex, " (", signed_value, ")");
  }
  if (type == "bool" && !bytes.empty()) return bytes[0] != 0;
  return HexBytes(bytes);
}

void FieldTreeBuilder::Reset() {
  open_.clear();
  open_.emplace_back();
  opaque_depth_ = 0;
}

void FieldTreeBuilder::Place(nlohmann::ordered_json& container, const std::string& name,
                             std::optional<uint64_t> index, nlohmann::ordered_json value) {
  if (!index.has_value()) {
    container[name] = std::move(value);  // a repeated name keeps its first position
    return;
  }
  nlohmann::ordered_json& list = container[name];
  if (!list.is_array()) list = nlohmann::ordered_json::array();
  list.push_back(std::move(value));
}

void FieldTreeBuilder::OnField(const VmstateFieldView& field) {
  if (opaque_depth_ > 0) {
    for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
      if (!it->opaque) continue;
      std::vector<uint8_t>& bytes = it->bytes;
      bytes.insert(bytes.end(), field.bytes.begin(), field.bytes.end());
      break;
    }
    return;
  }
  Place(open_.back().value, std::string(field.name), field.index,
        FormatFieldValue(field.type, field.size, field.bytes));
}

void FieldTreeBuilder::OnStructBegin(const VmstateFieldView& field) {
  Open open{std::string(field.name), field.index};
  // Inside an opaque container everything is bytes of the outermost one.
  open.opaque =
      opaque_depth_ == 0 && style_ == FieldTreeStyle::kAnalyzeMigration && field.type != "struct";
  if (open.opaque || opaque_depth_ > 0) ++opaque_depth_;
  open_.push_back(std::move(open));
}

void FieldTreeBuilder::Close() {
  if (open_.size() < 2) return;
  Open done = std::move(open_.back());
  open_.pop_back();
  if (opaque_depth_ > 0) --opaque_depth_;
  if (opaque_depth_ > 0) return;  // its bytes went to the enclosing opaque one
  if (done.opaque) done.value = HexBytes(done.bytes);
  Place(open_.back().value, done.name, done.index, std::move(done.value));
}

void FieldTreeBuilder::OnStructEnd() { Close(); }

void FieldTreeBuilder::OnSubsectionBegin(absl::string_view name, uint32_t, uint64_t) {
  if (opaque_depth_ > 0) ++opaque_depth_;
  open_.push_back(Open{std::string(name), std::nullopt});
}

void FieldTreeBuilder::OnSubsectionEnd() { Close(); }

nlohmann::ordered_json FieldTreeBuilder::Take() {
  while (open_.size() > 1) Close();
  nlohmann::ordered_json tree = std::move(open_[0].value);
  Reset();
  return tree;
}

}  // namespace qmig
