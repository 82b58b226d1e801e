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
  detector.ObserveCommand(11, 0);  // SWITCHOVER_START: upstream only
  EXPECT_EQ(detector.active().id, ProfileId::kUpstream);
  EXPECT_TRUE(detector.decided());
}

TEST(ProfileDetectorTest, NoSwitchoverStartForMachineTypesBefore10) {
  ProfileDetector detector;
  detector.ObserveMachine("pc-i440fx-7.2");
  detector.ObserveCommand(11, 0);
  EXPECT_EQ(detector.active().id, ProfileId::kQemu72);
  EXPECT_EQ(detector.active().FindCommand(11), nullptr);

  ProfileDetector newer;
  newer.ObserveMachine("pc-q35-10.1");
  EXPECT_EQ(newer.active().id, ProfileId::kUpstream);
  newer.ObserveCommand(11, 0);
  EXPECT_EQ(newer.active().id, ProfileId::kUpstream);
}

TEST(ProfileDetectorTest, V5DraftFromItsAdviseNumber) {
  ProfileDetector detector;
  detector.ObserveCommand(20, 16);
  EXPECT_EQ(detector.active().id, ProfileId::kV5Draft);
}

TEST(ProfileDetectorTest, MultifdFlushRulesOutQemu72) {
  ProfileDetector detector;
  detector.ObserveRamFlags(0x200);
  EXPECT_EQ(detector.active().id, ProfileId::kUpstream);
}

TEST(ProfileDetectorTest, FixedProfileIgnoresEvidence) {
  ProfileDetector detector(ProfileId::kQemu30);
  detector.ObserveCommand(11, 0);
  EXPECT_EQ(detector.active().id, ProfileId::kQemu30);
}

}  // namespace
}  // namespace qmig
