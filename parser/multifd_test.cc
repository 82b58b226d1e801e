// A multifd channel: MultiFDInit, then RAM packets (pages, zero pages, sync
// only) and 10.0's device-state packets, each checked against its rules.
#include "parser/multifd.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig {
namespace {

constexpr uint32_t kPage = 4096;

std::vector<uint8_t> Init(uint8_t channel_id, uint32_t magic = kMultifdMagic,
                          uint32_t version = kMultifdVersion) {
  std::vector<uint8_t> out;
  AppendBe32(out, magic);
  AppendBe32(out, version);
  for (uint8_t i = 0; i < 16; ++i) out.push_back(i);  // the uuid
  out.push_back(channel_id);
  out.resize(kMultifdInitSize, 0);
  return out;
}

// A RAM packet; the setters return *this so that a test reads
// RamPacket().Normal({0}).Flags(...).
struct RamPacket {
  RamPacket& Flags(uint32_t v) {
    flags = v;
    return *this;
  }
  RamPacket& PagesAlloc(uint32_t v) {
    pages_alloc = v;
    return *this;
  }
  RamPacket& Normal(std::vector<uint64_t> v) {
    normal = std::move(v);
    return *this;
  }
  RamPacket& Zero(std::vector<uint64_t> v) {
    zero = std::move(v);
    return *this;
  }
  RamPacket& Block(std::string v) {
    block = std::move(v);
    return *this;
  }
  RamPacket& NextPacketSize(uint32_t v) {
    next_packet_size = v;
    return *this;
  }
  RamPacket& Magic(uint32_t v) {
    magic = v;
    return *this;
  }

  uint32_t flags = 0;
  uint32_t pages_alloc = kMultifdPagesPerPacket;
  std::vector<uint64_t> normal;  // offsets, with data
  std::vector<uint64_t> zero;    // offsets only
  std::string block = "pc.ram";
  uint32_t next_packet_size = UINT32_MAX;  // UINT32_MAX: what the pages take
  uint32_t magic = kMultifdMagic;
};

void Append(std::vector<uint8_t>& out, const RamPacket& p) {
  AppendBe32(out, p.magic);
  AppendBe32(out, kMultifdVersion);
  AppendBe32(out, p.flags);
  AppendBe32(out, p.pages_alloc);
  AppendBe32(out, static_cast<uint32_t>(p.normal.size()));
  AppendBe32(out, p.next_packet_size != UINT32_MAX
                      ? p.next_packet_size
                      : static_cast<uint32_t>(p.normal.size()) * kPage);
  AppendBe64(out, 7);  // packet_num
  AppendBe32(out, static_cast<uint32_t>(p.zero.size()));
  out.insert(out.end(), 28, 0);
  std::vector<uint8_t> name(kMultifdRamblockNameSize, 0);
  std::copy(p.block.begin(), p.block.end(), name.begin());
  out.insert(out.end(), name.begin(), name.end());
  std::vector<uint8_t> table;
  for (uint64_t offset : p.normal) AppendBe64(table, offset);
  for (uint64_t offset : p.zero) AppendBe64(table, offset);
  table.resize(8 * size_t{kMultifdPagesPerPacket}, 0);
  out.insert(out.end(), table.begin(), table.end());
  for (size_t i = 0; i < p.normal.size(); ++i) out.insert(out.end(), kPage, uint8_t(i + 1));
}

void AppendDeviceState(std::vector<uint8_t>& out, uint32_t flags, uint32_t payload) {
  AppendBe32(out, kMultifdMagic);
  AppendBe32(out, kMultifdVersion);
  AppendBe32(out, flags | kMultifdFlagDeviceState);
  std::vector<uint8_t> name(kMultifdRamblockNameSize, 0);
  const std::string idstr = "0000:00:04.0/vfio";
  std::copy(idstr.begin(), idstr.end(), name.begin());
  out.insert(out.end(), name.begin(), name.end());
  AppendBe32(out, 0);  // instance
  AppendBe32(out, payload);
  out.insert(out.end(), payload, 0xab);
}

struct Seen {
  MultifdResult result{MultifdSummary{}, FindingList()};
  std::vector<std::string> pages;
};

Seen Parse(const std::vector<uint8_t>& bytes, std::optional<uint32_t> channels = std::nullopt) {
  Seen seen;
  MultifdOptions options;
  options.block_lengths = {{"pc.ram", 64 * kPage}};
  options.channels = channels;
  options.on_page = [&seen](absl::string_view block, uint64_t offset,
                            absl::Span<const uint8_t> page) {
    seen.pages.push_back(std::string(block) + "@" + std::to_string(offset) + "=" +
                         std::to_string(page[0]));
  };
  MemorySource source(bytes);
  seen.result = ParseMultifdChannel(source, options);
  return seen;
}

const Finding* First(const Seen& seen, FindingCode code) {
  for (const Finding& finding : seen.result.findings.findings()) {
    if (finding.code == code) return &finding;
  }
  return nullptr;
}

TEST(MultifdTest, PagesZeroPagesAndASyncPacket) {
  std::vector<uint8_t> bytes = Init(1);
  Append(bytes, RamPacket().Normal({0x1000, 0x3000}).Zero({0x2000}));
  Append(bytes, RamPacket().Flags(kMultifdFlagSync).PagesAlloc(0));  // 10.0's sync packet
  Seen seen = Parse(bytes);
  EXPECT_TRUE(seen.result.valid());
  EXPECT_TRUE(seen.result.findings.findings().empty());
  EXPECT_EQ(seen.result.summary.channel_id, 1);
  EXPECT_EQ(seen.result.summary.uuid, "00010203-0405-0607-0809-0a0b0c0d0e0f");
  EXPECT_EQ(seen.result.summary.packets, 2u);
  EXPECT_EQ(seen.result.summary.sync_packets, 1u);
  EXPECT_EQ(seen.result.summary.pages, 2u);
  EXPECT_EQ(seen.result.summary.zero_pages, 1u);
  EXPECT_EQ(seen.result.summary.pages_by_block.at("pc.ram"), 3u);
  // A sync packet still has its whole offset table: 320 + 128 * 8 bytes.
  EXPECT_EQ(seen.result.summary.bytes, bytes.size());
  EXPECT_EQ(bytes.size(), kMultifdInitSize + 2 * (320 + 1024) + 2 * kPage);
  EXPECT_EQ(seen.pages,
            (std::vector<std::string>{"pc.ram@8192=0", "pc.ram@4096=1", "pc.ram@12288=2"}));
}

TEST(MultifdTest, InitMagicVersionAndChannelId) {
  Seen magic = Parse(Init(0, /*magic=*/0x11223345));
  const Finding* finding = First(magic, FindingCode::kMultifdBadInit);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, 0u);

