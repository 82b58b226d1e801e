#include "parser/vmstate/description.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/numeric/bits.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "parser/vmstate/bounded_json.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

// The document is read once, as nlohmann SAX events, straight into a
// VmDescription: no JSON tree is built. Every stream with a VMDESCRIPTION
// trailer comes through here, and a tree costs an allocation per JSON value.
//
// JSON objects are unordered, so nothing is decided while an object is open:
// each open object or array is a Frame that gathers the members qmig knows,
// and when it closes its content is checked, in a fixed order, and handed to
// the frame that holds it. A problem found inside a part is placed relative to
// that part ("" for the part itself, ".field", "/subsection"), and each part
// it is handed up through puts its own place in front, so a message names
// the whole path however the members were ordered. Duplicate members behave
// as in nlohmann's DOM: the last one counts, and a repeated member qmig reads
// is a warning. Names from the document are shown through EscapeName.

namespace qmig {
namespace {

// The members qmig reads. Anything else is skipped unread. The ones that
// may hold text come first.
enum Key : uint8_t {
  kName,
  kType,
  kVmsdName,
  kDumpName,  // "Name", in -dump-vmstate output
  kTextKeyCount,
  kSize = kTextKeyCount,
  kArrayLen,
  kIndex,
  kVersion,
  kInstanceId,
  kPageSize,
  kVersionId,         // "version_id", in -dump-vmstate output
  kMinimumVersionId,  // "minimum_version_id", ditto
  kScalarKeyCount,
  // Members whose value is a part of its own.
  kFields = kScalarKeyCount,
  kSubsections,
  kStruct,
  kConfiguration,
  kDevices,
  kOtherKey,
};

Key KeyOf(absl::string_view name) {
  static constexpr std::pair<absl::string_view, Key> kKeys[] = {
      {"name", kName},
      {"type", kType},
      {"vmsd_name", kVmsdName},
      {"Name", kDumpName},
      {"size", kSize},
      {"array_len", kArrayLen},
      {"index", kIndex},
      {"version", kVersion},
      {"instance_id", kInstanceId},
      {"page_size", kPageSize},
      {"version_id", kVersionId},
      {"minimum_version_id", kMinimumVersionId},
      {"fields", kFields},
      {"subsections", kSubsections},
      {"struct", kStruct},
      {"configuration", kConfiguration},
      {"devices", kDevices},
  };
  for (const auto& [text, key] : kKeys) {
    if (text == name) return key;
  }
  return kOtherKey;
}

// Every field type QEMU writes: the VMStateInfo names of 7.2 to 10.2, and
// what vmfield_get_type_name() writes for structs and info-less fields.
bool IsQemuFieldType(absl::string_view type) {
  static constexpr absl::string_view kTypes[] = {
      "CPU_Double_U",
      "avr",
      "bitmap",
      "blob",
      "bool",
      "buffer",
      "capability",
      "cpsr",
      "cpu/altivec/vscr",
      "eind",
      "fd",
      "fpcr",
      "fpr",
      "fpscr",
      "fpsr",
      "fsr",
      "gtree",
      "int16",
      "int32",
      "int32 equal",
      "int32 le",
      "int32_as_uint16",
      "int64",
      "int64 equal",
      "int8",
      "irqs",
      "msix state",
      "msr",
      "nullptr",
      "pci config",
      "pci irq state",
      "powered_off",
      "psr",
      "pstate64",
      "psw",
      "qlist",
      "qtailq",
      "rampD",
      "rampX",
      "rampY",
      "rampZ",
      "scsi-requests",
      "shpc",
      "slbe",
      "sr",
      "sreg",
      "struct",
      "timer",
      "tlb entry",
      "tlb_entry",
      "tmp",
      "uint16",
      "uint16 equal",
      "uint16_from_uint8",
      "uint32",
      "uint32 equal",
      "uint64",
      "uint8",
      "uint8 equal",
      "unknown",
      "unused_buffer",
      "usb-redir-bufpq",
      "usb-redir-packet-id-q",
      "usb-redir-parser",
      "vdagent/cbinfos",
      "virtio",
      "virtio-fs back-end state",
      "virtio-gpu",
      "virtio-net vhost-user backend state",
      "virtqueue_extra_state",
      "vsr",
      "vstruct",
      "xcc",
  };
  for (absl::string_view known : kTypes) {
    if (known == type) return true;
  }
  return false;
}

// A member's value, kept only as far as qmig cares: a string (its text is
// kept for the text keys), a non-negative integer, or anything else (which
// every reader refuses).
struct Scalar {
  enum Kind : uint8_t { kAbsent, kString, kUnsigned, kOther };
  Kind kind = kAbsent;
  uint64_t number = 0;
};

// A problem inside a part of the document; `where` is relative to the part
// that holds it.
struct Problem {
  std::string where;
  std::string what;
};

Problem Within(absl::string_view place, Problem inner) {
  inner.where = absl::StrCat(place, inner.where);
  return inner;
}

std::string NotUnsigned(absl::string_view key) {
  return absl::StrCat("\"", key, "\" is missing or not a non-negative integer");
}

std::string NotString(absl::string_view key) {
  return absl::StrCat("\"", key, "\" is missing or not a string");
}

absl::Status ToStatus(absl::string_view base, const Problem& problem) {
  std::string where = absl::StrCat(base, problem.where);
  if (where.empty()) return absl::InvalidArgumentError(problem.what);
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", problem.what));
}

// What an open object or array is, decided by where it sits.
enum class Role : uint8_t {
  kRoot,
  kRootMember,     // an object member of the root, other than the configuration
  kConfiguration,  // root "configuration": a vmsd
  kDevice,         // an element of root "devices": a vmsd with a name and instance
  kField,          // an element of "fields": a field, and a vmsd when it is a vstruct
  kVmsd,           // a field's "struct", or an element of "subsections"
  kFieldsArray,
  kSubsectionsArray,
  kDevicesArray,
};

bool DescribesVmsd(Role role) {
  return role == Role::kConfiguration || role == Role::kDevice || role == Role::kField ||
         role == Role::kVmsd;
}

// A member holding a part of its own ("fields", "struct", ...): not there, of
// the wrong JSON type, or read, with the first problem found inside it.
struct Part {
  enum State : uint8_t { kAbsent, kWrongType, kRead };
  State state = kAbsent;
  std::unique_ptr<Problem> problem;  // null unless something is wrong

