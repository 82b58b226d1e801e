#include "parser/encode/stream_writer.h"

#include <zlib.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "parser/wire/endian.h"
#include "parser/wire/limits.h"

namespace qmig {
namespace {

// Test streams name things in ASCII; anything else is escaped so that the
// JSON stays valid whatever a fuzzer puts in a name.
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::vector<uint8_t> Page(uint8_t value) { return std::vector<uint8_t>(kTargetPageSize, value); }

void AppendUleb(std::vector<uint8_t>& out, uint32_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<uint8_t>(value));
}

}  // namespace

StreamWriter::StreamWriter(ProfileId profile) : profile_(&GetProfile(profile)) {}

StreamWriter& StreamWriter::Mark(const std::string& name) {
  marks_[name] = bytes_.size();
  return *this;
}

StreamWriter& StreamWriter::SetMark(const std::string& name, uint64_t offset) {
  marks_[name] = offset;
  return *this;
}

uint64_t StreamWriter::MarkOf(const std::string& name) const {
  auto it = marks_.find(name);
  return it == marks_.end() ? 0 : it->second;
}

StreamWriter& StreamWriter::U8(uint8_t value) {
  bytes_.push_back(value);
  return *this;
}

StreamWriter& StreamWriter::Be16(uint16_t value) {
  AppendBe16(bytes_, value);
  return *this;
}

StreamWriter& StreamWriter::Be32(uint32_t value) {
  AppendBe32(bytes_, value);
  return *this;
}

StreamWriter& StreamWriter::Be64(uint64_t value) {
  AppendBe64(bytes_, value);
  return *this;
}

StreamWriter& StreamWriter::Bytes(absl::Span<const uint8_t> data) {
  bytes_.insert(bytes_.end(), data.begin(), data.end());
  return *this;
}

StreamWriter& StreamWriter::Text(absl::string_view text) {
  bytes_.insert(bytes_.end(), text.begin(), text.end());
  return *this;
}

StreamWriter& StreamWriter::CountedString(absl::string_view text) {
  U8(static_cast<uint8_t>(text.size()));
  return Text(text);
}

StreamWriter& StreamWriter::PatchU8(uint64_t offset, uint8_t value) {
  if (offset < bytes_.size()) bytes_[offset] = value;
  return *this;
}

StreamWriter& StreamWriter::PatchBe32(uint64_t offset, uint32_t value) {
  uint8_t bytes[4];
  StoreBe32(bytes, value);
  for (int i = 0; i < 4; ++i) PatchU8(offset + i, bytes[i]);
  return *this;
}

StreamWriter& StreamWriter::Header(uint32_t magic, uint32_t version) {
  return Be32(magic).Be32(version);
}

StreamWriter& StreamWriter::ConfigurationStart(absl::string_view machine) {
  return ConfigurationStart(static_cast<uint32_t>(machine.size()), machine);
}

StreamWriter& StreamWriter::ConfigurationStart(uint32_t declared_length,
                                               absl::string_view machine) {
  U8(static_cast<uint8_t>(SectionType::kConfiguration));
  return Be32(declared_length).Text(machine);
}

StreamWriter& StreamWriter::Subsection(absl::string_view name, uint32_t version) {
  U8(static_cast<uint8_t>(SectionType::kSubsection));
  return CountedString(name).Be32(version);
}

StreamWriter& StreamWriter::Configuration(const ConfigurationSpec& spec) {
  ConfigurationStart(spec.machine);
  if (spec.target_page_bits.has_value()) {
    Subsection(kConfigTargetPageBits).Be32(*spec.target_page_bits);
  }
  if (spec.capabilities.has_value()) {
    Subsection(kConfigCapabilities).Be32(static_cast<uint32_t>(spec.capabilities->size()));
    for (const std::string& capability : *spec.capabilities) CountedString(capability);
  }
  if (spec.uuid.has_value()) Subsection(kConfigUuid).Bytes(*spec.uuid);
  return *this;
}

StreamWriter& StreamWriter::SectionHeader(SectionType type, uint32_t id, absl::string_view idstr,
                                          uint32_t instance, uint32_t version) {
  ++tally_.sections[std::string(SectionTypeName(static_cast<uint8_t>(type)))];
  U8(static_cast<uint8_t>(type)).Be32(id).CountedString(idstr);
  return Be32(instance).Be32(version);
}

