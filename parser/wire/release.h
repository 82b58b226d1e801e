// The QEMU releases whose rules qmig knows, one per profile (profile.h), and
// sets of them: a finding says which releases would load a stream anyway
// ("QEMU 7.2 accepts this"), since what QEMU lets through changes between
// releases.
#ifndef QMIG_PARSER_WIRE_RELEASE_H_
#define QMIG_PARSER_WIRE_RELEASE_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qmig {

// In order of age.
enum class QemuRelease : uint8_t { k7_2, k8_2, k9_2, k10_0, k11_1 };
inline constexpr int kQemuReleaseCount = 5;

inline absl::string_view QemuReleaseName(QemuRelease release) {
  constexpr absl::string_view kNames[kQemuReleaseCount] = {"7.2", "8.2", "9.2", "10.0", "11.1"};
  return kNames[static_cast<int>(release)];
}

class QemuReleases {
 public:
  constexpr QemuReleases() = default;
  // `true` is every release, `false` none: where a rule did not change.
  constexpr QemuReleases(bool every) : bits_(every ? kEvery : 0) {}  // NOLINT: implicit on purpose

  static constexpr QemuReleases Only(QemuRelease release) { return QemuReleases(Bit(release)); }
  // `first` and every later release.
  static constexpr QemuReleases From(QemuRelease first) {
    return QemuReleases(kEvery & ~(Bit(first) - 1));
  }
  // Every release up to `last`, itself included.
  static constexpr QemuReleases Through(QemuRelease last) {
    return QemuReleases((Bit(last) << 1) - 1);
  }

  constexpr QemuReleases operator|(QemuReleases other) const {
    return QemuReleases(bits_ | other.bits_);
  }
  constexpr bool Has(QemuRelease release) const { return (bits_ & Bit(release)) != 0; }
  constexpr bool any() const { return bits_ != 0; }
  constexpr explicit operator bool() const { return any(); }
  constexpr bool operator==(QemuReleases other) const { return bits_ == other.bits_; }
  constexpr bool operator!=(QemuReleases other) const { return bits_ != other.bits_; }

  // "every QEMU", "QEMU 7.2", "QEMU 8.2 to 11.1", "QEMU 7.2, 10.0".
  std::string Describe() const {
    if (bits_ == kEvery) return "every QEMU";
    int first = -1, last = -1;
    bool contiguous = true;
    for (int i = 0; i < kQemuReleaseCount; ++i) {
      if (!(bits_ >> i & 1)) continue;
      if (first < 0) first = i;
      if (last >= 0 && last != i - 1) contiguous = false;
      last = i;
    }
    if (first < 0) return "no QEMU";
    auto name = [](int i) { return QemuReleaseName(static_cast<QemuRelease>(i)); };
    if (first == last) return absl::StrCat("QEMU ", name(first));
    if (contiguous) return absl::StrCat("QEMU ", name(first), " to ", name(last));
    std::string out = "QEMU";
    for (int i = 0; i < kQemuReleaseCount; ++i) {
      if (bits_ >> i & 1) absl::StrAppend(&out, out.size() > 4 ? ", " : " ", name(i));
    }
    return out;
  }

 private:
  static constexpr uint32_t kEvery = (1u << kQemuReleaseCount) - 1;
  static constexpr uint32_t Bit(QemuRelease release) { return 1u << static_cast<int>(release); }
  constexpr explicit QemuReleases(uint32_t bits) : bits_(bits) {}

  uint32_t bits_ = 0;
};

}  // namespace qmig

#endif  // QMIG_PARSER_WIRE_RELEASE_H_
