// QEMU_VM_COMMAND: framing, the length rule of every command, the postcopy
// state machine of the destination, and PACKAGED sub-streams.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/stream_parser_internal.h"
#include "parser/wire/checked_math.h"
#include "parser/wire/escape.h"

namespace qmig {
namespace internal {
namespace {

// Commands whose handlers read their payload from the main channel, not from
// the stream they appear in: inside a package they would consume bytes of
// the stream that follows the package.
bool ReadsOuterStream(CommandKind kind) {
  return kind == CommandKind::kPostcopyAdvise || kind == CommandKind::kPostcopyRamDiscard ||
         kind == CommandKind::kPackaged || kind == CommandKind::kRecvBitmap;
}

}  // namespace

absl::Status StreamParser::ParseCommand(Reader& reader, uint64_t offset, bool* quit) {
  QMIG_ASSIGN_OR_RETURN(uint16_t number, reader.Be16());
  QMIG_ASSIGN_OR_RETURN(uint16_t length, reader.Be16());
  profile_.ObserveCommand(number, length);
  const Profile& profile = profile_.active();
  const CommandSpec* spec = profile.FindCommand(number);
  if (spec == nullptr) {
    PathScope scope(context_, absl::StrCat("COMMAND@", HexOffset(offset)));
    return context_.Fail(FindingCode::kUnknownCommand, offset,
                         absl::StrCat("command ", number, " is unknown to profile ", profile.name));
  }
  CommandKind kind = spec->kind;
  CountCommand(kind);
  PathScope scope(context_, absl::StrCat(CommandKindName(kind), "@", HexOffset(offset)));
  if (spec->fixed_length >= 0 && length != spec->fixed_length) {
    return context_.Fail(FindingCode::kCommandLength, offset,
                         absl::StrCat(CommandKindName(kind), " must have length ",
                                      spec->fixed_length, ", has ", length));
  }
  bool in_package = context_.package_depth() > 0;
  if (in_package && ReadsOuterStream(kind)) {
    context_.Report(FindingCode::kForbiddenInPackage, offset,
                    absl::StrCat(CommandKindName(kind),
                                 " inside a package: QEMU reads its payload from the main stream, "
                                 "after the package"));
  }
  if (kind == CommandKind::kPackaged) {
    if (options_.observer != nullptr) {
      QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> payload, reader.Peek(4));
      options_.observer->OnCommand(kind, offset, payload);
    }
    return ParsePackaged(reader, offset);
  }

