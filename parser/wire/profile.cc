#include "parser/wire/profile.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

using K = CommandKind;

// Commands 0..7 have kept their numbers since the merge in 2015-11.
std::vector<CommandSpec> MergedCommandsThroughPackaged() {
  return {
      {1, K::kOpenReturnPath, 0}, {2, K::kPing, 4},        {3, K::kPostcopyAdvise, -1},
      {4, K::kPostcopyListen, 0}, {5, K::kPostcopyRun, 0}, {6, K::kPostcopyRamDiscard, -1},
      {7, K::kPackaged, 4},
  };
}

constexpr uint32_t kRamFlagsBase = ram_flag::kZero | ram_flag::kMemSize | ram_flag::kPage |
                                   ram_flag::kEos | ram_flag::kContinue | ram_flag::kXbzrle |
                                   ram_flag::kHook;

std::vector<Profile> MakeProfiles() {
  std::vector<Profile> profiles;

  std::vector<CommandSpec> q72 = MergedCommandsThroughPackaged();
  q72.push_back({8, K::kEnableColo, 0});
  q72.push_back({9, K::kPostcopyResume, 0});
  q72.push_back({10, K::kRecvBitmap, -1});
  profiles.push_back({ProfileId::kQemu72, "qemu-7.2",
                      "Debian 12 QEMU 7.2: commands 1-10, COMPRESS_PAGE, no MULTIFD_FLUSH", q72,
                      kRamFlagsBase | ram_flag::kCompressPage, kMaxPackageLimit, true,
                      QemuRelease::k7_2});
  // MULTIFD_FLUSH came in 8.1; COMPRESS_PAGE went in 9.1 (the profile of 9.x
  // follows 9.1 and 9.2, as later releases do).
  profiles.push_back({ProfileId::kQemu82, "qemu-8.2",
                      "QEMU 8.2: commands 1-10, MULTIFD_FLUSH, COMPRESS_PAGE", q72,
                      kRamFlagsBase | ram_flag::kCompressPage | ram_flag::kMultifdFlush,
                      kMaxPackageLimit, true, QemuRelease::k8_2});
  profiles.push_back({ProfileId::kQemu92, "qemu-9.2",
                      "QEMU 9.x: commands 1-10, MULTIFD_FLUSH, mapped-ram, no COMPRESS_PAGE", q72,
                      kRamFlagsBase | ram_flag::kMultifdFlush, kMaxPackageLimit, true,
                      QemuRelease::k9_2});
  std::vector<CommandSpec> q100 = q72;
  q100.push_back({11, K::kSwitchoverStart, 0});
  profiles.push_back(
      {ProfileId::kQemu100, "qemu-10.0", "QEMU 10.0 (Debian 13): SWITCHOVER_START = 11", q100,
       kRamFlagsBase | ram_flag::kMultifdFlush, kMaxPackageLimit, true, QemuRelease::k10_0});
  profiles.push_back(
      {ProfileId::kQemu111, "qemu-11.1", "QEMU 11.x: as 10.0, devices saved in a new order", q100,
       kRamFlagsBase | ram_flag::kMultifdFlush, kMaxPackageLimit, true, QemuRelease::k11_1});
  profiles.push_back({ProfileId::kUpstream, "upstream", "current upstream QEMU, as qemu-11.1", q100,
                      kRamFlagsBase | ram_flag::kMultifdFlush, kMaxPackageLimit, true,
                      QemuRelease::k11_1});

  std::vector<CommandSpec> q30 = MergedCommandsThroughPackaged();
  q30.push_back({8, K::kPostcopyResume, 0});
  q30.push_back({9, K::kRecvBitmap, -1});
  profiles.push_back({ProfileId::kQemu30, "qemu-3.0",
                      "QEMU 3.0: POSTCOPY_RESUME = 8, RECV_BITMAP = 9, no ENABLE_COLO", q30,
                      kRamFlagsBase | ram_flag::kCompressPage, kMaxPackageLimit, true,
                      std::nullopt});

  std::vector<CommandSpec> v5 = {
      {1, K::kOpenReturnPath, 0},
      {2, K::kPing, 4},
      {3, K::kPackaged, 4},
      {20, K::kPostcopyAdvise, 16},
      {21, K::kPostcopyListen, 0},
      {22, K::kPostcopyRun, 0},
      {23, K::kPostcopyRamDiscard, -1},
  };
  profiles.push_back(
      {ProfileId::kV5Draft, "v5-draft",
       "2015 postcopy v5 posting: PACKAGED = 3, ADVISE..RAM_DISCARD = 20..23, 16 MiB packages", v5,
       kRamFlagsBase | ram_flag::kCompressPage, kOriginalPackageLimit, false, std::nullopt});
  return profiles;
}

