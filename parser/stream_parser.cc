#include "parser/stream_parser.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/stream_parser_internal.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/escape.h"
#include "parser/wire/release.h"

namespace qmig {

absl::string_view PostcopyStateName(PostcopyState state) {
  switch (state) {
    case PostcopyState::kNone:
      return "none";
    case PostcopyState::kAdvise:
      return "advise";
    case PostcopyState::kDiscard:
      return "discard";
    case PostcopyState::kListening:
      return "listening";
    case PostcopyState::kRunning:
      return "running";
    case PostcopyState::kEnd:
      return "end";
  }
  return "none";
}

namespace internal {
namespace {

// Every MigrationCapability name QEMU has had; the configuration section only
// ever lists the validatable ones, but an unknown name is a hard error.
constexpr absl::string_view kCapabilityNames[] = {
    "xbzrle",           "rdma-pin-all",   "auto-converge",       "zero-blocks",
    "compress",         "events",         "postcopy-ram",        "x-colo",
    "release-ram",      "block",          "return-path",         "pause-before-switchover",
    "multifd",          "dirty-bitmaps",  "postcopy-blocktime",  "late-block-activate",
    "x-ignore-shared",  "validate-uuid",  "background-snapshot", "zero-copy-send",
    "postcopy-preempt", "switchover-ack", "dirty-limit",         "mapped-ram",
};

bool IsPrintableName(absl::Span<const uint8_t> bytes) {
  if (bytes.empty()) return false;
  for (uint8_t c : bytes) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

StreamParser::StreamParser(ByteSource& source, const ParseOptions& options, ParseResult& result)
    : source_(source),
      options_(options),
      result_(result),
      summary_(result.summary),
      context_(&result.findings),
      profile_(options.profile.has_value() ? ProfileDetector(*options.profile)
                                           : ProfileDetector()) {}

void StreamParser::CountCommand(CommandKind kind) {
  ++summary_.commands[std::string(CommandKindName(kind))];
}

void StreamParser::Run() {
  Reader reader(&source_, &context_);
  if (options_.channel == RamChannel::kPostcopyPreempt) {
    absl::Status status = ParsePreemptChannel(reader);
    context_.ReportUnexplained(status, reader.offset());
    summary_.bytes = reader.offset();
    summary_.profile = std::string(profile_.active().name);
    summary_.postcopy = postcopy_;
    return;
  }
  absl::Status status = ParseHeader(reader);
  if (status.ok() && options_.observer != nullptr) {
    options_.observer->OnHeader(summary_, reader.offset());
  }
  while (status.ok()) {
    absl::StatusOr<LoopEnd> end = ParseRecords(reader);
    if (!end.ok()) {
      status = end.status();
      break;
    }
    if (*end == LoopEnd::kRun) continue;  // the listen thread reads on
    if (*end == LoopEnd::kEndOfInput) {
      context_.Report(FindingCode::kTruncated, reader.offset(),
                      absl::StrCat("truncated at offset ", reader.offset(),
                                   ": the input ends before the EOF record"));
      break;
    }
    summary_.eof_seen = true;
    CheckEndOfStream(reader.offset() - 1);
    if (options_.observer != nullptr) options_.observer->OnEof(reader.offset() - 1);
    status = ParseAfterEof(reader);
    break;
  }
  context_.ReportUnexplained(status, reader.offset());
  summary_.bytes = reader.offset();
  summary_.profile = std::string(profile_.active().name);
  summary_.profile_detected = profile_.decided();
  summary_.profile_evidence = profile_.evidence();
  for (absl::string_view name : profile_.AlsoConsistent()) {
    summary_.profile_also_consistent.emplace_back(name);
  }
  summary_.postcopy = postcopy_;
  summary_.return_path_opened = return_path_open_;
  summary_.footers = footers_;
}

absl::Status StreamParser::ParsePreemptChannel(Reader& reader) {
  // The channel exists once postcopy listens, and knows the blocks the main
  // stream listed; without them, blocks are counted as they come.
  summary_.headerless = true;
  postcopy_ = PostcopyState::kListening;
  for (const auto& [name, length] : options_.channel_blocks) {
    RamBlockState* block = AddBlockOfUnknownLength(name);
    if (block == nullptr) break;
    block->length = length;
    summary_.ram_blocks[block->summary_index].length = length;
  }
  ram_blocks_known_ = !options_.channel_blocks.empty();
  PathScope scope(context_, "preempt channel");
  QMIG_RETURN_IF_ERROR(ParseRamPayload(reader));
  // QEMU 7.2, and later ones for machine types up to 7.2, end the channel
  // with EOS; later ones close it, which ends the loop above at a record.
  if (!summary_.ram_eos_seen || options_.live) return absl::OkStatus();
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> rest, reader.PeekUpTo(1));
  if (!rest.empty()) {
    return context_.Fail(FindingCode::kPreemptBadRecord, reader.offset(),
                         "bytes after the preempt channel's EOS");
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParseHeader(Reader& reader) {
  PathScope scope(context_, "header");
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> first, reader.PeekUpTo(1));
  if (first.empty()) return context_.Fail(FindingCode::kEmpty, 0, "the input is empty");
  if (first[0] == static_cast<uint8_t>(SectionType::kCommand)) {
    // A postcopy-recovery connection: no magic, no configuration; it starts
    // with RECV_BITMAP commands.
    summary_.headerless = true;
    return absl::OkStatus();
  }
  QMIG_ASSIGN_OR_RETURN(uint32_t magic, reader.Be32());
  if (magic != kFileMagic) {
    return context_.Fail(FindingCode::kBadMagic, 0,
                         absl::StrFormat("magic is 0x%08x, not 0x%08x (\"QEVM\"): not a migration "
                                         "stream",
                                         magic, kFileMagic));
  }
  QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
  summary_.file_version = version;
  if (version == kFileVersionObsolete) {
    return context_.Fail(FindingCode::kObsoleteVersion, 4,
                         "file version 2 is obsolete; QEMU no longer loads it");
  }
  if (version != kFileVersion) {
    return context_.Fail(FindingCode::kBadVersion, 4,
                         absl::StrCat("file version ", version, " is unknown (expected 3)"));
  }
  QMIG_ASSIGN_OR_RETURN(uint8_t next, reader.PeekU8());
  if (next == static_cast<uint8_t>(SectionType::kConfiguration)) {
    reader.U8().IgnoreError();
    has_configuration_ = true;
    return ParseConfiguration(reader);
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParseConfiguration(Reader& reader) {
  PathScope scope(context_, "CONFIGURATION");
  uint64_t offset = reader.offset();
  QMIG_ASSIGN_OR_RETURN(uint32_t length, reader.Be32());
  if (length > kMaxMachineNameLength) {
    // QEMU 7.2 allocates the length it reads: 0xffffffff aborts it in
    // g_malloc (corpus/regressions/qemu/config-name-length-max.json).
    return context_.Fail(
        FindingCode::kConfigBadName, offset,
        absl::StrCat("machine name length ", length, " (allowed 1..", kMaxMachineNameLength, ")"));
  }
  if (length == 0) {
    // QEMU compares only the first `length` bytes with its own machine name.
    context_.Report(FindingCode::kConfigBadName, offset,
                    "machine name length 0: QEMU compares no byte of it, so any machine accepts "
                    "the stream",
                    {}, /*qemu_accepts=*/true);
  }
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> name, reader.Bytes(length));
  summary_.machine = std::string(name.begin(), name.end());
  profile_.ObserveMachine(*summary_.machine);
  if (options_.schema != nullptr && !options_.schema->dump_machine.empty() &&
      options_.schema->dump_machine != *summary_.machine) {
    context_.Report(
        FindingCode::kConfigBadName, offset + 4,
        absl::StrCat("machine '", EscapeName(*summary_.machine), "' but the --schema dump is of '",
                     EscapeName(options_.schema->dump_machine), "'; QEMU refuses another machine"));
  }
  if (length > 0 && !IsPrintableName(name)) {
    context_.Report(FindingCode::kConfigBadName, offset + 4,
                    "machine name holds a NUL or a non-printable byte");
  }
  std::vector<std::string> seen;
  while (true) {
    QMIG_ASSIGN_OR_RETURN(uint8_t next, reader.PeekU8());
    if (next != static_cast<uint8_t>(SectionType::kSubsection)) break;
    uint64_t sub_offset = reader.offset();
    reader.U8().IgnoreError();
    QMIG_ASSIGN_OR_RETURN(std::string sub_name, reader.CountedString());
    QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
    PathScope sub_scope(context_, absl::StrCat("subsection '", EscapeName(sub_name), "'"));
    if (version != 1) {
      return context_.Fail(FindingCode::kConfigBadSubsection, sub_offset,
                           absl::StrCat("version ", version, " (expected 1)"));
    }
    if (std::find(seen.begin(), seen.end(), sub_name) != seen.end()) {
      context_.Report(FindingCode::kConfigBadSubsection, sub_offset, "subsection sent twice");
    }
    seen.push_back(sub_name);
    QMIG_RETURN_IF_ERROR(ParseConfigurationSubsection(reader, sub_name, sub_offset));
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParseConfigurationSubsection(Reader& reader, const std::string& name,
                                                        uint64_t offset) {
  if (name == kConfigTargetPageBits) {
    QMIG_ASSIGN_OR_RETURN(uint32_t bits, reader.Be32());
    summary_.target_page_bits = bits;
    if (bits != kTargetPageBits) {
      // Every profile qmig knows has 4 KiB target pages; RAM records of any
      // other size would be misread.
      return context_.Fail(FindingCode::kConfigBadPageBits, offset,
                           absl::StrCat("target page bits ", bits, ": qmig decodes 4 KiB (",
                                        kTargetPageBits, "-bit) target pages only"));
    }
    return absl::OkStatus();
  }
  if (name == kConfigCapabilities) {
    QMIG_ASSIGN_OR_RETURN(uint32_t count, reader.Be32());
    if (count > kMaxConfigCapabilities) {
      return context_.Fail(
          FindingCode::kConfigBadCapability, offset,
          absl::StrCat(count, " capabilities, over the limit of ", kMaxConfigCapabilities));
    }
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t cap_offset = reader.offset();
      QMIG_ASSIGN_OR_RETURN(std::string capability, reader.CountedString());
      if (std::find(std::begin(kCapabilityNames), std::end(kCapabilityNames),
                    absl::string_view(capability)) == std::end(kCapabilityNames)) {
        context_.Report(FindingCode::kConfigBadCapability, cap_offset,
                        absl::StrCat("unknown capability '", EscapeName(capability), "'"));
      }
      if (capability == "x-ignore-shared") ignore_shared_ = true;
      if (capability == "mapped-ram") {
        mapped_ram_ = true;
        profile_.ObserveAtLeast(QemuRelease::k9_2, "the mapped-ram capability");
      }
      summary_.capabilities.push_back(std::move(capability));
    }
    return absl::OkStatus();
  }
  if (name == kConfigUuid) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> uuid, reader.Bytes(16));
    std::string text;
    for (size_t i = 0; i < uuid.size(); ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
      absl::StrAppendFormat(&text, "%02x", uuid[i]);
    }
    summary_.uuid = text;
    return absl::OkStatus();
  }
  return context_.Fail(FindingCode::kConfigBadSubsection, offset,
                       absl::StrCat("unknown configuration subsection '", EscapeName(name), "'"));
}

absl::StatusOr<LoopEnd> StreamParser::ParseRecords(Reader& reader) {
  while (true) {
    QMIG_ASSIGN_OR_RETURN(bool at_end, reader.AtEnd());
    if (at_end) return LoopEnd::kEndOfInput;
    uint64_t offset = reader.offset();
    QMIG_ASSIGN_OR_RETURN(uint8_t type, reader.U8());
    switch (static_cast<SectionType>(type)) {
      case SectionType::kEof:
        ++summary_.sections["EOF"];
        return LoopEnd::kEof;
      case SectionType::kStart:
      case SectionType::kFull:
        QMIG_RETURN_IF_ERROR(ParseStartOrFull(reader, type, offset));
        break;
      case SectionType::kPart:
      case SectionType::kEnd:
        QMIG_RETURN_IF_ERROR(ParsePartOrEnd(reader, type, offset));
        break;
      case SectionType::kCommand: {
        bool quit = false;
        QMIG_RETURN_IF_ERROR(ParseCommand(reader, offset, &quit));
        if (quit) return LoopEnd::kRun;
        break;
      }
      case SectionType::kConfiguration:
        return context_.Fail(FindingCode::kConfigMisplaced, offset,
                             "CONFIGURATION may only follow the file header");
      case SectionType::kFooter:
        return context_.Fail(FindingCode::kFooterUnexpected, offset,
                             "a section footer (0x7e) where a record must start");
      default:
        return context_.Fail(FindingCode::kUnknownSectionType, offset,
                             absl::StrFormat("record type 0x%02x is not one of EOF, START, PART, "
                                             "END, FULL, COMMAND",
                                             type));
    }
  }
}

absl::Status StreamParser::ParseStartOrFull(Reader& reader, uint8_t type, uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(uint32_t section_id, reader.Be32());
  uint64_t idstr_offset = reader.offset();
  QMIG_ASSIGN_OR_RETURN(std::string idstr, reader.CountedString());
  QMIG_ASSIGN_OR_RETURN(uint32_t instance_id, reader.Be32());
  QMIG_ASSIGN_OR_RETURN(uint32_t version, reader.Be32());
  absl::string_view type_name = SectionTypeName(type);
  ++summary_.sections[std::string(type_name)];
  PathScope scope(context_, absl::StrCat(type_name, " '", EscapeName(idstr), "' #", instance_id));
  if (idstr.empty() || idstr.find('\0') != std::string::npos) {
    return context_.Fail(FindingCode::kBadIdstr, idstr_offset,
                         idstr.empty() ? "empty section name (QEMU cannot read it)"
                                       : "section name holds a NUL byte");
  }
  if (options_.observer != nullptr) {
    options_.observer->OnSection(type, section_id, idstr, instance_id, version, offset);
  }
  SectionState state;
  state.id = section_id;
  state.idstr = idstr;
  state.instance_id = instance_id;
  state.version = version;
  state.iterative = type == static_cast<uint8_t>(SectionType::kStart);
  state.ended = !state.iterative;
  if (idstr == kRamSectionName) {
    state.kind = SectionKind::kRam;
    if (state.iterative && section_id == 2) {
      // Ids count registrations: timer 0, block 1, ram 2 while live block
      // migration existed; 9.1 removed it.
      profile_.ObserveAtMost(QemuRelease::k8_2, "the RAM section has id 2, after block's");
    }
  } else if (idstr == "timer" || idstr == "apic" || idstr == "kvm-apic") {
    // Decided when both have come: a stream without one tells nothing.
    const bool apic = idstr != "timer";
    if (!first_of_timer_and_apic_.has_value()) {
      first_of_timer_and_apic_ = apic;
    } else if (*first_of_timer_and_apic_ != apic && !order_observed_) {
      order_observed_ = true;
      if (*first_of_timer_and_apic_) {
        profile_.ObserveAtLeast(QemuRelease::k11_1, "apic's section comes before timer's");
      } else {
        profile_.ObserveAtMost(QemuRelease::k10_0, "timer's section comes before apic's");
      }
    }
  }
  if (idstr == kBlockSectionName) {
    profile_.ObserveAtMost(QemuRelease::k8_2, "a block migration section (removed in 9.1)");
  }
  if (idstr == kRamSectionName) {
    state.kind = SectionKind::kRam;
  } else if (idstr == kDirtyBitmapSectionName) {
    state.kind = SectionKind::kDirtyBitmap;
  } else if (idstr == kBlockSectionName) {
    state.kind = SectionKind::kBlock;
  }
  auto existing = sections_.find(section_id);
  if (existing != sections_.end() || full_section_ids_.contains(section_id)) {
    // QEMU keeps a list of loaded sections and takes the latest one with
    // the id: it loads such a stream (seen with tools/fuzz_qemu.py).
    context_.Report(FindingCode::kDuplicateSectionId, offset,
                    absl::StrCat("section id ", section_id, " was already used by ",
                                 existing != sections_.end()
                                     ? absl::StrCat("'", EscapeName(existing->second.idstr), "'")
                                     : "a FULL section"),
                    {}, /*qemu_accepts=*/true);
  }
  // Only a START needs its state later, for its PARTs and its END; of a FULL
  // section the id is enough.
  SectionState* section = &state;
  if (state.iterative) {
    full_section_ids_.erase(section_id);
    if (existing != sections_.end()) {
      section = &(existing->second = std::move(state));
    } else if (sections_.size() < kMaxStartedSections) {
      section = &sections_.emplace(section_id, std::move(state)).first->second;
    } else {
      NoteUntrackedSection(offset, absl::StrCat("more than ", kMaxStartedSections,
                                                " START sections: this one and later ones are not "
                                                "followed, so their PARTs and ENDs are refused"));
    }
  } else {
    if (existing != sections_.end()) sections_.erase(existing);
    if (full_section_ids_.size() < options_.limits.max_section_ids) {
      full_section_ids_.insert(section_id);
    } else if (!full_section_ids_.contains(section_id)) {
      NoteUntrackedSection(offset,
                           absl::StrCat("more than ", options_.limits.max_section_ids,
                                        " FULL section ids: later ones are not remembered, so a "
                                        "repeated one or a PART/END naming one goes unchecked"));
    }
  }
  QMIG_RETURN_IF_ERROR(ParseSectionPayload(reader, *section, type, offset));
  QMIG_RETURN_IF_ERROR(CheckFooter(reader, section_id));
  if (options_.observer != nullptr) options_.observer->OnSectionEnd(section_id, reader.offset());
  return absl::OkStatus();
}

void StreamParser::NoteUntrackedSection(uint64_t offset, std::string message) {
  if (untracked_section_noted_) return;
  untracked_section_noted_ = true;
  context_.Report(FindingCode::kSectionUntracked, offset, std::move(message));
}

absl::Status StreamParser::ParsePartOrEnd(Reader& reader, uint8_t type, uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(uint32_t section_id, reader.Be32());
  absl::string_view type_name = SectionTypeName(type);
  ++summary_.sections[std::string(type_name)];
  auto it = sections_.find(section_id);
  SectionState unstored;  // a continued section past kMaxStartedSections
  if (it == sections_.end()) {
    if (full_section_ids_.contains(section_id)) {
      PathScope scope(context_, absl::StrCat(type_name, " #id ", section_id));
      return context_.Fail(
          FindingCode::kUnknownSectionId, offset,
          absl::StrCat("section id ", section_id,
                       " belongs to a FULL section; only START opens one for ", type_name));
    }
    if (!summary_.headerless) {
      PathScope scope(context_, absl::StrCat(type_name, " #id ", section_id));
      return context_.Fail(FindingCode::kUnknownSectionId, offset,
                           absl::StrCat("section id ", section_id, " was never opened by START"));
    }
    // A recovery connection continues sections opened on the first one; only
    // RAM (and dirty bitmaps) continue after postcopy starts.
    if (!headerless_note_given_) {
      headerless_note_given_ = true;
      context_.ReportAs(Severity::kNote, FindingCode::kUnknownSectionId, offset,
                        absl::StrCat("section id ", section_id,
                                     " was opened on an earlier connection; decoded as RAM"));
    }
    unstored.id = section_id;
    unstored.idstr = std::string(kRamSectionName);
    unstored.kind = SectionKind::kRam;
    unstored.version = kRamSectionVersion;
    unstored.iterative = true;
    if (sections_.size() < kMaxStartedSections) {
      it = sections_.emplace(section_id, std::move(unstored)).first;
    } else {
      NoteUntrackedSection(offset, absl::StrCat("more than ", kMaxStartedSections,
                                                " sections continued from an earlier connection: "
                                                "later ones are not remembered"));
    }
  }
  SectionState& section = it != sections_.end() ? it->second : unstored;
  PathScope scope(context_, absl::StrCat(type_name, " '", EscapeName(section.idstr), "' #",
                                         section.instance_id));
  if (options_.observer != nullptr) {
    options_.observer->OnSection(type, section_id, section.idstr, section.instance_id,
                                 section.version, offset);
  }
  if (section.ended) {
    context_.Report(FindingCode::kSectionAfterEnd, offset,
                    absl::StrCat(type_name, " after the section's END"), {},
                    /*qemu_accepts=*/true);
  }
  if (type == static_cast<uint8_t>(SectionType::kEnd)) section.ended = true;
  QMIG_RETURN_IF_ERROR(ParseSectionPayload(reader, section, type, offset));
  QMIG_RETURN_IF_ERROR(CheckFooter(reader, section_id));
  if (options_.observer != nullptr) options_.observer->OnSectionEnd(section_id, reader.offset());
  return absl::OkStatus();
}

absl::Status StreamParser::ParseSectionPayload(Reader& reader, SectionState& section, uint8_t type,
                                               uint64_t section_offset) {
  switch (section.kind) {
    case SectionKind::kRam:
      if (section.version != kRamSectionVersion) {
        return context_.Fail(
            FindingCode::kRamVersion, section_offset,
            absl::StrCat("RAM section version ", section.version, " (QEMU accepts only 4)"));
      }
      ram_section_seen_ = true;
      if (context_.package_depth() > 0 && package_has_listen_) {
        // LISTEN has started the listen thread, which reads the stream after
        // the package while this package is still being loaded: both load
        // RAM through the one state of the main channel (the block a CONTINUE
        // record refers to, the temporary page), in an order nobody controls.
        context_.Report(FindingCode::kPackageRamAfterListen, section_offset,
                        "RAM section in a package after LISTEN: the destination loads it while "
                        "its listen thread already loads the RAM after the package, through the "
                        "same channel state (a source sends only device state in the package)");
      }
      return ParseRamPayload(reader);
    case SectionKind::kDirtyBitmap:
      ++summary_.iterable_sections[section.idstr];
      return ParseDirtyBitmapPayload(reader);
    case SectionKind::kBlock:
      ++summary_.iterable_sections[section.idstr];
      return ParseBlockPayload(reader);
    case SectionKind::kDevice:
      if (postcopy_ >= PostcopyState::kRunning) {
        context_.Report(FindingCode::kCommandState, section_offset,
                        "device state after RUN: the guest is already running on the destination",
                        {}, /*qemu_accepts=*/true);
      }
      bool described = false;
      if (type != static_cast<uint8_t>(SectionType::kFull)) {
        QMIG_ASSIGN_OR_RETURN(described, DescribedDevice(reader, section));
      }
      if (described) {
        // QEMU loads any START or FULL section with the device's vmstate.
        context_.Report(
            FindingCode::kIterableUnverified, section_offset,
            absl::StrCat(SectionTypeName(type), " for device '", EscapeName(section.idstr),
                         "', which is not iterable: QEMU loads it as device state"),
            {}, /*qemu_accepts=*/true);
        return ParseDeviceBody(reader, section, section_offset);
      }
      if (type != static_cast<uint8_t>(SectionType::kFull)) {
        ++summary_.iterable_sections[section.idstr];
        return context_.Fail(FindingCode::kIterableUnverified, section_offset,
                             absl::StrCat("iterable section '", EscapeName(section.idstr),
                                          "' has a payload format qmig does not know"));
      }
      return ParseDeviceBody(reader, section, section_offset);
  }
  return absl::OkStatus();
}

absl::Status StreamParser::CheckFooter(Reader& reader, uint32_t section_id) {
  uint64_t offset = reader.offset();
  if (!footers_.has_value()) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> next, reader.PeekUpTo(1));
    if (next.empty()) return absl::OkStatus();  // the record loop reports the truncation
    footers_ = next[0] == static_cast<uint8_t>(SectionType::kFooter);
  }
  if (!*footers_) return absl::OkStatus();
  QMIG_ASSIGN_OR_RETURN(uint8_t marker, reader.U8());
  if (marker != static_cast<uint8_t>(SectionType::kFooter)) {
    return context_.Fail(FindingCode::kFooterMissing, offset,
                         absl::StrFormat("expected the section footer 0x7e, found 0x%02x", marker));
  }
  QMIG_ASSIGN_OR_RETURN(uint32_t footer_id, reader.Be32());
  if (footer_id != section_id) {
    return context_.Fail(
        FindingCode::kFooterMismatch, offset,
        absl::StrCat("footer names section id ", footer_id, ", the section is ", section_id));
  }
  return absl::OkStatus();
}

void StreamParser::CheckEndOfStream(uint64_t offset) {
  for (const auto& [id, section] : sections_) {
    if (section.iterative && !section.ended) {
      context_.Report(FindingCode::kSectionNotEnded, offset,
                      absl::StrCat("section '", EscapeName(section.idstr), "' (id ", id,
                                   ") was started but never ended"));
    }
  }
  if (postcopy_ == PostcopyState::kListening) {
    context_.Report(FindingCode::kCommandState, offset,
                    "EOF while the destination listens: RUN never arrived");
  }
  if (postcopy_ == PostcopyState::kDiscard) {
    // RAM_DISCARD tells the destination that postcopy is starting; only
    // 11.1 finishes a load that ends before LISTEN, earlier releases leave
    // it to a listen thread that never starts.
    context_.Report(FindingCode::kCommandState, offset,
                    "EOF after POSTCOPY_RAM_DISCARD: LISTEN never arrived, and the destination "
                    "waits for a postcopy phase that never starts (QEMU 7.2 to 10.0 hang)",
                    {}, QemuReleases::Only(QemuRelease::k11_1));
  }
  if (postcopy_ == PostcopyState::kRunning) postcopy_ = PostcopyState::kEnd;
}

absl::Status StreamParser::ParseAfterEof(Reader& reader) {
  PathScope scope(context_, "trailer");
  if (options_.live) {
    // QEMU writes no trailer once postcopy has begun; a live source then
    // waits for SHUT, so waiting here would only delay the migration.
    if (postcopy_ >= PostcopyState::kListening) return absl::OkStatus();
    // A live source sends its trailer right after EOF, then waits for SHUT.
    QMIG_ASSIGN_OR_RETURN(bool more, source_.WaitForData(reader.offset(), kLiveIdle));
    if (!more) return absl::OkStatus();
  }
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> next, reader.PeekUpTo(5));
  if (next.empty()) {
    if (!summary_.headerless && postcopy_ == PostcopyState::kNone) {
      context_.Report(FindingCode::kVmdescAbsent, reader.offset(),
                      "no VMDESCRIPTION after EOF (suppress-vmdesc, or an old machine type)");
    }
    return absl::OkStatus();
  }
  uint64_t offset = reader.offset();
  if (next[0] != static_cast<uint8_t>(SectionType::kVmDescription)) {
    return context_.Fail(FindingCode::kTrailingBytes, offset,
                         absl::StrFormat("byte 0x%02x after EOF where only a VMDESCRIPTION (0x06) "
                                         "may follow",
                                         next[0]),
                         {}, /*qemu_accepts=*/true);
  }
  reader.U8().IgnoreError();
  if (next.size() < 5) {
    return context_.Fail(FindingCode::kVmdescTruncated, offset,
                         "VMDESCRIPTION ends inside its length field", {}, /*qemu_accepts=*/true);
  }
  QMIG_ASSIGN_OR_RETURN(uint32_t length, reader.Be32());
  summary_.vmdesc_present = true;
  summary_.vmdesc_bytes = length;
  if (length > options_.limits.max_vmdesc_bytes) {
    return context_.Fail(
        FindingCode::kVmdescTooLarge, offset,
        absl::StrCat("VMDESCRIPTION declares ", length, " bytes, over the limit of ",
                     options_.limits.max_vmdesc_bytes),
        {}, /*qemu_accepts=*/true);
  }
  // Read what arrives, in chunks; a short trailer is its own finding. When
  // the probe already parsed this trailer and no observer wants its text,
  // the bytes are only passed over: holding a second copy beside the parsed
  // description would double what a large one costs.
  const bool keep_text = options_.observer != nullptr || trailer_offset_ != offset;
  std::string json;
  uint64_t read = 0;
  while (read < length) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> chunk,
                          reader.PeekUpTo(std::min<uint64_t>(length - read, kMaxContiguousView)));
    if (chunk.empty()) {
      return context_.Fail(
          FindingCode::kVmdescTruncated, reader.offset(),
          absl::StrCat("VMDESCRIPTION declares ", length, " bytes but the input ends after ", read),
          {}, /*qemu_accepts=*/true);
    }
    if (keep_text) {
      // Grown by doubling from what has arrived, not reserved from the
      // declared length: a cut stream costs what it holds.
      json.append(chunk.begin(), chunk.end());
    }
    read += chunk.size();
    QMIG_RETURN_IF_ERROR(reader.Skip(chunk.size()));
  }
  if (options_.observer != nullptr) options_.observer->OnTrailer(offset, json);
  // The probe may have parsed this very trailer already.
  std::optional<VmDescription> parsed;
  const VmDescription* description = nullptr;
  absl::Status json_status = trailer_error_;
  if (trailer_offset_ == offset) {
    if (trailer_description_.has_value()) description = &*trailer_description_;
  } else {
    absl::StatusOr<VmDescription> result = ParseVmDescription(json);
    json_status = result.status();
    if (result.ok()) description = &parsed.emplace(std::move(*result));
  }
  if (!json_status.ok()) {
    context_.Report(FindingCode::kVmdescBadJson, offset + 5, std::string(json_status.message()), {},
                    /*qemu_accepts=*/true);
  }
  if (description != nullptr) {
    // The destination never reads the description: what it holds can only
    // mislead a reader such as analyze-migration.py.
    for (const DescriptionWarning& warning : description->warnings) {
      context_.Report(warning.code, offset + 5, warning.message, {}, /*qemu_accepts=*/true);
    }
  }
  if (options_.live) return absl::OkStatus();  // the peer may wait for us now
  QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> rest, reader.PeekUpTo(1));
  if (!rest.empty()) {
    return context_.Fail(FindingCode::kTrailingBytes, reader.offset(),
                         "bytes after the VMDESCRIPTION trailer", {}, /*qemu_accepts=*/true);
  }
  return absl::OkStatus();
}

}  // namespace internal

ParseResult ParseMigrationStream(ByteSource& source, const ParseOptions& options) {
  ParseResult result{StreamSummary{}, FindingList(options.limits.max_findings)};
  internal::StreamParser parser(source, options, result);
  parser.Run();
  return result;
}

}  // namespace qmig
