// Wire constants of the QEMU migration stream that do not depend on the QEMU
// version. Command numbers do; they live in profile.h.
#ifndef QMIG_PARSER_WIRE_CONSTANTS_H_
#define QMIG_PARSER_WIRE_CONSTANTS_H_

#include <cstdint>
#include "absl/strings/string_view.h"

namespace qmig {

inline constexpr uint32_t kFileMagic = 0x5145564d;  // "QEVM"
inline constexpr uint32_t kFileVersionObsolete = 2;
inline constexpr uint32_t kFileVersion = 3;

// The byte that starts each top-level record.
enum class SectionType : uint8_t {
  kEof = 0x00,
  kStart = 0x01,
  kPart = 0x02,
  kEnd = 0x03,
  kFull = 0x04,
  kSubsection = 0x05,
  kVmDescription = 0x06,
  kConfiguration = 0x07,
  kCommand = 0x08,
  kFooter = 0x7e,
};

absl::string_view SectionTypeName(uint8_t type);

// Commands by meaning; the number on the wire depends on the profile.
enum class CommandKind : uint8_t {
  kInvalid,
  kOpenReturnPath,
  kPing,
  kPostcopyAdvise,
  kPostcopyListen,
  kPostcopyRun,
  kPostcopyRamDiscard,
  kPackaged,
  kEnableColo,
  kPostcopyResume,
  kRecvBitmap,
  kSwitchoverStart,
};

absl::string_view CommandKindName(CommandKind kind);

// PING values with a meaning of their own.
inline constexpr uint32_t kPingPackagedLoaded = 0x42;

inline constexpr uint8_t kRamDiscardVersion = 0;

// RAM section ("ram", instance 0, version 4) record flags.
inline constexpr uint32_t kRamSectionVersion = 4;
namespace ram_flag {
inline constexpr uint32_t kFull = 0x001;  // obsolete
inline constexpr uint32_t kZero = 0x002;
inline constexpr uint32_t kMemSize = 0x004;
inline constexpr uint32_t kPage = 0x008;
inline constexpr uint32_t kEos = 0x010;
inline constexpr uint32_t kContinue = 0x020;
inline constexpr uint32_t kXbzrle = 0x040;
inline constexpr uint32_t kHook = 0x080;
inline constexpr uint32_t kCompressPage = 0x100;
inline constexpr uint32_t kMultifdFlush = 0x200;
}  // namespace ram_flag

inline constexpr uint8_t kXbzrleEncodingFlag = 0x01;

// Return-path messages (destination to source): be16 type, be16 len.
enum class ReturnPathType : uint16_t {
  kInvalid = 0,
  kShut = 1,
  kPong = 2,
  kReqPagesId = 3,
  kReqPages = 4,
  kRecvBitmap = 5,
  kResumeAck = 6,
  kSwitchoverAck = 7,
};
inline constexpr uint16_t kReturnPathTypeCount = 8;
absl::string_view ReturnPathTypeName(uint16_t type);

inline constexpr uint64_t kRecvBitmapEndMark = 0x0123456789abcdefull;
inline constexpr uint32_t kResumeAckValue = 1;

// Multifd channels.
inline constexpr uint32_t kMultifdMagic = 0x11223344;
inline constexpr uint32_t kMultifdVersion = 1;
inline constexpr uint32_t kMultifdFlagSync = 0x1;
inline constexpr uint32_t kMultifdFlagCompressionMask = 0x3e;
inline constexpr uint32_t kMultifdFlagDeviceState = 0x40;

// Well-known section names.
inline constexpr absl::string_view kRamSectionName = "ram";
inline constexpr absl::string_view kDirtyBitmapSectionName = "dirty-bitmap";
inline constexpr absl::string_view kBlockSectionName = "block";

// CONFIGURATION subsection names.
inline constexpr absl::string_view kConfigTargetPageBits = "configuration/target-page-bits";
inline constexpr absl::string_view kConfigCapabilities = "configuration/capabilities";
inline constexpr absl::string_view kConfigUuid = "configuration/uuid";

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_CONSTANTS_H_