StreamWriter& StreamWriter::SectionStart(uint32_t id, absl::string_view idstr, uint32_t instance,
                                         uint32_t version) {
  return SectionHeader(SectionType::kStart, id, idstr, instance, version);
}

StreamWriter& StreamWriter::SectionFull(uint32_t id, absl::string_view idstr, uint32_t instance,
                                        uint32_t version) {
  return SectionHeader(SectionType::kFull, id, idstr, instance, version);
}

StreamWriter& StreamWriter::SectionPart(uint32_t id) {
  ++tally_.sections["PART"];
  return U8(static_cast<uint8_t>(SectionType::kPart)).Be32(id);
}

StreamWriter& StreamWriter::SectionEnd(uint32_t id) {
  ++tally_.sections["END"];
  return U8(static_cast<uint8_t>(SectionType::kEnd)).Be32(id);
}

StreamWriter& StreamWriter::Footer(uint32_t id) {
  return U8(static_cast<uint8_t>(SectionType::kFooter)).Be32(id);
}

StreamWriter& StreamWriter::Eof() {
  ++tally_.sections["EOF"];
  return U8(static_cast<uint8_t>(SectionType::kEof));
}

StreamWriter& StreamWriter::VmDescription(absl::string_view json) {
  return VmDescription(static_cast<uint32_t>(json.size()), json);
}

StreamWriter& StreamWriter::VmDescription(uint32_t declared_length, absl::string_view json) {
  U8(static_cast<uint8_t>(SectionType::kVmDescription));
  return Be32(declared_length).Text(json);
}

StreamWriter& StreamWriter::DeviceFull(uint32_t id, const DeviceSpec& device) {
  SectionFull(id, device.idstr, device.instance_id, device.version);
  for (const DeviceFieldSpec& field : device.fields) Bytes(field.bytes);
  return *this;
}

uint16_t StreamWriter::NumberOf(CommandKind kind) const {
  return profile_->NumberOf(kind).value_or(0);
}

StreamWriter& StreamWriter::Command(uint16_t number, uint16_t length,
                                    absl::Span<const uint8_t> payload) {
  if (const CommandSpec* spec = profile_->FindCommand(number)) {
    ++tally_.commands[std::string(CommandKindName(spec->kind))];
  }
  U8(static_cast<uint8_t>(SectionType::kCommand)).Be16(number).Be16(length);
  return Bytes(payload);
}

StreamWriter& StreamWriter::Command(CommandKind kind, absl::Span<const uint8_t> payload) {
  return Command(kind, static_cast<uint16_t>(payload.size()), payload);
}

StreamWriter& StreamWriter::Command(CommandKind kind, uint16_t length,
                                    absl::Span<const uint8_t> payload) {
  std::optional<uint16_t> number = profile_->NumberOf(kind);
  if (!number.has_value()) missing_.push_back(kind);
  return Command(number.value_or(0), length, payload);
}

StreamWriter& StreamWriter::OpenReturnPath() { return Command(CommandKind::kOpenReturnPath, {}); }

StreamWriter& StreamWriter::Ping(uint32_t value) {
  tally_.pings.push_back(value);
  uint8_t payload[4];
  StoreBe32(payload, value);
  return Command(CommandKind::kPing, payload);
}

std::vector<uint8_t> StreamWriter::AdvisePayload(uint64_t page_summary, uint64_t target_page) {
  StreamWriter payload;
  payload.Be64(page_summary).Be64(target_page);
  return payload.Take();
}

StreamWriter& StreamWriter::Advise(bool with_ram, uint64_t page_summary, uint64_t target_page) {
  if (!with_ram) return Command(CommandKind::kPostcopyAdvise, {});
  return Command(CommandKind::kPostcopyAdvise, AdvisePayload(page_summary, target_page));
}

StreamWriter& StreamWriter::Listen() { return Command(CommandKind::kPostcopyListen, {}); }

StreamWriter& StreamWriter::Run() { return Command(CommandKind::kPostcopyRun, {}); }

std::vector<uint8_t> StreamWriter::RamDiscardPayload(
    absl::string_view block, const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
    uint8_t version, uint8_t terminator) {
  StreamWriter payload;
  payload.U8(version).CountedString(block).U8(terminator);
  for (const auto& [start, length] : ranges) payload.Be64(start).Be64(length);
  return payload.Take();
}

StreamWriter& StreamWriter::RamDiscard(absl::string_view block,
                                       const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
                                       uint8_t version, uint8_t terminator) {
  return Command(CommandKind::kPostcopyRamDiscard,
                 RamDiscardPayload(block, ranges, version, terminator));
}

