// StreamWriter: an explicit encoder of the QEMU migration main stream, for
// tests and for structure-aware fuzzing. It writes exactly what it is told,
// big-endian, into a byte vector; nothing is validated, so a caller can build
// valid streams and deliberately broken ones with the same calls (and the
// raw U8/Be16/Be32/Be64/Bytes escape hatches for anything else).
//
// Command numbers are never hard-coded: each command kind is resolved through
// the writer's Profile (parser/wire/profile.h). A kind the profile lacks is
// written as command 0 (INVALID, rejected by every profile) and remembered in
// missing_commands(), so that a caller can tell a broken stream it asked for
// from one it did not.
//
// The writer also tallies what it wrote (sections by type, commands by kind,
// RAM pages per block and kind) in the same vocabulary as StreamSummary, and
// keeps named offsets (Mark) so that tests can predict finding offsets. When
// a nested writer is packaged with Packaged(const StreamWriter&), its tallies
// and marks are merged, marks shifted to absolute offsets.
//
// Example (a postcopy package):
//   StreamWriter package;
//   package.Listen().SectionFull(3, "timer", 0, 2).Bytes(body).Footer(3).Run();
//   StreamWriter w;
//   w.Header().Configuration({"pc-i440fx-7.2"}).OpenReturnPath().Ping(1)...
//    .Packaged(package)...Eof();
#ifndef QMIG_PARSER_ENCODE_STREAM_WRITER_H_
#define QMIG_PARSER_ENCODE_STREAM_WRITER_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "parser/wire/constants.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/profile.h"

namespace qmig {

// The block argument of a RAM page record: a block name, or kContinueBlock to
// set the CONTINUE flag and omit the name.
using RamBlockRef = std::optional<std::string>;
inline constexpr std::nullopt_t kContinueBlock = std::nullopt;

// One MEM_SIZE entry. The optional fields are written when present, in the
// sender's order: page size, then guest address (x-ignore-shared).
struct RamBlockSpec {
  RamBlockSpec(std::string name, uint64_t length, std::optional<uint64_t> page_size = {},
               std::optional<uint64_t> addr = {})
      : name(std::move(name)), length(length), page_size(page_size), addr(addr) {}

  std::string name;
  uint64_t length = 0;
  std::optional<uint64_t> page_size;
  std::optional<uint64_t> addr;
};

// The CONFIGURATION record: machine name and the optional subsections.
struct ConfigurationSpec {
  ConfigurationSpec(std::string machine, std::optional<uint32_t> target_page_bits = {},
                    std::optional<std::vector<std::string>> capabilities = {},
                    std::optional<std::array<uint8_t, 16>> uuid = {})
      : machine(std::move(machine)),
        target_page_bits(target_page_bits),
        capabilities(std::move(capabilities)),
        uuid(uuid) {}

  std::string machine;
  std::optional<uint32_t> target_page_bits;
  std::optional<std::vector<std::string>> capabilities;
  std::optional<std::array<uint8_t, 16>> uuid;
};

// A device state as QEMU's vmstate writes it: fields in order, each with the
// VMState type name the JSON description uses and its wire bytes.
struct DeviceFieldSpec {
  std::string name;
  std::string type;
  std::vector<uint8_t> bytes;
};

struct DeviceSpec {
  std::string idstr;
  uint32_t instance_id = 0;
  uint32_t version = 1;
  std::vector<DeviceFieldSpec> fields;
};

// What a writer wrote, in the vocabulary of StreamSummary.
struct RamPageTally {
  uint64_t zero = 0;
  uint64_t normal = 0;
  uint64_t xbzrle = 0;
  uint64_t compressed = 0;
  uint64_t nonzero_fill = 0;
};

struct WrittenTally {
  NameCounts sections;                        // by SectionTypeName, "EOF" included
  NameCounts commands;                        // by CommandKindName
  std::map<std::string, RamPageTally> pages;  // by block name
  uint64_t ram_records = 0;                   // every be64 RAM word
  uint64_t packages = 0;
  std::vector<uint32_t> pings;
};

class StreamWriter {
 public:
  explicit StreamWriter(ProfileId profile = ProfileId::kQemu72);

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }
  uint64_t size() const { return bytes_.size(); }
  const Profile& profile() const { return *profile_; }
  const WrittenTally& tally() const { return tally_; }
  const std::vector<CommandKind>& missing_commands() const { return missing_; }