const std::vector<Profile>& Profiles() {
  static const std::vector<Profile>* profiles = new std::vector<Profile>(MakeProfiles());
  return *profiles;
}

// Machine types before 10.0 turn SWITCHOVER_START off (hw_compat_9_2), so
// no QEMU sends it for them.
constexpr std::pair<int, int> kFirstMachineWithSwitchoverStart = {10, 0};

bool CommandFits(const Profile& profile, uint32_t number, uint32_t length,
                 std::pair<int, int> machine_version) {
  const CommandSpec* spec = profile.FindCommand(static_cast<uint16_t>(number));
  if (spec == nullptr) return false;
  if (spec->kind == K::kSwitchoverStart && machine_version != std::pair<int, int>{0, 0} &&
      machine_version < kFirstMachineWithSwitchoverStart) {
    return false;
  }
  if (spec->fixed_length >= 0) return static_cast<uint32_t>(spec->fixed_length) == length;
  if (spec->kind == K::kPostcopyAdvise) {
    return length == 16 || (length == 0 && profile.advise_has_length_zero);
  }
  return true;
}

bool RamFlagsFit(const Profile& profile, uint32_t flags) {
  return (flags & ~profile.ram_flags_known) == 0;
}

// The newest machine-type version each profile's QEMU has.
std::pair<int, int> NewestMachine(ProfileId id) {
  switch (id) {
    case ProfileId::kQemu72:
      return {7, 2};
    case ProfileId::kQemu82:
      return {8, 2};
    case ProfileId::kQemu92:
      return {9, 2};
    case ProfileId::kQemu100:
      return {10, 0};
    case ProfileId::kQemu111:
      return {11, 1};
    case ProfileId::kQemu30:
      return {3, 0};
    case ProfileId::kV5Draft:
      return {2, 3};
    case ProfileId::kUpstream:
      return {99, 99};
  }
  return {99, 99};
}

// Whether a release-based profile is at least (or at most) `release`;
// historical profiles pass both, so that this evidence leaves them alone.
bool AtLeast(const Profile& profile, QemuRelease release) {
  return !profile.release.has_value() || *profile.release >= release;
}
bool AtMost(const Profile& profile, QemuRelease release) {
  return !profile.release.has_value() || *profile.release <= release;
}

// "pc-i440fx-7.2" -> {7, 2}; {0, 0} when the name carries no version.
std::pair<int, int> MachineVersion(absl::string_view machine) {
  size_t dash = machine.rfind('-');
  if (dash == absl::string_view::npos) return {0, 0};
  absl::string_view version = machine.substr(dash + 1);
  size_t dot = version.find('.');
  if (dot == absl::string_view::npos) return {0, 0};
  int major = 0, minor = 0;
  if (!absl::SimpleAtoi(version.substr(0, dot), &major) ||
      !absl::SimpleAtoi(version.substr(dot + 1), &minor)) {
    return {0, 0};
  }
  return {major, minor};
}

}  // namespace

const CommandSpec* Profile::FindCommand(uint16_t number) const {
  for (const CommandSpec& spec : commands) {
    if (spec.number == number) return &spec;
  }
  return nullptr;
}

std::optional<uint16_t> Profile::NumberOf(CommandKind kind) const {
  for (const CommandSpec& spec : commands) {
    if (spec.kind == kind) return spec.number;
  }
  return std::nullopt;
}

absl::Span<const Profile> AllProfiles() { return Profiles(); }

const Profile& GetProfile(ProfileId id) {
  for (const Profile& profile : Profiles()) {
    if (profile.id == id) return profile;
  }
  return Profiles().front();
}

const Profile* FindProfileByName(absl::string_view name) {
  for (const Profile& profile : Profiles()) {
    if (profile.name == name) return &profile;
  }
  return nullptr;
}