StreamWriter& StreamWriter::Packaged(absl::Span<const uint8_t> blob) {
  return Packaged(static_cast<uint32_t>(blob.size()), blob);
}

StreamWriter& StreamWriter::Packaged(uint32_t declared_length, absl::Span<const uint8_t> blob) {
  ++tally_.packages;
  uint8_t length[4];
  StoreBe32(length, declared_length);
  Command(CommandKind::kPackaged, length);
  return Bytes(blob);
}

StreamWriter& StreamWriter::Packaged(const StreamWriter& inner) {
  Packaged(inner.bytes());
  const uint64_t blob_start = bytes_.size() - inner.bytes().size();
  for (const auto& [name, offset] : inner.marks_) marks_[name] = blob_start + offset;
  const WrittenTally& in = inner.tally_;
  for (const auto& [name, count] : in.sections) tally_.sections[name] += count;
  for (const auto& [name, count] : in.commands) tally_.commands[name] += count;
  for (const auto& [name, pages] : in.pages) {
    RamPageTally& out = tally_.pages[name];
    out.zero += pages.zero;
    out.normal += pages.normal;
    out.xbzrle += pages.xbzrle;
    out.compressed += pages.compressed;
    out.nonzero_fill += pages.nonzero_fill;
  }
  tally_.ram_records += in.ram_records;
  tally_.packages += in.packages;
  tally_.pings.insert(tally_.pings.end(), in.pings.begin(), in.pings.end());
  missing_.insert(missing_.end(), inner.missing_.begin(), inner.missing_.end());
  return *this;
}

StreamWriter& StreamWriter::EnableColo() { return Command(CommandKind::kEnableColo, {}); }

StreamWriter& StreamWriter::Resume() { return Command(CommandKind::kPostcopyResume, {}); }

StreamWriter& StreamWriter::RecvBitmap(absl::string_view block) {
  StreamWriter payload;
  payload.CountedString(block);
  return Command(CommandKind::kRecvBitmap, payload.bytes());
}

StreamWriter& StreamWriter::SwitchoverStart() { return Command(CommandKind::kSwitchoverStart, {}); }

StreamWriter& StreamWriter::RamWord(uint64_t word) {
  ++tally_.ram_records;
  return Be64(word);
}

StreamWriter& StreamWriter::RamMemSize(const std::vector<RamBlockSpec>& blocks) {
  uint64_t total = 0;
  for (const RamBlockSpec& block : blocks) total += block.length;
  return RamMemSize(total, blocks);
}

StreamWriter& StreamWriter::RamMemSize(uint64_t total, const std::vector<RamBlockSpec>& blocks) {
  RamWord(total | ram_flag::kMemSize);
  for (const RamBlockSpec& block : blocks) {
    CountedString(block.name).Be64(block.length);
    if (block.page_size.has_value()) Be64(*block.page_size);
    if (block.addr.has_value()) Be64(*block.addr);
  }
  return *this;
}

RamPageTally& StreamWriter::PageTally(const RamBlockRef& block) {
  return tally_.pages[block.has_value() ? *block : last_block_.value_or("")];
}

StreamWriter& StreamWriter::PageHeader(const RamBlockRef& block, uint64_t offset, uint32_t flag) {
  if (!block.has_value()) return RamWord(offset | flag | ram_flag::kContinue);
  last_block_ = *block;
  return RamWord(offset | flag).CountedString(*block);
}

StreamWriter& StreamWriter::RamPage(const RamBlockRef& block, uint64_t offset,
                                    absl::Span<const uint8_t> page) {
  ++PageTally(block).normal;
  return PageHeader(block, offset, ram_flag::kPage).Bytes(page);
}

StreamWriter& StreamWriter::RamPageFilled(const RamBlockRef& block, uint64_t offset,
                                          uint8_t value) {
  return RamPage(block, offset, Page(value));
}

StreamWriter& StreamWriter::RamZero(const RamBlockRef& block, uint64_t offset, uint8_t fill) {
  RamPageTally& tally = PageTally(block);
  ++tally.zero;
  if (fill != 0) ++tally.nonzero_fill;
  return PageHeader(block, offset, ram_flag::kZero).U8(fill);
}