  void Set(State new_state) {
    state = new_state;
    problem.reset();
  }
};

// A root member as -dump-vmstate output reads it; only used when the root
// has "vmschkmachine".
struct DumpEntry {
  std::string key;
  bool is_object = false;
  Scalar name, version_id, minimum_version_id;
  std::string name_text;
};

struct Frame {
  Role role = Role::kRoot;
  Key key = kOtherKey;     // the member whose value comes next
  uint32_t keys_seen = 0;  // bit per Key read in this object, to spot a repeat
  size_t elements = 0;     // an array's object elements so far
  Scalar scalars[kScalarKeyCount];
  std::string texts[kTextKeyCount];

  // Parts this object holds, and what was read from them.
  Part fields, subsections, structure, configuration, devices;
  std::vector<VmstateField> field_list;
  std::vector<VmsdDescription> subsection_list;
  std::unique_ptr<VmsdDescription> struct_vmsd;

  // An array's elements as they close; the first problem stops the collection.
  std::vector<DeviceDescription> device_list;
  std::unique_ptr<Problem> problem;

  // The root's: the current member's name, and each member as a dump entry.
  std::string member;
  std::vector<DumpEntry> dump_entries;
  std::unique_ptr<VmsdDescription> configuration_vmsd;

  void Reset(Role new_role) {
    role = new_role;
    key = kOtherKey;
    keys_seen = 0;
    elements = 0;
    for (Scalar& scalar : scalars) scalar.kind = Scalar::kAbsent;
    for (Part* part : {&fields, &subsections, &structure, &configuration, &devices}) {
      part->Set(Part::kAbsent);
    }
    field_list.clear();
    subsection_list.clear();
    struct_vmsd.reset();
    device_list.clear();
    problem.reset();
  }

