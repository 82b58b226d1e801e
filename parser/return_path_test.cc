// The return path: each message type with its length rule, the page
// requests checked against the main stream's blocks, and RECV_BITMAP with
// its blob outside the message length.
#include "parser/return_path.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig {
namespace {

// Return-path bytes, message by message.
class Messages {
 public:
  Messages& Raw(uint16_t type, const std::vector<uint8_t>& payload) {
    AppendBe16(bytes_, type);
    AppendBe16(bytes_, static_cast<uint16_t>(payload.size()));
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    return *this;
  }
  Messages& Be32Message(ReturnPathType type, uint32_t value) {
    std::vector<uint8_t> payload;
    AppendBe32(payload, value);
    return Raw(static_cast<uint16_t>(type), payload);
  }
  Messages& Pong(uint32_t value) { return Be32Message(ReturnPathType::kPong, value); }
  Messages& Shut(uint32_t status) { return Be32Message(ReturnPathType::kShut, status); }
  Messages& RequestPages(uint64_t start, uint32_t length, const std::string& block = "") {
    std::vector<uint8_t> payload;
    AppendBe64(payload, start);
    AppendBe32(payload, length);
    if (block.empty()) return Raw(static_cast<uint16_t>(ReturnPathType::kReqPages), payload);
    payload.push_back(static_cast<uint8_t>(block.size()));
    payload.insert(payload.end(), block.begin(), block.end());
    return Raw(static_cast<uint16_t>(ReturnPathType::kReqPagesId), payload);
  }
  Messages& RecvBitmap(const std::string& block, uint64_t size,
                       uint64_t end_mark = kRecvBitmapEndMark) {
    std::vector<uint8_t> payload = {static_cast<uint8_t>(block.size())};
    payload.insert(payload.end(), block.begin(), block.end());
    Raw(static_cast<uint16_t>(ReturnPathType::kRecvBitmap), payload);
    AppendBe64(bytes_, size);
    bytes_.insert(bytes_.end(), size, 0xff);
    AppendBe64(bytes_, end_mark);
    return *this;
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

ReturnPathResult Parse(const Messages& messages, NameCounts block_lengths = {}) {
  MemorySource source(messages.bytes());
  ReturnPathOptions options;
  options.block_lengths = std::move(block_lengths);
  return ParseReturnPath(source, options);
}

// The first stored finding with `code`, or null.
const Finding* First(const ReturnPathResult& result, FindingCode code) {
  for (const Finding& finding : result.findings.findings()) {
    if (finding.code == code) return &finding;
  }
  return nullptr;
}

TEST(ReturnPathTest, APostcopyReturnPath) {
  Messages m;
  m.Pong(1).RequestPages(0x1000, 0x1000, "pc.ram").RequestPages(0x3000, 0x2000).Pong(2).Shut(0);
  ReturnPathResult r = Parse(m, {{"pc.ram", 0x10000}});
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.findings.findings().size(), 0u);
  EXPECT_EQ(r.summary.pongs, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(r.summary.page_requests, 2u);
  ASSERT_EQ(r.summary.requests.size(), 2u);
  EXPECT_EQ(r.summary.requests[1].block, "pc.ram");  // REQ_PAGES reuses the block
  EXPECT_EQ(r.summary.requests[1].start, 0x3000u);
  EXPECT_EQ(r.summary.requests[1].offset, 8u + 23u);  // after PONG and REQ_PAGES_ID
  EXPECT_EQ(r.summary.shut_status, 0u);
  EXPECT_EQ(r.summary.messages.at("PONG"), 2u);
  EXPECT_EQ(r.summary.bytes, m.bytes().size());
}

TEST(ReturnPathTest, AnUnknownTypeStopsTheParse) {
  Messages m;
  m.Pong(1).Raw(kReturnPathTypeCount, {}).Pong(2);
  ReturnPathResult r = Parse(m);
  const Finding* finding = First(r, FindingCode::kRpBadType);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, 8u);
  EXPECT_EQ(r.summary.pongs.size(), 1u);

  Messages invalid;
  invalid.Raw(0, {});
  EXPECT_TRUE(Parse(invalid).findings.HasCode(FindingCode::kRpBadType));
}

TEST(ReturnPathTest, FixedLengthsAreExact) {
  Messages m;
  m.Raw(static_cast<uint16_t>(ReturnPathType::kPong), {0, 0, 0, 1, 0});
  ReturnPathResult r = Parse(m);
  const Finding* finding = First(r, FindingCode::kRpBadLength);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, 0u);
  EXPECT_NE(finding->message.find("must be 4"), std::string::npos) << finding->message;