StreamWriter& StreamWriter::RamXbzrle(const RamBlockRef& block, uint64_t offset,
                                      absl::Span<const uint8_t> encoded, uint8_t encoding) {
  ++PageTally(block).xbzrle;
  PageHeader(block, offset, ram_flag::kXbzrle).U8(encoding);
  return Be16(static_cast<uint16_t>(encoded.size())).Bytes(encoded);
}

StreamWriter& StreamWriter::RamCompressed(const RamBlockRef& block, uint64_t offset,
                                          absl::Span<const uint8_t> page) {
  uLongf length = compressBound(page.size());
  std::vector<uint8_t> deflated(length);
  if (compress2(deflated.data(), &length, page.data(), page.size(), Z_BEST_SPEED) != Z_OK) {
    length = 0;  // cannot happen with compressBound; an empty body breaks loudly
  }
  deflated.resize(length);
  return RamCompressedRaw(block, offset, deflated);
}

StreamWriter& StreamWriter::RamCompressedRaw(const RamBlockRef& block, uint64_t offset,
                                             absl::Span<const uint8_t> data) {
  ++PageTally(block).compressed;
  PageHeader(block, offset, ram_flag::kCompressPage);
  return Be32(static_cast<uint32_t>(data.size())).Bytes(data);
}

StreamWriter& StreamWriter::RamEos() { return RamWord(ram_flag::kEos); }

StreamWriter& StreamWriter::RamMultifdFlush() { return RamWord(ram_flag::kMultifdFlush); }

std::vector<uint8_t> XbzrleEncode(absl::Span<const uint8_t> old_page,
                                  absl::Span<const uint8_t> page) {
  std::vector<uint8_t> out;
  const size_t size = std::min(old_page.size(), page.size());
  size_t i = 0;
  while (i < size) {
    size_t zero_run = 0;
    while (i + zero_run < size && old_page[i + zero_run] == page[i + zero_run]) ++zero_run;
    // An unchanged tail is implicit: the decoder leaves the rest of the page.
    if (i + zero_run == size) break;
    size_t literal_run = 0;
    const size_t literal_start = i + zero_run;
    while (literal_start + literal_run < size &&
           old_page[literal_start + literal_run] != page[literal_start + literal_run]) {
      ++literal_run;
    }
    AppendUleb(out, static_cast<uint32_t>(zero_run));
    AppendUleb(out, static_cast<uint32_t>(literal_run));
    out.insert(out.end(), page.begin() + literal_start, page.begin() + literal_start + literal_run);
    i = literal_start + literal_run;
  }
  return out;
}

std::string DescribeDevices(const std::vector<DeviceSpec>& devices) {
  std::string json = absl::StrCat("{\"page_size\":", kTargetPageSize, ",\"devices\":[");
  for (size_t d = 0; d < devices.size(); ++d) {
    const DeviceSpec& device = devices[d];
    absl::StrAppend(&json, d == 0 ? "" : ",", "{\"name\":", JsonString(device.idstr),
                    ",\"instance_id\":", device.instance_id,
                    ",\"vmsd_name\":", JsonString(device.idstr), ",\"version\":", device.version,
                    ",\"fields\":[");
    for (size_t f = 0; f < device.fields.size(); ++f) {
      const DeviceFieldSpec& field = device.fields[f];
      absl::StrAppend(&json, f == 0 ? "" : ",", "{\"name\":", JsonString(field.name),
                      ",\"type\":", JsonString(field.type), ",\"size\":", field.bytes.size(), "}");
    }
    json += "]}";
  }
  json += "]}";
  return json;
}

std::vector<DeviceSpec> DefaultDevices() {
  return {
      {"timer",
       0,
       2,
       {{"cpu_ticks_offset", "int64", {0, 0, 0, 0, 0, 0, 0x10, 0}},
        {"dummy", "int64", std::vector<uint8_t>(8, 0)},
        {"cpu_clock_offset", "int64", {0, 0, 0, 0, 0, 1, 0, 0}}}},
      {"apic",
       0,
       3,
       {{"apicbase", "uint32", {0xfe, 0xe0, 0x09, 0x00}},
        {"id", "uint8", {0}},
        {"enabled", "bool", {1}},
        {"regs", "buffer", std::vector<uint8_t>(16, 0xab)}}},
      {"i8259", 1, 1, {{"irr", "uint8", {0}}, {"imr", "uint8", {0xff}}}},
  };
}