  QMIG_ASSIGN_OR_RETURN(Reader payload, reader.Sub(length, kCommandLimitName));
  if (options_.observer != nullptr) {
    QMIG_ASSIGN_OR_RETURN(absl::Span<const uint8_t> bytes, payload.Peek(length));
    options_.observer->OnCommand(kind, offset, bytes);
  }
  switch (kind) {
    case CommandKind::kInvalid:
      return context_.Fail(FindingCode::kUnknownCommand, offset, "command 0 is invalid");
    case CommandKind::kOpenReturnPath:
      if (return_path_open_) {
        context_.Report(FindingCode::kDuplicateReturnPath, offset,
                        "the return path is already open; QEMU only complains", {},
                        /*qemu_accepts=*/true);
      }
      return_path_open_ = true;
      break;
    case CommandKind::kPing: {
      QMIG_ASSIGN_OR_RETURN(uint32_t value, payload.Be32());
      if (summary_.pings.size() < kMaxRecordedPings) summary_.pings.push_back(value);
      if (!return_path_open_) {
        context_.Report(FindingCode::kPingNoReturnPath, offset,
                        absl::StrFormat("PING 0x%x with no return path to answer on", value));
      }
      break;
    }
    case CommandKind::kPostcopyAdvise:
      QMIG_RETURN_IF_ERROR(ParseAdvise(payload, length, offset));
      break;
    case CommandKind::kPostcopyListen:
      if (!in_package) {
        // QEMU 7.2 does not check where LISTEN comes from; device state its
        // listen thread then loads without the iothread lock trips an
        // assertion (corpus/regressions/qemu/listen-outside-package.json).
        context_.Report(FindingCode::kCommandState, offset,
                        "LISTEN outside a package: the listen thread and the main loop would both "
                        "read the main stream, and QEMU's listen thread would load device state "
                        "without the iothread lock");
      }
      if (postcopy_ != PostcopyState::kAdvise && postcopy_ != PostcopyState::kDiscard) {
        context_.Report(FindingCode::kCommandState, offset,
                        absl::StrCat("LISTEN in postcopy state ", PostcopyStateName(postcopy_),
                                     " (needs advise or discard)"));
      }
      postcopy_ = PostcopyState::kListening;
      package_has_listen_ = true;
      break;
    case CommandKind::kPostcopyRun:
      if (postcopy_ != PostcopyState::kListening) {
        context_.Report(FindingCode::kCommandState, offset,
                        absl::StrCat("RUN in postcopy state ", PostcopyStateName(postcopy_),
                                     " (needs listening)"));
      } else {
        postcopy_ = PostcopyState::kRunning;
      }
      *quit = true;
      break;
    case CommandKind::kPostcopyRamDiscard:
      QMIG_RETURN_IF_ERROR(ParseRamDiscard(payload, length, offset));
      break;
    case CommandKind::kPackaged:
      break;  // handled above
    case CommandKind::kEnableColo:
      // The load ends as usual, then the destination waits for COLO
      // checkpoints on the same channel. 7.2 takes the command without the
      // x-colo capability and then waits forever; later QEMU refuses it.
      context_.Report(FindingCode::kEnableColo, offset,
                      "ENABLE_COLO: after this stream the destination waits for COLO "
                      "checkpoints, which qmig does not read; it needs the x-colo capability "
                      "(QEMU 7.2 does not check, and without a COLO source waits forever; "
                      "8.1 and later refuse it without x-colo)",
                      {}, QemuReleases::Only(QemuRelease::k7_2));
      break;
    case CommandKind::kPostcopyResume:
      if (!summary_.headerless) {
        context_.Report(FindingCode::kCommandState, offset,
                        "POSTCOPY_RESUME outside a recovery connection; QEMU only warns", {},
                        /*qemu_accepts=*/true);
      }
      break;
    case CommandKind::kRecvBitmap:
      QMIG_RETURN_IF_ERROR(ParseRecvBitmapCommand(payload, length, offset));
      break;
    case CommandKind::kSwitchoverStart:
      break;
  }
  if (payload.offset() != offset + 5 + length) {
    return context_.Fail(FindingCode::kCommandLength, offset,
                         absl::StrCat(CommandKindName(kind), " declares ", length,
                                      " payload bytes but its fields take ",
                                      payload.offset() - offset - 5));
  }
  reader.MoveTo(payload.offset());
  return absl::OkStatus();
}

absl::Status StreamParser::ParseAdvise(Reader& payload, uint16_t length, uint64_t offset) {
  if (postcopy_ != PostcopyState::kNone) {
    context_.Report(FindingCode::kCommandState, offset,
                    absl::StrCat("second POSTCOPY_ADVISE (postcopy state ",
                                 PostcopyStateName(postcopy_), ")"));
  }
  if (ram_section_seen_) {
    context_.Report(FindingCode::kCommandState, offset,
                    "POSTCOPY_ADVISE after RAM sections: MEM_SIZE entries would have been read "
                    "without the postcopy page-size field",
                    {}, /*qemu_accepts=*/true);
  }
  postcopy_ = PostcopyState::kAdvise;
  if (length == 0) {
    if (!profile_.active().advise_has_length_zero) {
      return context_.Fail(FindingCode::kCommandLength, offset,
                           absl::StrCat("profile ", profile_.active().name,
                                        " has no 0-byte POSTCOPY_ADVISE"));
    }
    // Dirty-bitmap postcopy only: a source with postcopy-ram sends 16 bytes.
    // Whether RAM pages may follow LISTEN is checked where they come.
    advise_without_ram_ = true;
    return absl::OkStatus();
  }
  if (length != 16) {
    return context_.Fail(FindingCode::kCommandLength, offset,
                         absl::StrCat("POSTCOPY_ADVISE must be 0 or 16 bytes, is ", length));
  }
  QMIG_ASSIGN_OR_RETURN(uint64_t page_size_summary, payload.Be64());
  QMIG_ASSIGN_OR_RETURN(uint64_t target_page_size, payload.Be64());
  advise_with_ram_ = true;
  if (page_size_summary == 0 || (page_size_summary & (kTargetPageSize - 1)) != 0) {
    context_.Report(FindingCode::kCommandPayload, offset + 5,
                    absl::StrFormat("RAM page-size summary 0x%x is not an OR of page sizes",
                                    page_size_summary));
  }
  if (target_page_size != kTargetPageSize) {
    context_.Report(FindingCode::kCommandPayload, offset + 13,
                    absl::StrCat("target page size ", target_page_size, " (expected ",
                                 kTargetPageSize, ")"));
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParseRamDiscard(Reader& payload, uint16_t length, uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(uint8_t version, payload.U8());
  uint64_t name_offset = payload.offset();
  QMIG_ASSIGN_OR_RETURN(std::string name, payload.CountedString());
  QMIG_ASSIGN_OR_RETURN(uint8_t terminator, payload.U8());
  if (version != kRamDiscardVersion) {
    context_.Report(FindingCode::kCommandPayload, offset + 5,
                    absl::StrCat("RAM_DISCARD version ", version, " (expected 0)"));
  }
  if (name.empty() || name.find('\0') != std::string::npos) {
    context_.Report(FindingCode::kCommandPayload, name_offset,
                    name.empty() ? "empty RAMBlock name" : "RAMBlock name holds a NUL");
  }
  if (terminator != 0) {
    context_.Report(FindingCode::kCommandPayload, payload.offset() - 1,
                    absl::StrFormat("byte after the name is 0x%02x, not 0", terminator));
  }
  uint64_t header = 3 + name.size();
  if (length <= header || (length - header) % 16 != 0) {
    return context_.Fail(FindingCode::kCommandLength, offset,
                         absl::StrCat("RAM_DISCARD length ", length, " is not 3 + ", name.size(),
                                      " + 16*n with n >= 1"));
  }
  if (postcopy_ == PostcopyState::kAdvise || postcopy_ == PostcopyState::kDiscard) {
    postcopy_ = PostcopyState::kDiscard;
    if (advise_without_ram_ && !advise_with_ram_ && !unadvised_discard_reported_) {
      // QEMU 7.2 discards all the same on a destination without postcopy-ram
      // (with it, the 0-byte ADVISE already failed); the pages then come
      // back only if postcopy RAM pages follow, and those fail.
      unadvised_discard_reported_ = true;
      context_.ReportAs(Severity::kWarning, FindingCode::kCommandState, offset,
                        "RAM_DISCARD after a 0-byte POSTCOPY_ADVISE: RAM postcopy was not "
                        "advised, so nothing can send the discarded pages again",
                        {}, /*qemu_accepts=*/true);
    }
  } else {
    context_.Report(FindingCode::kCommandState, offset,
                    absl::StrCat("RAM_DISCARD in postcopy state ", PostcopyStateName(postcopy_),
                                 postcopy_ >= PostcopyState::kListening
                                     ? ": discard after LISTEN drops pages the guest may own"
                                     : " (needs advise or discard)"));
  }
  const RamBlockState* block = FindBlock(name);
  if (block == nullptr && ram_blocks_known_) {
    context_.Report(FindingCode::kDiscardBlock, name_offset,
                    absl::StrCat("RAM_DISCARD for unknown block '", EscapeName(name), "'"));
  }
  uint64_t ranges = (length - header) / 16;
  for (uint64_t i = 0; i < ranges; ++i) {
    uint64_t range_offset = payload.offset();
    QMIG_ASSIGN_OR_RETURN(uint64_t start, payload.Be64());
    QMIG_ASSIGN_OR_RETURN(uint64_t range_length, payload.Be64());
    uint64_t align = block != nullptr ? block->page_size : kTargetPageSize;
    std::string leaf = absl::StrCat("range[", i, "]");
    if (range_length == 0 || start % align != 0 || range_length % align != 0) {
      context_.Report(FindingCode::kDiscardRange, range_offset,
                      absl::StrFormat("range 0x%x+0x%x is empty or not aligned to 0x%x", start,
                                      range_length, align),
                      leaf);
    } else if (!CheckedAdd(start, range_length).has_value()) {
      context_.Report(FindingCode::kDiscardRange, range_offset,
                      absl::StrFormat("range 0x%x+0x%x overflows 64 bits", start, range_length),
                      leaf);
    } else if (block != nullptr && !RangeWithin(start, range_length, block->length)) {
      context_.Report(FindingCode::kDiscardRange, range_offset,
                      absl::StrFormat("range 0x%x+0x%x runs past the block's 0x%x bytes", start,
                                      range_length, block->length),
                      leaf);
    }
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParseRecvBitmapCommand(Reader& payload, uint16_t length,
                                                  uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(std::string name, payload.CountedString());
  if (name.empty()) {
    context_.Report(FindingCode::kCommandPayload, offset + 5, "RECV_BITMAP with an empty name");
  }
  if (length != name.size() + 1) {
    return context_.Fail(FindingCode::kCommandLength, offset,
                         absl::StrCat("RECV_BITMAP length ", length, " is not 1 + ", name.size()));
  }
  if (ram_blocks_known_ && FindBlock(name) == nullptr) {
    context_.Report(FindingCode::kCommandPayload, offset + 5,
                    absl::StrCat("RECV_BITMAP for unknown block '", EscapeName(name), "'"));
  }
  return absl::OkStatus();
}

absl::Status StreamParser::ParsePackaged(Reader& reader, uint64_t offset) {
  QMIG_ASSIGN_OR_RETURN(uint32_t length, reader.Be32());
  ++summary_.packages;
  if (context_.package_depth() >= options_.limits.max_package_depth) {
    return context_.Fail(FindingCode::kPackageTooDeep, offset,
                         absl::StrCat("package nested ", context_.package_depth() + 1,
                                      " deep, over the limit of ",
                                      options_.limits.max_package_depth));
  }
  uint64_t limit = std::min(options_.limits.max_package_bytes, profile_.active().package_limit_cap);
  if (length > limit) {
    return context_.Fail(
        FindingCode::kPackageTooLarge, offset + 5,
        absl::StrCat("package of ", length, " bytes exceeds the limit of ", limit,
                     " bytes (--max-package raises it; QEMU >= 3.0 accepts up to 4 GiB - 1)"),
        {}, /*qemu_accepts=*/true);
  }
  uint64_t blob_start = reader.offset();
  // A length past an enclosing package is malformed, and the fault of this
  // command. A length past the end of the input is found while reading,
  // exactly as on a pipe, where the input's size is not known in advance.
  if (reader.limit().has_value() && *reader.limit() - blob_start < length) {
    return context_.Fail(FindingCode::kPackageEndsMidRecord, offset,
                         absl::StrCat("PACKAGED declares ", length, " bytes but only ",
                                      *reader.limit() - blob_start, " remain in the ",
                                      reader.limit_name()));
  }
  Reader blob = reader.Bounded(length, kPackageLimitName);
  context_.PushPackage({offset, blob_start, length});
  if (options_.observer != nullptr) options_.observer->OnPackageBegin(offset, length);
  bool outer_listen = package_has_listen_;
  package_has_listen_ = false;

  absl::StatusOr<LoopEnd> end = ParseRecords(blob);
  absl::Status status = end.status();
  uint64_t records_end = blob.offset();
  uint64_t left = blob_start + length - records_end;
  if (end.ok() && *end != LoopEnd::kEndOfInput && left > 0) {
    // The rest of the blob must exist before it counts as "bytes after RUN";
    // on a pipe this is where an overlong length meets the end of input.
    status = blob.Skip(left);
  }
  if (status.ok()) {
    switch (*end) {
      case LoopEnd::kEof:
        if (package_has_listen_) {
          context_.Report(FindingCode::kPackageNoRun, blob.offset() - 1,
                          "package holds LISTEN but ends with EOF, not RUN: the main loop and the "
                          "listen thread would both read the main stream");
        }
        if (left > 0) {
          context_.Report(FindingCode::kPackageBytesAfterRun, records_end,
                          absl::StrCat(left, " bytes follow EOF inside the package"), {},
                          /*qemu_accepts=*/true);
        }
        break;
      case LoopEnd::kRun:
        if (left > 0) {
          context_.Report(FindingCode::kPackageBytesAfterRun, records_end,
                          absl::StrCat(left,
                                       " bytes follow RUN inside the package; QEMU discards them "
                                       "(stream data swallowed by an overlong package?)"),
                          {}, /*qemu_accepts=*/true);
        }
        break;
      case LoopEnd::kEndOfInput:
        status = context_.Fail(
            FindingCode::kPackageNoEnd, blob.offset(),
            package_has_listen_
                ? "package holds LISTEN but ends without RUN"
                : "package ends without EOF or RUN; QEMU fails with a stream error");
        break;
    }
  }
  context_.PopPackage();
  package_has_listen_ = outer_listen;
  if (options_.observer != nullptr && status.ok()) {
    options_.observer->OnPackageEnd(blob_start + length);
  }
  if (!status.ok()) return status;
  reader.MoveTo(blob_start + length);
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace qmig
