// Device sections: decoded strictly with a vmstate description when there is
// one, otherwise delimited by scanning and reported as unverified.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "parser/stream_parser_internal.h"
#include "parser/trailer.h"
#include "parser/vmstate/interpreter.h"
#include "parser/wire/endian.h"
#include "parser/wire/escape.h"
#include "parser/wire/plural.h"

namespace qmig {
namespace internal {
namespace {

bool PlausibleRecordStart(uint8_t byte) {
  switch (static_cast<SectionType>(byte)) {
    case SectionType::kEof:
    case SectionType::kStart:
    case SectionType::kPart:
    case SectionType::kEnd:
    case SectionType::kFull:
    case SectionType::kCommand:
      return true;
    default:
      return false;
  }
}

// Whether `bytes` (which may be cut short by the end of the view) begin with
// a plausible START/FULL header: small id, printable name, small instance
// and version.
bool PlausibleSectionHeader(absl::Span<const uint8_t> bytes) {
  constexpr uint32_t kPlausibleNumber = 1u << 20;
  if (bytes.size() < 6) return false;
  if (bytes[0] != static_cast<uint8_t>(SectionType::kFull) &&
      bytes[0] != static_cast<uint8_t>(SectionType::kStart)) {
    return false;
  }
  if (LoadBe32(&bytes[1]) >= kPlausibleNumber) return false;
  size_t length = bytes[5];
  if (length == 0 || bytes.size() < 6 + length + 8) return false;
  for (size_t i = 0; i < length; ++i) {
    if (bytes[6 + i] < 0x20 || bytes[6 + i] > 0x7e) return false;
  }
  return LoadBe32(&bytes[6 + length]) < kPlausibleNumber &&
         LoadBe32(&bytes[10 + length]) < kPlausibleNumber;
}

// EOF followed by the start of a VMDESCRIPTION trailer: 00 06 be32 '{'.
bool PlausibleTrailerStart(absl::Span<const uint8_t> bytes) {
  return bytes.size() >= 7 && bytes[1] == static_cast<uint8_t>(SectionType::kVmDescription) &&
         bytes[6] == '{';
}

}  // namespace

absl::StatusOr<const VmDescription*> StreamParser::DeviceDescriptions(Reader& reader) {
  if (options_.schema != nullptr) {
    summary_.device_description_source = "schema";
    return options_.schema;
  }
  if (trailer_probe_ == TrailerProbe::kUndecidable) return trailer_probe_failure_;
  // Inside a package the stream goes on with postcopy RAM and has no
  // trailer; probe only from the top level.
  if (trailer_probe_ == TrailerProbe::kNotProbed && context_.package_depth() == 0) {
    QMIG_RETURN_IF_ERROR(options_.live ? ProbeLiveTrailer(reader) : ProbeTrailer(reader));
  }
  return trailer_description_.has_value() ? &*trailer_description_ : nullptr;
}

absl::Status StreamParser::ProbeTrailer(Reader& reader) {
  // The trailer ends the input. A file knows where that is; a pipe is read
  // to its end, keeping what it reads (in memory, then in a temporary file),
  // so that it gives the verdict a file gives. A pipe's reads may stop
  // where what came so far merely looks like a trailer, so nothing short of
  // the end will do.
  const uint64_t offset = reader.offset();
  QMIG_ASSIGN_OR_RETURN(
      InputEnd end,
      source_.MakeEndKnown(offset, KeepLimits{options_.limits.max_buffered_device_state,
                                              options_.limits.max_spilled_device_state}));
  if (!end.end.has_value()) {
    trailer_probe_ = TrailerProbe::kUndecidable;
    trailer_probe_failure_ = context_.Fail(
        FindingCode::kUndecidable, offset,
        absl::StrCat("a pipe cannot decide this stream: its device sections are described by the "
                     "VMDESCRIPTION trailer at the end of the input, and ",
                     end.why_unknown, "; read the stream from a file"));
    return trailer_probe_failure_;
  }
  QMIG_ASSIGN_OR_RETURN(std::optional<FoundTrailer> found,
                        FindTrailerAtEnd(source_, offset, options_.limits.max_vmdesc_bytes));
  trailer_probe_ = TrailerProbe::kNone;
  if (found.has_value()) UseTrailer(found->offset, found->json);
  return absl::OkStatus();
}

absl::Status StreamParser::ProbeLiveTrailer(Reader& reader) {
  // A live connection stops early, at a tail that ends with a whole trailer
  // or when the source goes quiet (it may be waiting for us before it
  // closes).
  const uint64_t max_json = options_.limits.max_vmdesc_bytes;
  trailer_probe_ = TrailerProbe::kNotArrived;
  absl::StatusOr<bool> whole = source_.BufferUntil(
      reader.offset(), options_.limits.max_buffered_device_state,
      [max_json](absl::Span<const uint8_t> tail) {
        return LocateTrailer(tail, 0, max_json).has_value();
      },
      kLiveIdle);
  if (!whole.ok() || !*whole) return absl::OkStatus();
  absl::StatusOr<absl::Span<const uint8_t>> tail = source_.View(reader.offset(), 1);
  if (!tail.ok()) return absl::OkStatus();
  std::optional<TrailerLocation> location = LocateTrailer(*tail, reader.offset(), max_json);
  if (location.has_value()) UseTrailer(location->offset, location->json);
  return absl::OkStatus();
}

void StreamParser::UseTrailer(uint64_t offset, absl::string_view json) {
  absl::StatusOr<VmDescription> description = ParseVmDescription(json);
  trailer_offset_ = offset;
  if (description.ok()) {
    trailer_probe_ = TrailerProbe::kFound;
    trailer_description_ = std::move(*description);
    summary_.device_description_source = "trailer";
    ObserveDescription(*trailer_description_);
  } else {
    trailer_probe_ = TrailerProbe::kInvalid;
    trailer_error_ = description.status();
  }
}

// What the stream's own description says of the QEMU that wrote it.
void StreamParser::ObserveDescription(const VmDescription& description) {
  if (description.configuration.has_value()) {
    profile_.ObserveAtLeast(QemuRelease::k8_2, "the VMDESCRIPTION has a configuration member");
  } else {
    profile_.ObserveAtMost(QemuRelease::k7_2, "the VMDESCRIPTION has no configuration member");
  }
  for (const DeviceDescription& device : description.devices) {
    if (device.name != "globalstate") continue;
    bool suspended = false;
    for (const VmstateField& field : device.vmsd.fields) {
      suspended |= field.name == "has_vm_was_suspended";
    }
    if (suspended) {
      profile_.ObserveAtLeast(QemuRelease::k9_2, "globalstate carries vm_was_suspended");
    } else {
      profile_.ObserveAtMost(QemuRelease::k8_2, "globalstate has no vm_was_suspended");
    }
    break;
  }
}

// Why a device section has no description, as the probe found it. It runs
// before the trailer is parsed, so it says what it searched, not what the
// summary will list.
absl::string_view StreamParser::NoDescriptionReason() const {
  switch (trailer_probe_) {
    case TrailerProbe::kNotProbed:
      return "the trailer is not looked for from inside a package, where postcopy RAM follows";
    case TrailerProbe::kInvalid:
      return "the VMDESCRIPTION trailer is invalid";
    case TrailerProbe::kNotArrived:
      return "no whole VMDESCRIPTION trailer arrived while the live input was buffered";
    case TrailerProbe::kNone:
    case TrailerProbe::kFound:
    case TrailerProbe::kUndecidable:
      break;
  }
  return "the input does not end with a VMDESCRIPTION trailer holding a JSON object";
}

namespace {

// QEMU's find_se() takes an instance id equal to a device's alias id, which
// is -1 for devices registered without one.
constexpr uint32_t kAnyAliasInstance = 0xffffffff;

bool DescribesIdstr(const VmDescription& descriptions, absl::string_view idstr) {
  for (const DeviceDescription& device : descriptions.devices) {
    if (device.name == idstr) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<bool> StreamParser::DescribedDevice(Reader& reader, const SectionState& section) {
  QMIG_ASSIGN_OR_RETURN(const VmDescription* descriptions, DeviceDescriptions(reader));
  return descriptions != nullptr &&
         DeviceEntry(*descriptions, section, /*consume=*/false) != nullptr;
}

const DeviceDescription* StreamParser::DeviceEntry(const VmDescription& descriptions,
                                                   const SectionState& section, bool consume) {
  const DeviceDescription* first = descriptions.Find(section.idstr, section.instance_id);
  if (first == nullptr) return nullptr;
  const size_t count = descriptions.Count(section.idstr, section.instance_id);
  if (count == 1) return first;
  size_t& uses = repeated_device_uses_[first];
  const DeviceDescription* device =
      descriptions.Find(section.idstr, section.instance_id, std::min(uses, count - 1));
  if (consume) ++uses;
  return device;
}

absl::Status StreamParser::ParseDeviceBody(Reader& reader, const SectionState& section,
                                           uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(const VmDescription* descriptions, DeviceDescriptions(reader));
  const DeviceDescription* device =
      descriptions != nullptr ? DeviceEntry(*descriptions, section, /*consume=*/true) : nullptr;
  if (device != nullptr) {
    if (!device->legacy && device->vmsd.version != section.version) {
      context_.Report(FindingCode::kDeviceVersion, offset,
                      absl::StrCat("section version ", section.version, ", the description says ",
                                   device->vmsd.version));
    }
    VmstateDecodeStats stats;
    VmstateFieldVisitor* visitor =
        options_.observer != nullptr ? options_.observer->OnDeviceDecode(*device) : nullptr;
    QMIG_RETURN_IF_ERROR(DecodeVmstate(reader, device->vmsd, context_, visitor, &stats));
    ++summary_.devices_decoded;
    summary_.device_fields += stats.fields;
    return absl::OkStatus();
  }
  if (descriptions != nullptr && descriptions->from_dump())
    CheckDumpedVersion(*descriptions, section, offset);
  uint64_t start = reader.offset();
  QMIG_ASSIGN_OR_RETURN(uint64_t end, ScanForDeviceEnd(reader, section.id));
  ++summary_.devices_unverified;
  if (descriptions != nullptr && descriptions->from_dump()) {
    context_.Report(FindingCode::kDeviceUnverified, start,
                    absl::StrCat(Counted(end - start, "byte"),
                                 " delimited by scanning, not decoded: -dump-vmstate output "
                                 "has no array lengths or field types (use qmig schema on a "
                                 "precopy stream of the same machine)"));
  } else if (descriptions != nullptr && section.instance_id == kAnyAliasInstance &&
             DescribesIdstr(*descriptions, section.idstr)) {
    context_.Report(FindingCode::kDeviceNoDescription, start,
                    absl::StrCat(Counted(end - start, "byte"),
                                 " delimited by scanning, not decoded: instance "
                                 "0xffffffff, which QEMU matches against the alias id (-1) of any "
                                 "device without one, so it loads this section into '",
                                 EscapeName(section.idstr), "'"),
                    {}, /*qemu_accepts=*/true);
  } else if (descriptions != nullptr) {
    // The description lists every section the machine saves; a destination
    // of that machine refuses others ("Unknown savevm section").
    context_.ReportAs(
        Severity::kError, FindingCode::kDeviceNoDescription, start,
        absl::StrCat(Counted(end - start, "byte"), " delimited by scanning, not decoded: the ",
                     summary_.device_description_source,
                     " description has no such device instance, so a destination "
                     "of this machine has none either and refuses the section"));
  } else {
    context_.Report(FindingCode::kDeviceUnverified, start,
                    absl::StrCat(Counted(end - start, "byte"),
                                 " delimited by scanning, not decoded: no vmstate "
                                 "description (",
                                 NoDescriptionReason(), "; pass --schema)"));
  }
  return absl::OkStatus();
}

// With -dump-vmstate output, a section's vmsd is its idstr, or the part
// after the last '/' for qdev devices ("0000:00:01.0/PIIX3").
void StreamParser::CheckDumpedVersion(const VmDescription& dump, const SectionState& section,
                                      uint64_t offset) {
  absl::string_view vmsd = section.idstr;
  auto it = dump.vmsd_versions.find(std::string(vmsd));
  if (it == dump.vmsd_versions.end() && vmsd.rfind('/') != absl::string_view::npos) {
    it = dump.vmsd_versions.find(std::string(vmsd.substr(vmsd.rfind('/') + 1)));
  }
  if (it == dump.vmsd_versions.end()) return;
  if (section.version > it->second.version || section.version < it->second.minimum) {
    context_.Report(
        FindingCode::kDeviceVersion, offset,
        absl::StrCat("section version ", section.version, " is outside ", it->second.minimum, "..",
                     it->second.version, ", which the -dump-vmstate description accepts for '",
                     EscapeName(it->first), "'"));
  }
}

absl::StatusOr<uint64_t> StreamParser::ScanForDeviceEnd(Reader& reader, uint32_t section_id) {
  const bool by_footer = footers_.value_or(has_configuration_);
  const uint64_t start = reader.offset();
  while (reader.offset() - start <= options_.limits.max_device_scan_bytes) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> window, reader.PeekUpTo(kMaxContiguousView));
    const bool last_window = window.size() < kMaxContiguousView;
    // Room to look at a candidate's following bytes before sliding on.
    const size_t lookahead = by_footer ? 6 : 6 + kMaxCountedString + 8;
    size_t searchable =
        last_window ? window.size() : (window.size() > lookahead ? window.size() - lookahead : 0);
    for (size_t i = 0; i < searchable; ++i) {
      if (by_footer) {
        // Jump to the next footer byte: device sections are scanned on every
        // parse, and under the fuzzers each byte compared costs a callback.
        const void* next =
            memchr(window.data() + i, static_cast<uint8_t>(SectionType::kFooter), searchable - i);
        if (next == nullptr) break;
        i = static_cast<size_t>(static_cast<const uint8_t*>(next) - window.data());
      }
      absl::Span<const uint8_t> here = window.subspan(i);
      bool match;
      if (by_footer) {
        match = here.size() >= 5 && here[0] == static_cast<uint8_t>(SectionType::kFooter) &&
                LoadBe32(&here[1]) == section_id &&
                (here.size() == 5 || PlausibleRecordStart(here[5]));
      } else {
        match = (PlausibleSectionHeader(here) && !SectionIdInUse(LoadBe32(&here[1]))) ||
                (here[0] == static_cast<uint8_t>(SectionType::kEof) &&
                 ((last_window && here.size() == 1) || PlausibleTrailerStart(here)));
      }
      if (match) {
        if (!by_footer && here.size() == 1) {
          context_.Report(FindingCode::kDeviceUnverified, reader.offset() + i,
                          "device section delimited by the end of the input; without footers or "
                          "a description a capture cut here would look the same");
        }
        QMIG_RETURN_IF_ERROR(reader.Skip(i));
        return reader.offset();
      }
    }
    if (last_window) {
      // The end of the input or of the enclosing package came first: the
      // section is cut short, not merely undelimited.
      uint64_t end = reader.offset() + window.size();
      if (reader.limit().has_value() && end == *reader.limit()) {
        return context_.Fail(FindingCode::kPackageEndsMidRecord, start,
                             "the device section runs to the end of the package");
      }
      return context_.Fail(
          FindingCode::kTruncated, end,
          absl::StrCat("truncated at offset ", end,
                       ": the input ends inside a device section that starts at ", start));
    }
    QMIG_RETURN_IF_ERROR(reader.Skip(searchable));
  }
  return context_.Fail(FindingCode::kDeviceUnframed, start,
                       absl::StrCat("no end found for the device section by scanning for its ",
                                    by_footer ? "footer" : "successor", " within the scan limit"));
}

}  // namespace internal
}  // namespace qmig
