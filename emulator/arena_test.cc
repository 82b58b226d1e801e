#include "emulator/arena.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

const uint64_t kLimit = ParseLimits().max_guest_ram_bytes;

std::vector<uint8_t> Page(uint8_t fill) { return std::vector<uint8_t>(GuestArena::kPage, fill); }

TEST(GuestArenaTest, PrecopyWritesGoStraightIntoTheBlock) {
  absl::StatusOr<std::unique_ptr<GuestArena>> arena =
      GuestArena::Create({{"pc.ram", 16 * GuestArena::kPage, 4096}}, kLimit);
  ASSERT_TRUE(arena.ok()) << arena.status();
  GuestArena::Block* block = (*arena)->Find("pc.ram");
  ASSERT_NE(block, nullptr);
  std::memset((*arena)->PagePointer(*block, 3 * GuestArena::kPage), 0x5a, GuestArena::kPage);
  EXPECT_EQ(block->base[3 * GuestArena::kPage + 17], 0x5a);
  EXPECT_EQ((*arena)->Find("nope"), nullptr);
}

TEST(GuestArenaTest, RejectsUnusableBlocks) {
  EXPECT_FALSE(GuestArena::Create({{"empty", 0, 4096}}, kLimit).ok());
  EXPECT_FALSE(GuestArena::Create({{"huge", uint64_t{1} << 60, 4096}}, kLimit).ok());
  // Each block fits, together they are over the limit.
  absl::StatusOr<std::unique_ptr<GuestArena>> over =
      GuestArena::Create({{"a", 3 << 20, 4096}, {"b", 2 << 20, 4096}}, 4 << 20);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(over.status()));
  EXPECT_TRUE(GuestArena::Create({{"a", 2 << 20, 4096}, {"b", 2 << 20, 4096}}, 4 << 20).ok());
}

// A page is charged once, the limit holds, and a discard gives pages back.
TEST(GuestArenaTest, ResidentPagesAreChargedUpToTheLimit) {
  absl::StatusOr<std::unique_ptr<GuestArena>> created = GuestArena::Create(
      {{"pc.ram", 8 * GuestArena::kPage, 4096}}, kLimit, 3 * GuestArena::kPage + 100);
  ASSERT_TRUE(created.ok()) << created.status();
  GuestArena& arena = **created;
  GuestArena::Block& block = *arena.Find("pc.ram");
  EXPECT_EQ(arena.max_resident_bytes(), 3 * GuestArena::kPage);
  EXPECT_TRUE(arena.ChargeResident(block, 0));
  EXPECT_TRUE(arena.ChargeResident(block, 0));  // charged already: free
  EXPECT_TRUE(arena.ChargeResident(block, 5));
  EXPECT_TRUE(arena.ChargeResident(block, 7));
  EXPECT_FALSE(arena.ChargeResident(block, 6));
  EXPECT_FALSE(arena.IsResident(block, 6));
  EXPECT_EQ(arena.resident_bytes(), 3 * GuestArena::kPage);
  ASSERT_TRUE(arena.Discard(block, 4 * GuestArena::kPage, 2 * GuestArena::kPage).ok());
  EXPECT_FALSE(arena.IsResident(block, 5));
  EXPECT_EQ(arena.resident_bytes(), 2 * GuestArena::kPage);
  EXPECT_TRUE(arena.ChargeResident(block, 6));
  EXPECT_TRUE(arena.IsResident(block, 6));
}

TEST(GuestArenaTest, DefaultResidentLimitIsHalfOfWhatIsAvailable) {
  EXPECT_EQ(MaxResidentGuestBytesFromMeminfo("MemTotal:       24000000 kB\n"
                                             "MemAvailable:    8388608 kB\n"),
            uint64_t{4} << 30);
  EXPECT_EQ(MaxResidentGuestBytesFromMeminfo("MemAvailable: 100 kB\n"),
            kMinDefaultResidentGuestBytes);
  EXPECT_EQ(MaxResidentGuestBytesFromMeminfo("MemAvailable: 1099511627776 kB\n"),
            kMaxDefaultResidentGuestBytes);
  EXPECT_EQ(MaxResidentGuestBytesFromMeminfo(""), kMinDefaultResidentGuestBytes);
  EXPECT_EQ(MaxResidentGuestBytesFromMeminfo("MemAvailable: lots\n"),
            kMinDefaultResidentGuestBytes);
  const uint64_t here = DefaultMaxResidentGuestBytes();
  EXPECT_GE(here, kMinDefaultResidentGuestBytes);
  EXPECT_LE(here, kMaxDefaultResidentGuestBytes);
}