  bool Has(Key k) const { return scalars[k].kind != Scalar::kAbsent; }
  bool IsString(Key k) const { return scalars[k].kind == Scalar::kString; }
  bool IsUnsigned(Key k) const { return scalars[k].kind == Scalar::kUnsigned; }
  uint64_t Number(Key k) const { return scalars[k].number; }
  const std::string& Text(Key k) const { return texts[k]; }
};

std::unique_ptr<Problem> AsPointer(std::optional<Problem> problem) {
  if (!problem) return nullptr;
  return std::make_unique<Problem>(std::move(*problem));
}

// Hands `problem` to an array frame unless it already holds one.
void Keep(Frame& array, Problem problem) {
  if (!array.problem) array.problem = std::make_unique<Problem>(std::move(problem));
}

// The vmsd a frame describes: its name, version, fields and subsections.
std::optional<Problem> FinishVmsd(Frame& frame, VmsdDescription& vmsd) {
  if (frame.IsString(kVmsdName)) vmsd.vmsd_name = frame.Text(kVmsdName);
  if (frame.Has(kVersion)) {
    if (!frame.IsUnsigned(kVersion)) return Problem{"", NotUnsigned("version")};
    if (frame.Number(kVersion) > 0xffffffffu) return Problem{"", "\"version\" too large"};
    vmsd.version = static_cast<uint32_t>(frame.Number(kVersion));
  }
  if (frame.fields.state == Part::kWrongType) return Problem{"", "\"fields\" is not an array"};
  if (frame.fields.problem) return std::move(*frame.fields.problem);
  vmsd.fields = std::move(frame.field_list);
  if (frame.subsections.state == Part::kWrongType) {
    return Problem{"", "\"subsections\" is not an array"};
  }
  if (frame.subsections.problem) return std::move(*frame.subsections.problem);
  vmsd.subsections = std::move(frame.subsection_list);
  return std::nullopt;
}

// A field: its size and layout, and for a struct or vstruct its element's
// vmsd. Problems are relative to the vmsd holding the field.
std::optional<Problem> FinishField(Frame& frame, VmstateField& field) {
  if (!frame.IsString(kName)) return Problem{"", NotString("name")};
  field.name = frame.Text(kName);
  // The field's place, built only for a problem.
  const auto here = [&field] { return absl::StrCat(".", EscapeName(field.name)); };
  field.type = frame.IsString(kType) ? frame.Text(kType) : "unknown";
  if (!frame.IsUnsigned(kSize)) return Problem{here(), NotUnsigned("size")};
  field.size = frame.Number(kSize);
  if (frame.Has(kArrayLen)) {
    if (!frame.IsUnsigned(kArrayLen)) return Problem{here(), NotUnsigned("array_len")};
    const uint64_t array_len = frame.Number(kArrayLen);
    if (array_len == 0 || array_len > kMaxDescribedArrayLength) {
      return Problem{here(), absl::StrCat("\"array_len\" ", array_len, " outside 1..",
                                          kMaxDescribedArrayLength)};
    }
    field.array_len = array_len;
  }
  if (frame.Has(kIndex)) {
    if (!frame.IsUnsigned(kIndex)) return Problem{here(), NotUnsigned("index")};
    field.index = frame.Number(kIndex);
  }
  if (frame.structure.state != Part::kAbsent) {
    if (frame.structure.state == Part::kWrongType) {
      return Problem{here(), "description is not an object"};
    }
    if (frame.structure.problem) return Within(here(), std::move(*frame.structure.problem));
    field.sub = std::make_shared<VmsdDescription>(std::move(*frame.struct_vmsd));
  } else if (frame.fields.state != Part::kAbsent) {
    // VMS_VSTRUCT: the element's description sits in the field itself.
    VmsdDescription vmsd;
    if (std::optional<Problem> problem = FinishVmsd(frame, vmsd)) {
      return Within(here(), std::move(*problem));
    }
    field.sub = std::make_shared<VmsdDescription>(std::move(vmsd));
  }
  return std::nullopt;
}

// Device problems carry their whole place, since a device's name is known
// only once it closes.
std::optional<Problem> FinishDevice(Frame& frame, DeviceDescription& device) {
  if (!frame.IsString(kName)) return Problem{"device", NotString("name")};
  device.name = frame.Text(kName);
  const auto where = [&device] { return absl::StrCat("device '", EscapeName(device.name), "'"); };
  if (!frame.IsUnsigned(kInstanceId)) return Problem{where(), NotUnsigned("instance_id")};
  if (frame.Number(kInstanceId) > 0xffffffffu) {
    return Problem{where(), "\"instance_id\" too large"};
  }
  device.instance_id = static_cast<uint32_t>(frame.Number(kInstanceId));
  device.legacy = !frame.Has(kVmsdName);
  if (std::optional<Problem> problem = FinishVmsd(frame, device.vmsd)) {
    return Within(where(), std::move(*problem));
  }
  return std::nullopt;
}

// Appends the element `closed` describes to its array, or keeps the problem
// that stops the array.
template <typename Element>
void CloseElement(Frame& closed, Frame& array, std::vector<Element>& elements,
                  std::optional<Problem> (*finish)(Frame&, Element&)) {
  Element element;
  if (std::optional<Problem> problem = finish(closed, element)) {
    Keep(array, std::move(*problem));
  } else {
    elements.push_back(std::move(element));
  }
}

// nlohmann SAX handler building a VmDescription.
class DescriptionBuilder {
 public:
  using number_integer_t = nlohmann::json::number_integer_t;
  using number_unsigned_t = nlohmann::json::number_unsigned_t;
  using number_float_t = nlohmann::json::number_float_t;
  using string_t = nlohmann::json::string_t;
  using binary_t = nlohmann::json::binary_t;