  // Named offsets: Mark(name) records size() under `name`.
  StreamWriter& Mark(const std::string& name);
  StreamWriter& SetMark(const std::string& name, uint64_t offset);
  uint64_t MarkOf(const std::string& name) const;  // 0 when absent
  const std::map<std::string, uint64_t>& marks() const { return marks_; }

  // Raw bytes.
  StreamWriter& U8(uint8_t value);
  StreamWriter& Be16(uint16_t value);
  StreamWriter& Be32(uint32_t value);
  StreamWriter& Be64(uint64_t value);
  StreamWriter& Bytes(absl::Span<const uint8_t> data);
  StreamWriter& Text(absl::string_view text);
  // u8 length + bytes; the length is the low 8 bits of text.size().
  StreamWriter& CountedString(absl::string_view text);
  // Overwrites already written bytes (for breaking a stream after the fact).
  StreamWriter& PatchU8(uint64_t offset, uint8_t value);
  StreamWriter& PatchBe32(uint64_t offset, uint32_t value);

  // File header and configuration.
  StreamWriter& Header(uint32_t magic = kFileMagic, uint32_t version = kFileVersion);
  StreamWriter& Configuration(const ConfigurationSpec& spec);
  // The pieces of Configuration(), for broken variants: 0x07 + be32 length +
  // name; then each subsection's header (0x05, counted name, be32 version),
  // after which the caller writes the body.
  StreamWriter& ConfigurationStart(absl::string_view machine);
  StreamWriter& ConfigurationStart(uint32_t declared_length, absl::string_view machine);
  StreamWriter& Subsection(absl::string_view name, uint32_t version = 1);

  // Sections. A footer is never implied: call Footer(id) where one belongs.
  StreamWriter& SectionStart(uint32_t id, absl::string_view idstr, uint32_t instance,
                             uint32_t version);
  StreamWriter& SectionFull(uint32_t id, absl::string_view idstr, uint32_t instance,
                            uint32_t version);
  StreamWriter& SectionPart(uint32_t id);
  StreamWriter& SectionEnd(uint32_t id);
  StreamWriter& Footer(uint32_t id);
  StreamWriter& Eof();
  // 0x06 + be32 length + JSON; the second form declares another length.
  StreamWriter& VmDescription(absl::string_view json);
  StreamWriter& VmDescription(uint32_t declared_length, absl::string_view json);
  // A FULL section holding the device's fields (no footer).
  StreamWriter& DeviceFull(uint32_t id, const DeviceSpec& device);

  // Commands. The generic forms write 0x08, be16 number, be16 length, payload.
  StreamWriter& Command(uint16_t number, uint16_t length, absl::Span<const uint8_t> payload);
  StreamWriter& Command(CommandKind kind, absl::Span<const uint8_t> payload);
  StreamWriter& Command(CommandKind kind, uint16_t length, absl::Span<const uint8_t> payload);
  // The number of `kind` in this writer's profile (0 when it has none).
  uint16_t NumberOf(CommandKind kind) const;

  StreamWriter& OpenReturnPath();
  StreamWriter& Ping(uint32_t value);
  // 16 bytes (page-size summary, target page size) with RAM, else 0 bytes.
  StreamWriter& Advise(bool with_ram = true, uint64_t page_summary = 4096,
                       uint64_t target_page = 4096);
  StreamWriter& Listen();
  StreamWriter& Run();
  StreamWriter& RamDiscard(absl::string_view block,
                           const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
                           uint8_t version = kRamDiscardVersion, uint8_t terminator = 0);
  // cmd PACKAGED, be32 blob length, blob.
  StreamWriter& Packaged(absl::Span<const uint8_t> blob);
  // Declares `declared_length` but appends `blob` as is.
  StreamWriter& Packaged(uint32_t declared_length, absl::Span<const uint8_t> blob);
  // Packages a nested writer and merges its tally and marks.
  StreamWriter& Packaged(const StreamWriter& inner);
  StreamWriter& EnableColo();
  StreamWriter& Resume();
  StreamWriter& RecvBitmap(absl::string_view block);
  StreamWriter& SwitchoverStart();

  // Payload builders, for commands written with a wrong length on purpose.
  static std::vector<uint8_t> AdvisePayload(uint64_t page_summary, uint64_t target_page);
  static std::vector<uint8_t> RamDiscardPayload(
      absl::string_view block, const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
      uint8_t version = kRamDiscardVersion, uint8_t terminator = 0);

