#include "parser/vmstate/interpreter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// The marker QEMU writes for a NULL pointer field.
constexpr uint8_t kNullPointerMarker = 0x30;

class Decoder {
 public:
  Decoder(Reader& reader, ParseContext& context, VmstateFieldVisitor* visitor,
          VmstateDecodeStats* stats)
      : reader_(reader), context_(context), visitor_(visitor), stats_(stats) {}

  absl::Status Vmsd(const VmsdDescription& vmsd, const std::string& prefix, size_t depth) {
    if (depth > kMaxVmstateDepth) {
      return context_.Fail(FindingCode::kSchemaInvalid, reader_.offset(),
                           absl::StrCat("description nests deeper than ", kMaxVmstateDepth));
    }
    for (const VmstateField& field : vmsd.fields) {
      uint64_t count = field.array_len > 0 ? field.array_len : 1;
      // Elements that occupy no bytes need no decoding; iterating them would
      // let a description make the loop as long as it likes.
      if (field.size == 0) count = std::min<uint64_t>(count, 1);
      for (uint64_t i = 0; i < count; ++i) {
        std::string name = prefix.empty() ? field.name : absl::StrCat(prefix, ".", field.name);
        std::optional<uint64_t> index = field.index;
        if (field.array_len > 0) {
          absl::StrAppend(&name, "[", i, "]");
          index = i;
        }
        QMIG_RETURN_IF_ERROR(Field(field, name, index, depth));
      }
    }
    for (const VmsdDescription& sub : vmsd.subsections) {
      QMIG_RETURN_IF_ERROR(Subsection(sub, prefix, depth));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Field(const VmstateField& field, const std::string& path,
                     std::optional<uint64_t> index, size_t depth) {
    uint64_t start = reader_.offset();
    VmstateFieldView view{path, field.name, field.type, index, start, field.size, {}};
    if (field.sub != nullptr) {
      if (visitor_ != nullptr) visitor_->OnStructBegin(view);
      QMIG_RETURN_IF_ERROR(Vmsd(*field.sub, path, depth + 1));
      if (visitor_ != nullptr) visitor_->OnStructEnd();
      uint64_t used = reader_.offset() - start;
      if (used != field.size) {
        return context_.Fail(
            FindingCode::kDeviceLength, start,
            absl::StrCat("struct occupies ", used, " bytes, its description says ", field.size),
            EscapeName(path));
      }
      return absl::OkStatus();
    }
    uint64_t width = FixedWidthOfType(field.type);
    if (width != 0 && width != field.size) {
      return context_.Fail(FindingCode::kSchemaInvalid, start,
                           absl::StrCat("type ", EscapeName(field.type), " is ", width,
                                        " bytes but the description says ", field.size),
                           EscapeName(path));
    }
    ++stats_->fields;
    if (field.size > kMaxContiguousView) {
      QMIG_RETURN_IF_ERROR(reader_.Skip(field.size));
      if (visitor_ != nullptr) visitor_->OnField(view);
      return absl::OkStatus();
    }
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, reader_.Bytes(field.size));
    CheckValue(field, path, start, bytes);
    view.bytes = bytes;
    if (visitor_ != nullptr) visitor_->OnField(view);
    return absl::OkStatus();
  }

  void CheckValue(const VmstateField& field, const std::string& path, uint64_t offset,
                  absl::Span<const uint8_t> bytes) {
    if (field.type == "nullptr" && !bytes.empty() && bytes[0] != kNullPointerMarker) {
      context_.Report(FindingCode::kDeviceValue, offset,
                      absl::StrCat("null-pointer marker is 0x", absl::Hex(bytes[0]), ", not 0x30"),
                      EscapeName(path));
    } else if (field.type == "bool" && !bytes.empty() && bytes[0] > 1) {
      context_.Report(FindingCode::kDeviceValue, offset,
                      absl::StrCat("bool holds ", bytes[0], "; QEMU stores it unchecked"),
                      EscapeName(path), /*qemu_accepts=*/true);
    }
  }

  absl::Status Subsection(const VmsdDescription& sub, const std::string& prefix, size_t depth) {
    uint64_t start = reader_.offset();
    std::string path = prefix.empty() ? absl::StrCat("/", sub.vmsd_name)
                                      : absl::StrCat(prefix, "/", sub.vmsd_name);
    QMIG_ASSIGN_OR_RETURN(uint8_t marker, reader_.U8());
    if (marker != static_cast<uint8_t>(SectionType::kSubsection)) {
      return context_.Fail(FindingCode::kDeviceSubsection, start,
                           absl::StrCat("expected subsection '", EscapeName(sub.vmsd_name),
                                        "' (0x05), found byte 0x", absl::Hex(marker)),
                           EscapeName(path));
    }
    QMIG_ASSIGN_OR_RETURN(std::string name, reader_.CountedString());
    if (name != sub.vmsd_name) {
      return context_.Fail(
          FindingCode::kDeviceSubsection, start,
          absl::StrCat("subsection is '", EscapeName(name), "', the description expects '",
                       EscapeName(sub.vmsd_name), "'"),
          EscapeName(path));
    }
    QMIG_ASSIGN_OR_RETURN(uint32_t version, reader_.Be32());
    if (version != sub.version) {
      context_.Report(
          FindingCode::kDeviceVersion, start,
          absl::StrCat("subsection version ", version, ", description says ", sub.version),
          EscapeName(path));
    }
    ++stats_->subsections;
    if (visitor_ != nullptr) visitor_->OnSubsectionBegin(name, version, start);
    QMIG_RETURN_IF_ERROR(Vmsd(sub, path, depth + 1));
    if (visitor_ != nullptr) visitor_->OnSubsectionEnd();
    return absl::OkStatus();
  }

  Reader& reader_;
  ParseContext& context_;
  VmstateFieldVisitor* visitor_;
  VmstateDecodeStats* stats_;
};

}  // namespace

uint64_t FixedWidthOfType(absl::string_view type) {
  if (type == "bool" || type == "int8" || type == "uint8" || type == "uint8 equal" ||
      type == "nullptr") {
    return 1;
  }
  if (type == "int16" || type == "uint16" || type == "uint16 equal") return 2;
  if (type == "int32" || type == "uint32" || type == "int32 equal" || type == "uint32 equal" ||
      type == "int32 le") {
    return 4;
  }
  if (type == "int64" || type == "uint64" || type == "int64 equal" || type == "uint64 equal" ||
      type == "float64" || type == "CPU_Double_U" || type == "timer") {
    return 8;
  }
  return 0;
}

absl::Status DecodeVmstate(Reader& reader, const VmsdDescription& description,
                           ParseContext& context, VmstateFieldVisitor* visitor,
                           VmstateDecodeStats* stats) {
  VmstateDecodeStats local;
  Decoder decoder(reader, context, visitor, stats != nullptr ? stats : &local);
  return decoder.Vmsd(description, "", 0);
}

}  // namespace qmig