  // Room for the nesting QEMU's descriptions reach, so frames are not moved
  // as the stack grows.
  explicit DescriptionBuilder(int max_depth) : max_depth_(max_depth) { frames_.reserve(16); }

  bool null() { return Value(Scalar::kOther, 0, nullptr); }
  bool boolean(bool) { return Value(Scalar::kOther, 0, nullptr); }
  bool number_integer(number_integer_t value) {
    if (value < 0) return Value(Scalar::kOther, 0, nullptr);
    return Value(Scalar::kUnsigned, static_cast<uint64_t>(value), nullptr);
  }
  bool number_unsigned(number_unsigned_t value) { return Value(Scalar::kUnsigned, value, nullptr); }
  bool number_float(number_float_t, const string_t&) { return Value(Scalar::kOther, 0, nullptr); }
  bool string(string_t& value) { return Value(Scalar::kString, 0, &value); }
  bool binary(binary_t&) { return Value(Scalar::kOther, 0, nullptr); }

  bool key(string_t& name) {
    if (skip_depth_ > 0) return true;
    Frame& top = Top();
    top.key = KeyOf(name);
    if (top.role == Role::kRoot) top.member = name;
    if (top.key != kOtherKey) {
      const uint32_t bit = uint32_t{1} << top.key;
      if (top.keys_seen & bit) {
        Warn(FindingCode::kVmdescRepeatedKey,
             absl::StrCat(Place(), ": \"", name,
                          "\" is given twice in one object; the last one "
                          "counts"));
      }
      top.keys_seen |= bit;
    }
    return true;
  }

  bool start_object(std::size_t) {
    if (!Open()) return false;
    if (skip_depth_ > 0 || depth_ == 1) {
      if (depth_ == 1)
        Push(Role::kRoot);
      else
        ++skip_depth_;
      return true;
    }
    Frame& top = Top();
    switch (top.role) {
      case Role::kFieldsArray:
        ++top.elements;
        if (top.problem) return Skip();
        Push(Role::kField);
        return true;
      case Role::kSubsectionsArray:
        ++top.elements;
        if (top.problem) return Skip();
        Push(Role::kVmsd);
        return true;
      case Role::kDevicesArray:
        ++top.elements;
        if (top.problem) return Skip();
        Push(Role::kDevice);
        return true;
      case Role::kRoot:
        MarkWrongType(top);
        Push(top.key == kConfiguration ? Role::kConfiguration : Role::kRootMember);
        return true;
      default:
        if (top.key == kStruct && top.role == Role::kField) {
          top.structure.Set(Part::kRead);
          top.struct_vmsd.reset();
          Push(Role::kVmsd);
          return true;
        }
        MarkWrongType(top);
        return Skip();
    }
  }