namespace {

// A page whose bytes depend on where it lives, so that pages differ.
std::vector<uint8_t> PatternPage(uint64_t seed) {
  std::vector<uint8_t> page(kTargetPageSize);
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint8_t>(seed * 31 + i);
  return page;
}

// START with MEM_SIZE, then a PART with precopy pages: in every block a
// named PAGE, a CONTINUE ZERO page and a CONTINUE PAGE.
void WriteRamSetupAndPart(StreamWriter& w, const StreamRecipe& recipe) {
  const uint32_t id = recipe.ram_section_id;
  w.Mark("ram_start").SectionStart(id, kRamSectionName, 0, kRamSectionVersion);
  w.RamMemSize(recipe.blocks).RamEos();
  if (recipe.footers) w.Footer(id);
  w.Mark("ram_part").SectionPart(id);
  for (size_t b = 0; b < recipe.blocks.size(); ++b) {
    const RamBlockSpec& block = recipe.blocks[b];
    w.RamPage(block.name, 0, PatternPage(b));
    if (block.length >= 2 * kTargetPageSize) w.RamZero(kContinueBlock, kTargetPageSize);
    if (block.length >= 3 * kTargetPageSize) {
      w.RamPage(kContinueBlock, 2 * kTargetPageSize, PatternPage(b + 100));
    }
  }
  w.RamEos();
  if (recipe.footers) w.Footer(id);
}

void WriteDevices(StreamWriter& w, const StreamRecipe& recipe,
                  const std::vector<DeviceSpec>& devices) {
  w.Mark("devices");
  uint32_t id = recipe.ram_section_id + 1;
  for (const DeviceSpec& device : devices) {
    w.Mark(absl::StrCat("device:", device.idstr));
    w.DeviceFull(id, device);
    if (recipe.footers) w.Footer(id);
    ++id;
  }
}

}  // namespace

StreamWriter BuildPrecopyStream(const StreamRecipe& recipe) {
  const std::vector<DeviceSpec> devices =
      recipe.devices.empty() ? DefaultDevices() : recipe.devices;
  StreamWriter w(recipe.profile);
  w.Header().Configuration({recipe.machine, {}, {}, {}});
  WriteRamSetupAndPart(w, recipe);
  w.Mark("ram_end").SectionEnd(recipe.ram_section_id).RamEos();
  if (recipe.footers) w.Footer(recipe.ram_section_id);
  WriteDevices(w, recipe, devices);
  w.Mark("eof").Eof();
  if (recipe.vmdescription) w.Mark("vmdesc").VmDescription(DescribeDevices(devices));
  return w;
}

StreamWriter BuildPostcopyStream(const StreamRecipe& recipe) {
  const std::vector<DeviceSpec> devices =
      recipe.devices.empty() ? DefaultDevices() : recipe.devices;
  const uint32_t id = recipe.ram_section_id;
  StreamWriter w(recipe.profile);
  w.Header().Configuration({recipe.machine, {}, {}, {}});
  w.Mark("open_return_path").OpenReturnPath().Mark("ping:1").Ping(1);
  w.Mark("advise").Advise(true, kTargetPageSize, kTargetPageSize);
  WriteRamSetupAndPart(w, recipe);
  for (const RamBlockSpec& block : recipe.blocks) {
    // Discard everything after the first page: it is sent again in postcopy.
    if (block.length <= kTargetPageSize) continue;
    w.Mark(absl::StrCat("discard:", block.name));
    w.RamDiscard(block.name, {{kTargetPageSize, block.length - kTargetPageSize}});
  }
  w.Mark("ping:2").Ping(2);

  StreamWriter package(recipe.profile);
  package.Mark("listen").Listen();
  WriteDevices(package, recipe, devices);
  package.Mark("ping:3").Ping(3).Mark("run").Run();
  w.Mark("package").Packaged(package);
  // cmd byte, be16 number, be16 length, be32 blob length.
  w.SetMark("package_blob", w.MarkOf("package") + 9);
  w.Mark("ping:4").Ping(4);
  w.Mark("postcopy_part").SectionPart(id);
  for (const RamBlockSpec& block : recipe.blocks) {
    if (block.length <= kTargetPageSize) continue;
    w.RamPage(block.name, kTargetPageSize, PatternPage(block.length));
    if (block.length >= 3 * kTargetPageSize) w.RamZero(kContinueBlock, 2 * kTargetPageSize);
  }
  w.RamEos();
  if (recipe.footers) w.Footer(id);
  w.Mark("ram_end").SectionEnd(id).RamEos();
  if (recipe.footers) w.Footer(id);
  w.Mark("eof").Eof();
  return w;
}

}  // namespace qmig