// A guest thread reads a missing page; a handler serves the fault with
// UFFDIO_COPY; the read returns the placed bytes.
TEST(GuestArenaTest, FaultOnAMissingPageIsServedByPlacement) {
  absl::StatusOr<std::unique_ptr<GuestArena>> created =
      GuestArena::Create({{"pc.ram", 8 * GuestArena::kPage, 4096}}, kLimit);
  ASSERT_TRUE(created.ok());
  GuestArena& arena = **created;
  GuestArena::Block& block = *arena.Find("pc.ram");
  absl::Status registered = arena.RegisterUserfault();
  ASSERT_TRUE(registered.ok()) << registered;

  std::atomic<int> seen{-1};
  std::thread guest([&] { seen = block.base[5 * GuestArena::kPage + 100]; });

  struct pollfd pfd = {arena.uffd(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 5000), 1) << "no fault arrived";
  struct uffd_msg msg;
  ASSERT_EQ(read(arena.uffd(), &msg, sizeof(msg)), static_cast<ssize_t>(sizeof(msg)));
  ASSERT_EQ(msg.event, UFFD_EVENT_PAGEFAULT);
  uint64_t page_index = 0;
  EXPECT_EQ(arena.BlockOf(msg.arg.pagefault.address, &page_index), &block);
  EXPECT_EQ(page_index, 5u);
  EXPECT_FALSE(arena.MarkRequested(block, page_index));
  EXPECT_EQ(arena.State(block, 5), PageState::kRequested);

  std::vector<uint8_t> page = Page(0xa7);
  absl::StatusOr<Placement> placed = arena.PlacePage(block, 5 * GuestArena::kPage, page);
  ASSERT_TRUE(placed.ok()) << placed.status();
  EXPECT_EQ(*placed, Placement::kPlaced);
  guest.join();
  EXPECT_EQ(seen.load(), 0xa7);
  EXPECT_EQ(arena.State(block, 5), PageState::kReceived);

  // Placing it again: EEXIST, compared by content.
  EXPECT_EQ(*arena.PlacePage(block, 5 * GuestArena::kPage, page), Placement::kAlreadySame);
  EXPECT_EQ(*arena.PlacePage(block, 5 * GuestArena::kPage, Page(1)), Placement::kAlreadyDifferent);
  EXPECT_EQ(*arena.PlaceZeroPage(block, 6 * GuestArena::kPage), Placement::kPlaced);
  EXPECT_EQ(block.base[6 * GuestArena::kPage], 0);
}

TEST(GuestArenaTest, DiscardMakesAPageMissingAgain) {
  absl::StatusOr<std::unique_ptr<GuestArena>> created =
      GuestArena::Create({{"pc.ram", 4 * GuestArena::kPage, 4096}}, kLimit);
  ASSERT_TRUE(created.ok());
  GuestArena& arena = **created;
  GuestArena::Block& block = *arena.Find("pc.ram");
  std::memset(block.base, 0x11, GuestArena::kPage);
  arena.SetState(block, 0, PageState::kReceived);
  ASSERT_TRUE(arena.Discard(block, 0, GuestArena::kPage).ok());
  EXPECT_EQ(arena.State(block, 0), PageState::kDiscarded);
  ASSERT_TRUE(arena.RegisterUserfault().ok());
  // Missing again: a placement succeeds instead of hitting EEXIST.
  EXPECT_EQ(*arena.PlacePage(block, 0, Page(0x22)), Placement::kPlaced);
  EXPECT_EQ(block.base[0], 0x22);
  EXPECT_FALSE(arena.Discard(block, 1, GuestArena::kPage).ok());
  EXPECT_FALSE(arena.Discard(block, 0, 5 * GuestArena::kPage).ok());
}

TEST(GuestArenaTest, UnregisterReleasesAWaitingGuest) {
  absl::StatusOr<std::unique_ptr<GuestArena>> created =
      GuestArena::Create({{"pc.ram", 4 * GuestArena::kPage, 4096}}, kLimit);
  ASSERT_TRUE(created.ok());
  GuestArena& arena = **created;
  GuestArena::Block& block = *arena.Find("pc.ram");
  ASSERT_TRUE(arena.RegisterUserfault().ok());
  std::atomic<int> seen{-1};
  std::thread guest([&] { seen = block.base[2 * GuestArena::kPage]; });
  struct pollfd pfd = {arena.uffd(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 5000), 1);
  arena.Unregister();
  guest.join();
  EXPECT_EQ(seen.load(), 0);  // an anonymous page once nobody serves faults
}

}  // namespace
}  // namespace qmig