  bool start_array(std::size_t) {
    if (!Open()) return false;
    if (skip_depth_ > 0 || depth_ == 1) {
      if (depth_ == 1) root_not_object_ = true;
      ++skip_depth_;
      return true;
    }
    Frame& top = Top();
    if (NotAnObject(top)) return Skip();
    if (top.role == Role::kRoot && top.key == kDevices) {
      top.devices.Set(Part::kRead);
      Push(Role::kDevicesArray);
      return true;
    }
    if (DescribesVmsd(top.role) && (top.key == kFields || top.key == kSubsections)) {
      Part& part = top.key == kFields ? top.fields : top.subsections;
      part.Set(Part::kRead);
      Push(top.key == kFields ? Role::kFieldsArray : Role::kSubsectionsArray);
      return true;
    }
    MarkWrongType(top);
    return Skip();
  }

  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  template <typename Exception>
  bool parse_error(std::size_t position, const std::string& /*token*/, const Exception& error) {
    error_ = JsonSyntaxError(position, error.what());
    return false;
  }

  const absl::Status& error() const { return error_; }

  // The description, once the whole document was parsed without error.
  absl::StatusOr<VmDescription> Finish();

 private:
  void Warn(FindingCode code, std::string message) {
    if (warnings_.size() < kMaxDescriptionWarnings) {
      warnings_.push_back({code, std::move(message)});
    } else {
      ++warnings_left_out_;
    }
  }

  // Where the innermost open part sits, for a warning: "devices[3].fields[0]"
  // (elements counted from 0); built only when there is one to give.
  std::string Place() const {
    std::string place;
    for (size_t i = 1; i < frame_count_; ++i) {
      const Frame& holder = frames_[i - 1];
      switch (frames_[i].role) {
        case Role::kDevicesArray:
          place += "devices";
          break;
        case Role::kFieldsArray:
          place += ".fields";
          break;
        case Role::kSubsectionsArray:
          place += ".subsections";
          break;
        case Role::kVmsd:
          if (holder.role == Role::kField) {
            place += ".struct";
            break;
          }
          [[fallthrough]];
        case Role::kDevice:
        case Role::kField:
          absl::StrAppend(&place, "[", holder.elements - 1, "]");
          break;
        case Role::kConfiguration:
          place += "configuration";
          break;
        case Role::kRootMember:
          absl::StrAppend(&place, "'", EscapeName(holder.member), "'");
          break;
        case Role::kRoot:
          break;
      }
    }
    return place.empty() ? "root" : place;
  }

  Frame& Top() { return frames_[frame_count_ - 1]; }

  void Push(Role role) {
    if (frame_count_ == frames_.size()) frames_.emplace_back();
    frames_[frame_count_++].Reset(role);
  }

  bool Open() {
    if (++depth_ <= max_depth_) return true;
    error_ = JsonNestingError(max_depth_);
    return false;
  }

  bool Skip() {
    ++skip_depth_;
    return true;
  }

  // A scalar value: a member's, or an array element's.
  bool Value(Scalar::Kind kind, uint64_t number, const std::string* text) {
    if (skip_depth_ > 0) return true;
    if (frame_count_ == 0) {  // the whole document is one scalar
      root_not_object_ = true;
      return true;
    }
    Frame& top = Top();
    if (NotAnObject(top)) return true;
    if (top.key < kScalarKeyCount) {
      Scalar& scalar = top.scalars[top.key];
      scalar.kind = kind;
      scalar.number = number;
      if (text != nullptr && top.key < kTextKeyCount) top.texts[top.key].assign(*text);
    } else {
      MarkWrongType(top);
    }
    return true;
  }