  Messages ack;  // SWITCHOVER_ACK carries nothing
  ack.Raw(static_cast<uint16_t>(ReturnPathType::kSwitchoverAck), {1});
  EXPECT_TRUE(Parse(ack).findings.HasCode(FindingCode::kRpBadLength));
  Messages empty_ack;
  empty_ack.Raw(static_cast<uint16_t>(ReturnPathType::kSwitchoverAck), {});
  EXPECT_TRUE(Parse(empty_ack).valid());
}

TEST(ReturnPathTest, NamedRequestLengthMustMatchItsName) {
  Messages m;
  // REQ_PAGES_ID with a name length byte that claims more than the message holds.
  std::vector<uint8_t> payload;
  AppendBe64(payload, 0);
  AppendBe32(payload, 0x1000);
  payload.push_back(2);
  payload.insert(payload.end(), {'p', 'c', 'x'});
  m.Raw(static_cast<uint16_t>(ReturnPathType::kReqPagesId), payload);
  EXPECT_TRUE(Parse(m).findings.HasCode(FindingCode::kRpBadLength));
}

TEST(ReturnPathTest, BadPayloads) {
  // A request before any block was named, a misaligned one, one past its
  // block, one for an unknown block, RESUME_ACK other than 1, and a
  // message after SHUT.
  Messages m;
  m.RequestPages(0, 0x1000)
      .RequestPages(0x10, 0x1000, "pc.ram")
      .RequestPages(0xf000, 0x2000, "pc.ram")
      .RequestPages(0, 0x1000, "nowhere")
      .Be32Message(ReturnPathType::kResumeAck, 2)
      .Shut(0)
      .Pong(3);
  ReturnPathResult r = Parse(m, {{"pc.ram", 0x10000}});
  EXPECT_EQ(r.findings.count(FindingCode::kRpBadPayload), 6u);
  EXPECT_EQ(r.findings.error_count(), 6u);
  EXPECT_EQ(r.summary.page_requests, 4u);
}

TEST(ReturnPathTest, RecvBitmapIsFollowedByItsBlob) {
  Messages m;
  m.RecvBitmap("pc.ram", 8).Pong(1);
  ReturnPathResult r = Parse(m, {{"pc.ram", 64 * 4096}});
  EXPECT_TRUE(r.valid());
  EXPECT_EQ(r.summary.recv_bitmaps.at("pc.ram"), 8u);
  EXPECT_EQ(r.summary.pongs, (std::vector<uint32_t>{1}));
}

TEST(ReturnPathTest, RecvBitmapRules) {
  Messages odd;  // not a multiple of 8: an error that stops the parse
  odd.RecvBitmap("pc.ram", 12);
  EXPECT_TRUE(Parse(odd).findings.HasCode(FindingCode::kRpBitmap));

  Messages wrong_size;  // the block needs 16 bytes: reported, parse goes on
  wrong_size.RecvBitmap("pc.ram", 8).Pong(1);
  ReturnPathResult r = Parse(wrong_size, {{"pc.ram", 128 * 4096}});
  EXPECT_TRUE(r.findings.HasCode(FindingCode::kRpBitmap));
  EXPECT_EQ(r.summary.pongs.size(), 1u);

  Messages mark;
  mark.RecvBitmap("pc.ram", 8, /*end_mark=*/1);
  const std::vector<uint8_t>& bytes = mark.bytes();
  ReturnPathResult marked = Parse(mark);
  const Finding* finding = First(marked, FindingCode::kRpBitmap);
  ASSERT_NE(finding, nullptr);
  EXPECT_EQ(finding->offset, bytes.size() - 8);
}

TEST(ReturnPathTest, ACutMessageIsTruncated) {
  Messages m;
  m.Pong(1);
  std::vector<uint8_t> cut = m.bytes();
  cut.pop_back();
  MemorySource source(cut);
  ReturnPathResult r = ParseReturnPath(source, {});
  EXPECT_TRUE(r.findings.HasCode(FindingCode::kTruncated));
}

}  // namespace
}  // namespace qmig
