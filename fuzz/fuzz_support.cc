#include "fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>

#include "parser/wire/byte_source.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"

namespace qmig::fuzz {

Bytes& Bytes::U8(uint8_t value) {
  bytes_.push_back(value);
  return *this;
}

Bytes& Bytes::Be16(uint16_t value) {
  AppendBe16(bytes_, value);
  return *this;
}
Bytes& Bytes::Be32(uint32_t value) {
  AppendBe32(bytes_, value);
  return *this;
}
Bytes& Bytes::Be64(uint64_t value) {
  AppendBe64(bytes_, value);
  return *this;
}

Bytes& Bytes::Raw(absl::Span<const uint8_t> bytes) {
  bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  return *this;
}

Bytes& Bytes::Text(absl::string_view text) {
  bytes_.insert(bytes_.end(), text.begin(), text.end());
  return *this;
}

Bytes& Bytes::Counted(absl::string_view text) {
  return U8(static_cast<uint8_t>(text.size())).Text(text);
}

const std::vector<uint8_t>& PostcopyRamPrefix() {
  static const std::vector<uint8_t>* prefix = [] {
    constexpr uint8_t kCommand = static_cast<uint8_t>(SectionType::kCommand);
    absl::string_view machine = "pc-i440fx-7.2";
    Bytes b;
    b.Be32(kFileMagic).Be32(kFileVersion);
    b.U8(static_cast<uint8_t>(SectionType::kConfiguration)).Be32(machine.size()).Text(machine);
    b.U8(kCommand).Be16(1).Be16(0);                             // OPEN_RETURN_PATH
    b.U8(kCommand).Be16(2).Be16(4).Be32(1);                     // PING 1
    b.U8(kCommand).Be16(3).Be16(16).Be64(0x1000).Be64(0x1000);  // POSTCOPY_ADVISE
    b.U8(static_cast<uint8_t>(SectionType::kStart))
        .Be32(kPrefixRamSectionId)
        .Counted(kRamSectionName)
        .Be32(0)
        .Be32(kRamSectionVersion);
    b.Be64(kPrefixBlockLength | ram_flag::kMemSize).Counted(kPrefixBlock).Be64(kPrefixBlockLength);
    b.Be64(ram_flag::kEos);
    b.U8(static_cast<uint8_t>(SectionType::kFooter)).Be32(kPrefixRamSectionId);
    return new std::vector<uint8_t>(std::move(b.vector()));
  }();
  return *prefix;
}

void Check(bool condition, absl::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "qmig fuzz contract broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

void CheckFindings(const FindingList& findings, uint64_t input_size) {
  for (const Finding& finding : findings.findings()) {
    // A finding may sit at the end of input (truncation), never past it.
    Check(finding.offset <= input_size, "a finding's offset lies past the end of the input");
    Check(!finding.message.empty(), "a finding without a message");
  }
}

uint64_t Touch(absl::Span<const uint8_t> bytes) {
  uint64_t sum = 0;
  for (uint8_t byte : bytes) sum = sum * 31 + byte;
  return sum;
}

uint64_t Touch(absl::string_view text) {
  return Touch(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void TouchingObserver::OnSection(uint8_t, uint32_t, absl::string_view idstr, uint32_t, uint32_t,
                                 uint64_t) {
  sum_ += Touch(idstr);
}

void TouchingObserver::OnCommand(CommandKind, uint64_t, absl::Span<const uint8_t> payload) {
  sum_ += Touch(payload);
}

void TouchingObserver::OnRamPage(absl::string_view block, uint64_t, RamRecordKind,
                                 absl::Span<const uint8_t> page, uint64_t) {
  sum_ += Touch(block) + Touch(page);
}

void TouchingObserver::OnRamBlock(absl::string_view block, uint64_t, uint64_t) {
  sum_ += Touch(block);
}

void ParseAndCheck(absl::Span<const uint8_t> bytes) {
  MemorySource source(bytes);
  TouchingObserver observer;
  ParseOptions options;
  options.observer = &observer;
  ParseResult result = ParseMigrationStream(source, options);
  Check(result.summary.bytes <= bytes.size(), "the parser consumed more bytes than the input has");
  CheckFindings(result.findings, bytes.size());
  // Every way to stop before EOF (truncation, a broken record) is an error.
  Check(!result.valid() || result.summary.eof_seen, "a stream without EOF passed as valid");
}

}  // namespace qmig::fuzz