  // RAM records (inside a "ram" section's payload).
  StreamWriter& RamWord(uint64_t word);
  // MEM_SIZE with the sum of the lengths as total, or an explicit total.
  StreamWriter& RamMemSize(const std::vector<RamBlockSpec>& blocks);
  StreamWriter& RamMemSize(uint64_t total, const std::vector<RamBlockSpec>& blocks);
  // PAGE; `page` is normally kTargetPageSize bytes (written as given).
  StreamWriter& RamPage(const RamBlockRef& block, uint64_t offset, absl::Span<const uint8_t> page);
  // PAGE filled with one byte value.
  StreamWriter& RamPageFilled(const RamBlockRef& block, uint64_t offset, uint8_t value);
  StreamWriter& RamZero(const RamBlockRef& block, uint64_t offset, uint8_t fill = 0);
  // XBZRLE: u8 encoding flag, be16 length, encoded bytes.
  StreamWriter& RamXbzrle(const RamBlockRef& block, uint64_t offset,
                          absl::Span<const uint8_t> encoded,
                          uint8_t encoding = kXbzrleEncodingFlag);
  // COMPRESS_PAGE with `page` deflated by zlib's compress2.
  StreamWriter& RamCompressed(const RamBlockRef& block, uint64_t offset,
                              absl::Span<const uint8_t> page);
  // COMPRESS_PAGE with the given bytes as they are (garbage, short streams).
  StreamWriter& RamCompressedRaw(const RamBlockRef& block, uint64_t offset,
                                 absl::Span<const uint8_t> data);
  StreamWriter& RamEos();
  StreamWriter& RamMultifdFlush();

 private:
  StreamWriter& SectionHeader(SectionType type, uint32_t id, absl::string_view idstr,
                              uint32_t instance, uint32_t version);
  // The be64 word of a page record, plus the block name unless CONTINUE.
  StreamWriter& PageHeader(const RamBlockRef& block, uint64_t offset, uint32_t flag);
  RamPageTally& PageTally(const RamBlockRef& block);

  const Profile* profile_;
  std::vector<uint8_t> bytes_;
  WrittenTally tally_;
  std::map<std::string, uint64_t> marks_;
  std::vector<CommandKind> missing_;
  std::optional<std::string> last_block_;
};

// XBZRLE-encodes `page` against `old_page` (both kTargetPageSize bytes) the
// way QEMU's decoder reads it: (zero run, literal run) pairs of ULEB128
// counts; an unchanged tail is left implicit.
std::vector<uint8_t> XbzrleEncode(absl::Span<const uint8_t> old_page,
                                  absl::Span<const uint8_t> page);

// The VMDESCRIPTION JSON QEMU would write for these devices.
std::string DescribeDevices(const std::vector<DeviceSpec>& devices);

// Whole streams. The defaults give a small valid stream; every piece is
// written by the calls above, so a test can rebuild a variant by hand.
struct StreamRecipe {
  ProfileId profile = ProfileId::kQemu72;
  std::string machine = "pc-i440fx-7.2";
  std::vector<RamBlockSpec> blocks = {{"pc.ram", 64 * 1024, {}, {}}, {"pc.rom", 8 * 1024, {}, {}}};
  std::vector<DeviceSpec> devices;  // empty: DefaultDevices()
  bool footers = true;
  bool vmdescription = true;  // precopy only
  uint32_t ram_section_id = 2;
};

std::vector<DeviceSpec> DefaultDevices();

// header, CONFIGURATION, RAM START (MEM_SIZE, EOS), RAM PART (PAGE, ZERO,
// CONTINUE pages in each block, EOS), RAM END (EOS), FULL device sections,
// EOF, VMDESCRIPTION. Marks: "ram_start", "ram_part", "ram_end", "devices",
// "eof", "vmdesc", and "device:<idstr>" per device.
StreamWriter BuildPrecopyStream(const StreamRecipe& recipe = {});

// header, CONFIGURATION, OPEN_RETURN_PATH, PING 1, ADVISE(16), RAM START
// (MEM_SIZE), RAM PART (precopy pages), one RAM_DISCARD per block, PING 2,
// PACKAGED{LISTEN, FULL devices + footers, PING 3, RUN}, PING 4, RAM PARTs
// (postcopy ZERO/PAGE), RAM END, EOF. Marks as above plus "package" (the
// PACKAGED command), "package_blob", "listen", "run", "discard:<block>",
// "ping:<n>", "postcopy_part".
StreamWriter BuildPostcopyStream(const StreamRecipe& recipe = {});

}  // namespace qmig

#endif  // QMIG_PARSER_ENCODE_STREAM_WRITER_H_
