#include "parser/wire/profile.h"

#include "parser/wire/limits.h"

namespace qmig {
namespace {

using K = CommandKind;

// Commands 0..7 have kept their numbers since the merge in 2015-11.
std::vector<CommandSpec> MergedCommandsThroughPackaged() {
  return {
      {1, K::kOpenReturnPath, 0}, {2, K::kPing, 4},
      {3, K::kPostcopyAdvise, -1}, {4, K::kPostcopyListen, 0},
      {5, K::kPostcopyRun, 0},      {6, K::kPostcopyRamDiscard, -1},
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
                      kRamFlagsBase | ram_flag::kCompressPage, kMaxPackageLimit, true});

  std::vector<CommandSpec> upstream = q72;
  upstream.push_back({11, K::kSwitchoverStart, 0});
  profiles.push_back({ProfileId::kUpstream, "upstream",
                      "current upstream QEMU: SWITCHOVER_START = 11, MULTIFD_FLUSH, no COMPRESS_PAGE",
                      upstream, kRamFlagsBase | ram_flag::kMultifdFlush, kMaxPackageLimit, true});

  std::vector<CommandSpec> q30 = MergedCommandsThroughPackaged();
  q30.push_back({8, K::kPostcopyResume, 0});
  q30.push_back({9, K::kRecvBitmap, -1});
  profiles.push_back({ProfileId::kQemu30, "qemu-3.0",
                      "QEMU 3.0: POSTCOPY_RESUME = 8, RECV_BITMAP = 9, no ENABLE_COLO", q30,
                      kRamFlagsBase | ram_flag::kCompressPage, kMaxPackageLimit, true});

  std::vector<CommandSpec> v5 = {
      {1, K::kOpenReturnPath, 0},   {2, K::kPing, 4},
      {3, K::kPackaged, 4},         {20, K::kPostcopyAdvise, 16},
      {21, K::kPostcopyListen, 0},  {22, K::kPostcopyRun, 0},
      {23, K::kPostcopyRamDiscard, -1},
  };
  profiles.push_back({ProfileId::kV5Draft, "v5-draft",
                      "2015 postcopy v5 posting: PACKAGED = 3, ADVISE..RAM_DISCARD = 20..23, 16 MiB packages",
                      v5, kRamFlagsBase | ram_flag::kCompressPage, kOriginalPackageLimit, false});
  return profiles;
}

const std::vector<Profile>& Profiles() {
  static const std::vector<Profile>* profiles = new std::vector<Profile>(MakeProfiles());
  return *profiles;
}

bool CommandFits(const Profile& profile, uint32_t number, uint32_t length) {
  const CommandSpec* spec = profile.FindCommand(static_cast<uint16_t>(number));
  if (spec == nullptr) return false;
  if (spec->fixed_length >= 0) return static_cast<uint32_t>(spec->fixed_length) == length;
  if (spec->kind == K::kPostcopyAdvise) {
    return length == 16 || (length == 0 && profile.advise_has_length_zero);
  }
  return true;
}

bool RamFlagsFit(const Profile& profile, uint32_t flags, uint32_t) {
  return (flags & ~profile.ram_flags_known) == 0;
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

void ProfileDetector::Narrow(bool (*keep)(const Profile&, uint32_t, uint32_t), uint32_t a,
                             uint32_t b) {
  if (fixed_) return;
  uint32_t remaining = 0;
  for (size_t i = 0; i < Profiles().size(); ++i) {
    if ((candidates_ >> i & 1) && keep(Profiles()[i], a, b)) remaining |= 1u << i;
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

void ProfileDetector::ObserveCommand(uint16_t number, uint16_t length) {
  Narrow(&CommandFits, number, length);
}

void ProfileDetector::ObserveRamFlags(uint32_t flags) { Narrow(&RamFlagsFit, flags, 0); }

}  // namespace qmig