  // The current member's value is a container, or a scalar where a part
  // (an array or object) belongs.
  void MarkWrongType(Frame& top) {
    switch (top.key) {
      case kFields:
        if (DescribesVmsd(top.role)) top.fields.Set(Part::kWrongType);
        break;
      case kSubsections:
        if (DescribesVmsd(top.role)) top.subsections.Set(Part::kWrongType);
        break;
      case kStruct:
        if (top.role == Role::kField) top.structure.Set(Part::kWrongType);
        break;
      case kConfiguration:
        if (top.role == Role::kRoot) top.configuration.Set(Part::kWrongType);
        break;
      case kDevices:
        if (top.role == Role::kRoot) top.devices.Set(Part::kWrongType);
        break;
      case kOtherKey:
        break;
      default:  // a scalar member holding a container
        top.scalars[top.key].kind = Scalar::kOther;
        break;
    }
  }

  // A value that is not an object opens in `top`. Notes it where that
  // matters, and says whether it was an array's element (nothing more to do).
  bool NotAnObject(Frame& top) {
    switch (top.role) {
      case Role::kFieldsArray:
        Keep(top, Problem{"", "field is not an object"});
        return true;
      case Role::kSubsectionsArray:
        Keep(top, Problem{"/?", "description is not an object"});
        return true;
      case Role::kDevicesArray:
        Keep(top, Problem{"", "a device entry is not an object"});
        return true;
      case Role::kRoot:  // not a -dump-vmstate entry
        top.dump_entries.push_back(DumpEntry{top.member, false, {}, {}, {}, {}});
        return false;
      default:
        return false;
    }
  }

  bool Close() {
    --depth_;
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    if (frame_count_ == 1) return true;  // the root stays for Finish()
    if (Top().role == Role::kField) CheckFieldType(Top());
    Frame& closed = frames_[--frame_count_];
    Frame& holder = Top();
    switch (closed.role) {
      case Role::kFieldsArray:
        holder.fields.problem = std::move(closed.problem);
        holder.field_list = std::move(closed.field_list);
        break;
      case Role::kSubsectionsArray:
        holder.subsections.problem = std::move(closed.problem);
        holder.subsection_list = std::move(closed.subsection_list);
        break;
      case Role::kDevicesArray:
        holder.devices.problem = std::move(closed.problem);
        holder.device_list = std::move(closed.device_list);
        break;
      case Role::kField:
        CloseElement(closed, holder, holder.field_list, FinishField);
        break;
      case Role::kDevice:
        CloseElement(closed, holder, holder.device_list, FinishDevice);
        break;
      case Role::kVmsd:
        if (holder.role == Role::kField) {
          holder.struct_vmsd = std::make_unique<VmsdDescription>();
          holder.structure.problem = AsPointer(FinishVmsd(closed, *holder.struct_vmsd));
        } else {
          CloseSubsection(closed, holder);
        }
        break;
      case Role::kConfiguration:
        holder.configuration.Set(Part::kRead);
        holder.configuration_vmsd = std::make_unique<VmsdDescription>();
        holder.configuration.problem = AsPointer(FinishVmsd(closed, *holder.configuration_vmsd));
        [[fallthrough]];
      case Role::kRootMember:
        holder.dump_entries.push_back(
            DumpEntry{holder.member, true, closed.scalars[kDumpName], closed.scalars[kVersionId],
                      closed.scalars[kMinimumVersionId], closed.texts[kDumpName]});
        break;
      case Role::kRoot:
        break;
    }
    return true;
  }

  // QEMU writes a VMStateInfo name, "struct", "vstruct" or "unknown"; qmig
  // delimits a field by its size whatever the type says.
  void CheckFieldType(const Frame& field) {
    if (!field.Has(kType) || (field.IsString(kType) && IsQemuFieldType(field.Text(kType)))) return;
    Warn(FindingCode::kVmdescUnknownType,
         absl::StrCat(
             Place(),
             field.IsString(kName) ? absl::StrCat(" ('", EscapeName(field.Text(kName)), "')") : "",
             ": field type ",
             field.IsString(kType) ? absl::StrCat("'", EscapeName(field.Text(kType)), "'")
                                   : "that is not a string",
             " is none QEMU writes; the field is read by its size"));
  }

