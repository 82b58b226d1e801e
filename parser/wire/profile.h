// Protocol profiles: the QEMU versions whose command numbering and RAM flags
// qmig knows. A profile answers "what does command number N mean here, and
// which RAM flags exist"; the parser never hard-codes a command number.
#ifndef QMIG_PARSER_WIRE_PROFILE_H_
#define QMIG_PARSER_WIRE_PROFILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/constants.h"
#include "parser/wire/release.h"

namespace qmig {

enum class ProfileId : uint8_t {
  kQemu72,    // Debian 12's QEMU 7.2 (the reference the first corpus was made with).
  kQemu82,    // 8.2 (Ubuntu 24.04): MULTIFD_FLUSH, zero pages filled with 0 only.
  kQemu92,    // 9.x: mapped-ram, multifd zero pages; no COMPRESS_PAGE, no block section.
  kQemu100,   // 10.0 (Debian 13, RHEL 10): SWITCHOVER_START = 11.
  kQemu111,   // 11.x: devices saved in a new order (apic before timer).
  kUpstream,  // Current upstream, as qemu-11.1.
  kQemu30,    // QEMU 3.0: POSTCOPY_RESUME = 8, RECV_BITMAP = 9.
  kV5Draft,   // The 2015 postcopy v5 posting: PACKAGED = 3, ADVISE = 20..23.
};

// Expected payload length of a command: a fixed number, or a rule checked by
// the command decoder.
struct CommandSpec {
  uint16_t number;
  CommandKind kind;
  int32_t fixed_length;  // -1 when the length is variable.
};

struct Profile {
  ProfileId id;
  absl::string_view name;  // stable, used by --profile
  absl::string_view description;
  std::vector<CommandSpec> commands;
  uint32_t ram_flags_known;     // union of the RAM flags this version defines
  uint64_t package_limit_cap;   // largest package this version accepts
  bool advise_has_length_zero;  // ADVISE may be 0 bytes (dirty-bitmap postcopy)
  // The release whose rules these are; nullopt for historical numberings.
  std::optional<QemuRelease> release;

  // The command with this wire number, or nullptr when the profile has none.
  const CommandSpec* FindCommand(uint16_t number) const;
  // The wire number of a command kind, if the profile has it.
  std::optional<uint16_t> NumberOf(CommandKind kind) const;
};

// All profiles, in auto-detection preference order (QEMU 7.2 first).
absl::Span<const Profile> AllProfiles();
const Profile& GetProfile(ProfileId id);
// Looks a profile up by its `name`; nullptr when unknown.
const Profile* FindProfileByName(absl::string_view name);

// Narrows the set of profiles a stream is consistent with, observation by
// observation. The active profile is the first consistent one in preference
// order; when nothing is consistent any more, the last active profile stays
// active so that its error messages explain the stream.
class ProfileDetector {
 public:
  // Auto-detection across all profiles.
  ProfileDetector();
  // A fixed profile: observations never change it.
  explicit ProfileDetector(ProfileId fixed);

  const Profile& active() const { return *active_; }
  bool is_fixed() const { return fixed_; }
  // Whether the active profile was chosen by evidence rather than default.
  bool decided() const { return decided_; }

  // A command with this number and payload length was seen.
  void ObserveCommand(uint16_t number, uint16_t length);
  // A RAM record with these flags was seen.
  void ObserveRamFlags(uint32_t flags);
  // Evidence from what a stream carries beyond its records and commands,
  // which only some releases send (docs/PROFILES.md lists each): the stream
  // was made by `release` or a later one, or by it or an earlier one. `why`
  // is kept for the summary. Historical profiles are left alone.
  void ObserveAtLeast(QemuRelease release, absl::string_view why);
  void ObserveAtMost(QemuRelease release, absl::string_view why);
  // What narrowed the profiles, in order ("the VMDESCRIPTION has a
  // configuration member: QEMU 8.2 or later").
  const std::vector<std::string>& evidence() const { return evidence_; }
  // Profiles still consistent with the stream besides the active one, in
  // preference order: what the stream cannot tell apart.
  std::vector<absl::string_view> AlsoConsistent() const;
  // The CONFIGURATION section named this machine type. A versioned type
  // ("pc-i440fx-7.2", "pc-q35-10.0") bounds which QEMU sent the stream and
  // which commands its compat properties allow.
  void ObserveMachine(absl::string_view machine);

 private:
  template <typename Keep>
  void Narrow(Keep keep);
  // The releases of the candidates left, for evidence: "QEMU 10.0 to 11.1".
  std::string CandidateReleases() const;
  // Keeps `why` as evidence when the candidates changed since `before`.
  void Note(uint32_t before, absl::string_view why);

  // Version of the machine type, e.g. {7, 2}; {0, 0} when unknown.
  std::pair<int, int> machine_version_ = {0, 0};

  bool fixed_ = false;
  bool decided_ = false;
  uint32_t candidates_ = 0;  // bit i: AllProfiles()[i] still consistent
  const Profile* active_;
  uint32_t last_ram_flags_ = UINT32_MAX;  // narrowing twice by the same flags is a no-op
  std::vector<std::string> evidence_;
};

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_PROFILE_H_