ProfileDetector::ProfileDetector()
    : candidates_((1u << Profiles().size()) - 1), active_(&Profiles().front()) {}

ProfileDetector::ProfileDetector(ProfileId fixed)
    : fixed_(true), decided_(true), active_(&GetProfile(fixed)) {}

template <typename Keep>
void ProfileDetector::Narrow(Keep keep) {
  if (fixed_) return;
  uint32_t remaining = 0;
  for (size_t i = 0; i < Profiles().size(); ++i) {
    if ((candidates_ >> i & 1) && keep(Profiles()[i])) remaining |= 1u << i;
  }
  if (remaining == 0) return;  // Nothing fits: keep the last answer for its errors.
  if (remaining != candidates_) decided_ = true;
  candidates_ = remaining;
  for (size_t i = 0; i < Profiles().size(); ++i) {
    if (candidates_ >> i & 1) {
      active_ = &Profiles()[i];
      break;
    }
  }
}

void ProfileDetector::Note(uint32_t before, absl::string_view why) {
  if (candidates_ != before && evidence_.size() < kMaxProfileEvidence) {
    evidence_.emplace_back(why);
  }
}

std::string ProfileDetector::CandidateReleases() const {
  QemuReleases releases;
  for (size_t i = 0; i < Profiles().size(); ++i) {
    if ((candidates_ >> i & 1) && Profiles()[i].release.has_value()) {
      releases = releases | QemuReleases::Only(*Profiles()[i].release);
    }
  }
  return releases.Describe();
}

void ProfileDetector::ObserveCommand(uint16_t number, uint16_t length) {
  std::pair<int, int> machine = machine_version_;
  const uint32_t before = candidates_;
  Narrow([&](const Profile& p) { return CommandFits(p, number, length, machine); });
  if (candidates_ != before) {
    Note(before,
         absl::StrCat("command ", number, " of length ", length, ": ", CandidateReleases()));
  }
}

void ProfileDetector::ObserveRamFlags(uint32_t flags) {
  if (flags == last_ram_flags_) return;  // runs once per RAM record: keep it cheap
  last_ram_flags_ = flags;
  const uint32_t before = candidates_;
  Narrow([&](const Profile& p) { return RamFlagsFit(p, flags); });
  if (candidates_ != before) {
    Note(before,
         absl::StrCat("a RAM record with flags 0x", absl::Hex(flags), ": ", CandidateReleases()));
  }
}

void ProfileDetector::ObserveAtLeast(QemuRelease release, absl::string_view why) {
  if (fixed_) return;
  const uint32_t before = candidates_;
  Narrow([&](const Profile& p) { return AtLeast(p, release); });
  if (candidates_ != before) {
    Note(before, absl::StrCat(why, ": QEMU ", QemuReleaseName(release), " or later"));
  }
}

void ProfileDetector::ObserveAtMost(QemuRelease release, absl::string_view why) {
  if (fixed_) return;
  const uint32_t before = candidates_;
  Narrow([&](const Profile& p) { return AtMost(p, release); });
  if (candidates_ != before) {
    Note(before, absl::StrCat(why, ": QEMU ", QemuReleaseName(release), " or earlier"));
  }
}

std::vector<absl::string_view> ProfileDetector::AlsoConsistent() const {
  std::vector<absl::string_view> out;
  if (fixed_) return out;
  for (size_t i = 0; i < Profiles().size(); ++i) {
    const Profile& profile = Profiles()[i];
    if ((candidates_ >> i & 1) && &profile != active_ && profile.release.has_value() &&
        profile.id != ProfileId::kUpstream) {
      out.push_back(profile.name);
    }
  }
  return out;
}

void ProfileDetector::ObserveMachine(absl::string_view machine) {
  machine_version_ = MachineVersion(machine);
  if (machine_version_ == std::pair<int, int>{0, 0}) return;
  std::pair<int, int> version = machine_version_;
  const uint32_t before = candidates_;
  Narrow([&](const Profile& p) { return version <= NewestMachine(p.id); });
  Note(before, absl::StrCat("machine type ", EscapeName(machine), ": QEMU ", version.first, ".",
                            version.second, " or later"));
}

}  // namespace qmig