  static void CloseSubsection(Frame& closed, Frame& array) {
    const bool named = closed.IsString(kVmsdName);
    VmsdDescription vmsd;
    if (std::optional<Problem> problem = FinishVmsd(closed, vmsd)) {
      Keep(array, Within(absl::StrCat("/", named ? EscapeName(vmsd.vmsd_name) : "?"),
                         std::move(*problem)));
    } else if (vmsd.vmsd_name.empty()) {
      Keep(array, Problem{"", "subsection without \"vmsd_name\""});
    } else {
      array.subsection_list.push_back(std::move(vmsd));
    }
  }

  absl::StatusOr<VmDescription> FinishDump(Frame& root);
  void TakeWarnings(VmDescription& description) {
    description.warnings = std::move(warnings_);
    if (warnings_left_out_ > 0) {
      description.warnings.push_back(
          {description.warnings.back().code,
           absl::StrCat(warnings_left_out_, " more oddities in the description not listed")});
    }
  }

  const int max_depth_;
  int depth_ = 0;
  int skip_depth_ = 0;  // levels inside a value nobody reads
  bool root_not_object_ = false;
  std::vector<Frame> frames_;  // reused as frames open and close
  size_t frame_count_ = 0;
  absl::Status error_;
  std::vector<DescriptionWarning> warnings_;
  uint64_t warnings_left_out_ = 0;
};

absl::StatusOr<VmDescription> DescriptionBuilder::Finish() {
  if (root_not_object_ || frame_count_ != 1) {
    return absl::InvalidArgumentError("JSON root is not an object");
  }
  Frame& root = frames_[0];
  for (const DumpEntry& entry : root.dump_entries) {
    if (entry.key == "vmschkmachine") return FinishDump(root);
  }

  VmDescription description;
  if (root.Has(kPageSize)) {
    if (!root.IsUnsigned(kPageSize)) return ToStatus("root", Problem{"", NotUnsigned("page_size")});
    description.page_size = root.Number(kPageSize);
    // QEMU writes its target page size; analyze-migration.py takes RAM
    // flags from below it.
    const uint64_t size = description.page_size;
    if (!absl::has_single_bit(size)) {
      Warn(FindingCode::kVmdescBadPageSize,
           absl::StrCat("root: \"page_size\" ", size, " is not a power of two"));
    }
  }
  if (root.configuration.state == Part::kWrongType) {
    return ToStatus("configuration", Problem{"", "description is not an object"});
  }
  if (root.configuration.problem) return ToStatus("configuration", *root.configuration.problem);
  if (root.configuration_vmsd) description.configuration = std::move(*root.configuration_vmsd);
  if (root.devices.state != Part::kRead) {
    return absl::InvalidArgumentError("\"devices\" is missing or not an array");
  }
  if (root.devices.problem) return ToStatus("", *root.devices.problem);
  description.devices = std::move(root.device_list);
  description.IndexDevices();
  for (size_t i = 0; i < description.devices.size(); ++i) {
    const DeviceDescription& device = description.devices[i];
    const size_t count = description.Count(device.name, device.instance_id);
    if (count > 1 && description.Find(device.name, device.instance_id) == &device) {
      Warn(FindingCode::kVmdescRepeatedDevice,
           absl::StrCat("devices[", i, "]: device '", EscapeName(device.name), "' instance ",
                        device.instance_id, " is described ", count,
                        " times; sections with this name and instance take the entries in "
                        "stream order"));
    }
  }
  TakeWarnings(description);
  return description;
}

// QEMU -dump-vmstate: {"vmschkmachine": {"Name": M}, TYPE: {"Name": vmsd,
// "version_id": V, "minimum_version_id": N, "Description": {...}}, ...}.
// The machine is checked first, then the entries in key order.
absl::StatusOr<VmDescription> DescriptionBuilder::FinishDump(Frame& root) {
  std::vector<DumpEntry>& entries = root.dump_entries;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const DumpEntry& a, const DumpEntry& b) { return a.key < b.key; });
  // Of a repeated key, the last one counts.
  auto repeated = [&entries](size_t i) {
    return i + 1 < entries.size() && entries[i + 1].key == entries[i].key;
  };
  VmDescription description;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].key != "vmschkmachine" || repeated(i)) continue;
    if (!entries[i].is_object) {
      return absl::InvalidArgumentError("\"vmschkmachine\" is not an object");
    }
    if (entries[i].name.kind != Scalar::kString) {
      return ToStatus("vmschkmachine", Problem{"", NotString("Name")});
    }
    description.dump_machine = entries[i].name_text;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const DumpEntry& entry = entries[i];
    if (entry.key == "vmschkmachine" || repeated(i)) continue;
    const std::string where = absl::StrCat("'", EscapeName(entry.key), "'");
    if (!entry.is_object) return ToStatus(where, Problem{"", "entry is not an object"});
    if (entry.name.kind != Scalar::kString) return ToStatus(where, Problem{"", NotString("Name")});
    if (entry.version_id.kind != Scalar::kUnsigned) {
      return ToStatus(where, Problem{"", NotUnsigned("version_id")});
    }
    if (entry.minimum_version_id.kind != Scalar::kUnsigned) {
      return ToStatus(where, Problem{"", NotUnsigned("minimum_version_id")});
    }
    const uint64_t version = entry.version_id.number;
    const uint64_t minimum = entry.minimum_version_id.number;
    if (version > 0xffffffffu || minimum > version) {
      return ToStatus(where, Problem{"", "version bounds out of order or too large"});
    }
    description.vmsd_versions[entry.name_text] = {static_cast<uint32_t>(version),
                                                  static_cast<uint32_t>(minimum)};
  }
  for (size_t i = 0; i + 1 < entries.size(); ++i) {
    if (repeated(i) && (i == 0 || entries[i - 1].key != entries[i].key)) {
      Warn(FindingCode::kVmdescRepeatedKey,
           absl::StrCat("root: '", EscapeName(entries[i].key),
                        "' is given more than once; the last one counts"));
    }
  }
  TakeWarnings(description);
  return description;
}

}  // namespace

