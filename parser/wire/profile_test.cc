#include "parser/wire/profile.h"

#include "gtest/gtest.h"

namespace qmig {
namespace {

TEST(ProfileTest, CommandNumbersPerProfile) {
  EXPECT_EQ(GetProfile(ProfileId::kQemu72).NumberOf(CommandKind::kPackaged), 7);
  EXPECT_EQ(GetProfile(ProfileId::kQemu72).NumberOf(CommandKind::kRecvBitmap), 10);
  EXPECT_FALSE(GetProfile(ProfileId::kQemu72).NumberOf(CommandKind::kSwitchoverStart).has_value());
  EXPECT_EQ(GetProfile(ProfileId::kUpstream).NumberOf(CommandKind::kSwitchoverStart), 11);
  EXPECT_EQ(GetProfile(ProfileId::kQemu30).NumberOf(CommandKind::kPostcopyResume), 8);
  EXPECT_EQ(GetProfile(ProfileId::kQemu30).NumberOf(CommandKind::kRecvBitmap), 9);
  EXPECT_EQ(GetProfile(ProfileId::kV5Draft).NumberOf(CommandKind::kPackaged), 3);
  EXPECT_EQ(GetProfile(ProfileId::kV5Draft).NumberOf(CommandKind::kPostcopyRamDiscard), 23);
  EXPECT_EQ(FindProfileByName("qemu-3.0"), &GetProfile(ProfileId::kQemu30));
  EXPECT_EQ(FindProfileByName("nope"), nullptr);
}

TEST(ProfileDetectorTest, DefaultsToQemu72AndNarrowsOnEvidence) {
  ProfileDetector detector;
  EXPECT_EQ(detector.active().id, ProfileId::kQemu72);
  detector.ObserveCommand(2, 4);  // PING everywhere
  EXPECT_FALSE(detector.decided());
  detector.ObserveCommand(11, 0);  // SWITCHOVER_START: 10.0 and later
  EXPECT_EQ(detector.active().id, ProfileId::kQemu100);
  EXPECT_TRUE(detector.decided());
  ASSERT_EQ(detector.evidence().size(), 1u);
  EXPECT_EQ(detector.evidence()[0], "command 11 of length 0: QEMU 10.0 to 11.1");
  ASSERT_EQ(detector.AlsoConsistent().size(), 1u);
  EXPECT_EQ(detector.AlsoConsistent()[0], "qemu-11.1");
}

// The machine name is the stream's bytes: evidence shows it escaped, as
// every other output does (found by render_fuzzer).
TEST(ProfileDetectorTest, MachineNameInEvidenceIsEscaped) {
  ProfileDetector detector;
  detector.ObserveMachine("\x04l-\xff-10.0");
  ASSERT_EQ(detector.evidence().size(), 1u);
  EXPECT_EQ(detector.evidence()[0], "machine type \\x04l-\\xff-10.0: QEMU 10.0 or later");
}

TEST(ProfileDetectorTest, NoSwitchoverStartForMachineTypesBefore10) {
  ProfileDetector detector;
  detector.ObserveMachine("pc-i440fx-7.2");
  detector.ObserveCommand(11, 0);
  EXPECT_EQ(detector.active().id, ProfileId::kQemu72);
  EXPECT_EQ(detector.active().FindCommand(11), nullptr);

  ProfileDetector newer;
  newer.ObserveMachine("pc-q35-10.1");
  EXPECT_EQ(newer.active().id, ProfileId::kQemu111);
  newer.ObserveCommand(11, 0);
  EXPECT_EQ(newer.active().id, ProfileId::kQemu111);
}

// What a stream made by QEMU 10.0 or 11.1 for an old machine type shows, and
// what it narrows to (the corpus tests check the same on real streams).
TEST(ProfileDetectorTest, ReleasesFromWhatTheStreamCarries) {
  ProfileDetector ten;
  ten.ObserveMachine("pc-i440fx-7.2");
  ten.ObserveAtLeast(QemuRelease::k8_2, "the VMDESCRIPTION has a configuration member");
  ten.ObserveAtLeast(QemuRelease::k9_2, "globalstate carries vm_was_suspended");
  ten.ObserveAtMost(QemuRelease::k10_0, "timer's section comes before apic's");
  EXPECT_EQ(ten.active().id, ProfileId::kQemu92);
  ASSERT_EQ(ten.AlsoConsistent().size(), 1u);
  EXPECT_EQ(ten.AlsoConsistent()[0], "qemu-10.0");  // the stream cannot tell them apart
  EXPECT_EQ(ten.evidence().size(), 4u);             // the machine type and the three above

  ProfileDetector eleven;
  eleven.ObserveMachine("pc-i440fx-7.2");
  eleven.ObserveAtLeast(QemuRelease::k11_1, "apic's section comes before timer's");
  EXPECT_EQ(eleven.active().id, ProfileId::kQemu111);

  ProfileDetector old;
  old.ObserveAtMost(QemuRelease::k8_2, "the RAM section has id 2, after block's");
  old.ObserveAtMost(QemuRelease::k7_2, "the VMDESCRIPTION has no configuration member");
  EXPECT_EQ(old.active().id, ProfileId::kQemu72);
  EXPECT_TRUE(old.decided());

  // Evidence that narrows nothing is not kept.
  ProfileDetector seven;
  seven.ObserveAtMost(QemuRelease::k10_0, "x");
  seven.ObserveAtMost(QemuRelease::k10_0, "again");
  EXPECT_EQ(seven.evidence().size(), 1u);
}

TEST(ProfileDetectorTest, V5DraftFromItsAdviseNumber) {
  ProfileDetector detector;
  detector.ObserveCommand(20, 16);
  EXPECT_EQ(detector.active().id, ProfileId::kV5Draft);
}

TEST(ProfileDetectorTest, MultifdFlushRulesOutQemu72AndCompressAfter82) {
  ProfileDetector detector;
  detector.ObserveRamFlags(0x200);
  EXPECT_EQ(detector.active().id, ProfileId::kQemu82);
  detector.ObserveRamFlags(0x100);  // COMPRESS_PAGE: gone in 9.1
  EXPECT_EQ(detector.active().id, ProfileId::kQemu82);
  EXPECT_TRUE(detector.AlsoConsistent().empty());
}

TEST(QemuReleasesTest, Describe) {
  EXPECT_EQ(QemuReleases(true).Describe(), "every QEMU");
  EXPECT_EQ(QemuReleases::Only(QemuRelease::k7_2).Describe(), "QEMU 7.2");
  EXPECT_EQ(QemuReleases::From(QemuRelease::k8_2).Describe(), "QEMU 8.2 to 11.1");
  EXPECT_EQ(QemuReleases::Through(QemuRelease::k9_2).Describe(), "QEMU 7.2 to 9.2");
  EXPECT_FALSE(QemuReleases(false).any());
}

TEST(ProfileDetectorTest, FixedProfileIgnoresEvidence) {
  ProfileDetector detector(ProfileId::kQemu30);
  detector.ObserveCommand(11, 0);
  EXPECT_EQ(detector.active().id, ProfileId::kQemu30);
}

}  // namespace
}  // namespace qmig