  Seen version = Parse(Init(0, kMultifdMagic, /*version=*/2));
  finding = First(version, FindingCode::kMultifdBadInit);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, 4u);

  // Ids count from 0: id 2 of 2 channels is one too many, and QEMU's
  // off-by-one check lets it through; id 3 it refuses.
  Seen off_by_one = Parse(Init(2), /*channels=*/2);
  finding = First(off_by_one, FindingCode::kMultifdBadInit);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, 24u);
  EXPECT_TRUE(finding->qemu_accepts.any());
  Seen too_many = Parse(Init(3), 2);
  finding = First(too_many, FindingCode::kMultifdBadInit);
  ASSERT_NE(finding, nullptr);
  EXPECT_FALSE(finding->qemu_accepts.any());
  EXPECT_TRUE(Parse(Init(1), 2).result.valid());
}

TEST(MultifdTest, PacketHeaderRules) {
  std::vector<uint8_t> bytes = Init(0);
  Append(bytes, RamPacket().Magic(0x44332211));
  Seen bad_magic = Parse(bytes);
  const Finding* finding = First(bad_magic, FindingCode::kMultifdBadPacket);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, kMultifdInitSize);

  bytes = Init(0);  // more pages than allocated
  Append(bytes, RamPacket().PagesAlloc(1).Normal({0, 0x1000}));
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kMultifdBadPacket));

  bytes = Init(0);  // a block the main stream does not have
  Append(bytes, RamPacket().Normal({0}).Block("nowhere"));
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kMultifdBadPacket));

  bytes = Init(0);  // a page past the block's 64 pages
  Append(bytes, RamPacket().Normal({64 * kPage}));
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kMultifdBadPacket));

  bytes = Init(0);  // unknown flags: reported, the packet still read
  Append(bytes, RamPacket().Flags(0x80).Normal({0}));
  Seen flags = Parse(bytes);
  EXPECT_TRUE(flags.result.findings.HasCode(FindingCode::kMultifdBadPacket));
  EXPECT_EQ(flags.result.summary.pages, 1u);
}

TEST(MultifdTest, NextPacketSizeDisagreeingWithThePages) {
  std::vector<uint8_t> bytes = Init(0);
  Append(bytes, RamPacket().Normal({0}).NextPacketSize(2 * kPage));
  Seen seen = Parse(bytes);
  const Finding* finding = First(seen, FindingCode::kMultifdPacketSize);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->severity, Severity::kWarning);
  EXPECT_EQ(finding->offset, kMultifdInitSize + 20);
  EXPECT_TRUE(seen.result.valid());  // QEMU reads the pages, not the size
  EXPECT_EQ(seen.result.summary.pages, 1u);
}

TEST(MultifdTest, DeviceStatePackets) {
  std::vector<uint8_t> bytes = Init(0);
  AppendDeviceState(bytes, 0, 100);
  Seen seen = Parse(bytes);
  EXPECT_TRUE(seen.result.valid());
  EXPECT_EQ(seen.result.summary.device_state_packets, 1u);

  bytes = Init(0);
  AppendDeviceState(bytes, 0, 0);  // empty
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kMultifdBadPacket));
  bytes = Init(0);
  AppendDeviceState(bytes, kMultifdFlagSync, 4);  // with SYNC
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kMultifdBadPacket));
}

TEST(MultifdTest, ACutPacketIsTruncated) {
  std::vector<uint8_t> bytes = Init(0);
  Append(bytes, RamPacket().Normal({0}));
  bytes.resize(bytes.size() - 1);
  EXPECT_TRUE(Parse(bytes).result.findings.HasCode(FindingCode::kTruncated));
}

}  // namespace
}  // namespace qmig