const DeviceDescription* VmDescription::Find(absl::string_view name, uint32_t instance_id,
                                             size_t nth) const {
  if (!index_.empty()) {
    auto it = index_.find(std::make_pair(std::string(name), instance_id));
    if (it == index_.end() || nth >= it->second.count) return nullptr;
    return &devices[by_key_[it->second.first + nth]];
  }
  for (const DeviceDescription& device : devices) {
    if (device.name == name && device.instance_id == instance_id && nth-- == 0) return &device;
  }
  return nullptr;
}

size_t VmDescription::Count(absl::string_view name, uint32_t instance_id) const {
  if (!index_.empty()) {
    auto it = index_.find(std::make_pair(std::string(name), instance_id));
    return it == index_.end() ? 0 : it->second.count;
  }
  size_t count = 0;
  for (const DeviceDescription& device : devices) {
    count += device.name == name && device.instance_id == instance_id;
  }
  return count;
}

void VmDescription::IndexDevices() {
  index_.clear();
  index_.reserve(devices.size());
  for (const DeviceDescription& device : devices) {
    ++index_[std::make_pair(device.name, device.instance_id)].count;
  }
  // Each pair gets a run of by_key_, filled in stream order.
  size_t next = 0;
  for (auto& [key, entries] : index_) {
    entries.first = next;
    next += entries.count;
    entries.count = 0;
  }
  by_key_.resize(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    Entries& entries = index_[std::make_pair(devices[i].name, devices[i].instance_id)];
    by_key_[entries.first + entries.count++] = i;
  }
}

absl::StatusOr<VmDescription> ParseVmDescription(absl::string_view text) {
  DescriptionBuilder builder(kMaxDescriptionNesting);
  if (!nlohmann::json::sax_parse(text.begin(), text.end(), &builder)) {
    if (!builder.error().ok()) return builder.error();
    return absl::InvalidArgumentError("not valid JSON");
  }
  return builder.Finish();
}

}  // namespace qmig
