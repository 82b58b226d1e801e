#include "parser/wire/constants.h"

namespace qmig {

absl::string_view SectionTypeName(uint8_t type) {
  switch (static_cast<SectionType>(type)) {
    case SectionType::kEof: return "EOF";
    case SectionType::kStart: return "START";
    case SectionType::kPart: return "PART";
    case SectionType::kEnd: return "END";
    case SectionType::kFull: return "FULL";
    case SectionType::kSubsection: return "SUBSECTION";
    case SectionType::kVmDescription: return "VMDESCRIPTION";
    case SectionType::kConfiguration: return "CONFIGURATION";
    case SectionType::kCommand: return "COMMAND";
    case SectionType::kFooter: return "FOOTER";
  }
  return "UNKNOWN";
}

absl::string_view CommandKindName(CommandKind kind) {
  switch (kind) {
    case CommandKind::kInvalid: return "INVALID";
    case CommandKind::kOpenReturnPath: return "OPEN_RETURN_PATH";
    case CommandKind::kPing: return "PING";
    case CommandKind::kPostcopyAdvise: return "POSTCOPY_ADVISE";
    case CommandKind::kPostcopyListen: return "POSTCOPY_LISTEN";
    case CommandKind::kPostcopyRun: return "POSTCOPY_RUN";
    case CommandKind::kPostcopyRamDiscard: return "POSTCOPY_RAM_DISCARD";
    case CommandKind::kPackaged: return "PACKAGED";
    case CommandKind::kEnableColo: return "ENABLE_COLO";
    case CommandKind::kPostcopyResume: return "POSTCOPY_RESUME";
    case CommandKind::kRecvBitmap: return "RECV_BITMAP";
    case CommandKind::kSwitchoverStart: return "SWITCHOVER_START";
  }
  return "UNKNOWN";
}

absl::string_view ReturnPathTypeName(uint16_t type) {
  switch (type) {
    case 1: return "SHUT";
    case 2: return "PONG";
    case 3: return "REQ_PAGES_ID";
    case 4: return "REQ_PAGES";
    case 5: return "RECV_BITMAP";
    case 6: return "RESUME_ACK";
    case 7: return "SWITCHOVER_ACK";
  }
  return "INVALID";
}

}  // namespace qmig
