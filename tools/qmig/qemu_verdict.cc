#include "tools/qmig/qemu_verdict.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "tools/qmig/qemu_process.h"

namespace qmig {
namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(20);
constexpr absl::Duration kExitGrace = absl::Seconds(15);
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);
// Firmware images QEMU takes: a multiple of 64 KiB, at most 16 MiB.
constexpr uint64_t kFirmwareGranule = uint64_t{64} << 10;
constexpr uint64_t kMaxFirmware = uint64_t{16} << 20;

// A firmware image of `size` bytes that halts at the reset vector: its
// contents do not matter (the stream brings the ROM's pages), its size must
// equal the block's.
absl::Status WriteFirmware(const std::string& path, uint64_t size) {
  std::vector<char> bytes(size, 0);
  if (size >= 16) {
    bytes[size - 16] = static_cast<char>(0xf4);  // hlt
    bytes[size - 15] = static_cast<char>(0xeb);  // jmp $-1
    bytes[size - 14] = static_cast<char>(0xfd);
  }
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

bool HasSection(const StreamFacts& facts, absl::string_view part) {
  for (const std::string& name : facts.section_names) {
    if (absl::StrContains(name, part)) return true;
  }
  return false;
}

// The names a text quotes: 'x', "x", and the word after "for".
std::set<std::string> Subjects(const std::string& text) {
  std::set<std::string> out;
  static const std::regex kQuoted("['\"]([^'\"]{1,255})['\"]");
  for (std::sregex_iterator it(text.begin(), text.end(), kQuoted), end; it != end; ++it) {
    out.insert((*it)[1].str());
  }
  static const std::regex kFooterFor("footer for ([^ :,]+)");
  for (std::sregex_iterator it(text.begin(), text.end(), kFooterFor), end; it != end; ++it) {
    out.insert((*it)[1].str());
  }
  static const std::regex kSectionId("section id ([0-9]+)[(]([^)]+)[)]");
  for (std::sregex_iterator it(text.begin(), text.end(), kSectionId), end; it != end; ++it) {
    out.insert((*it)[2].str());
  }
  return out;
}

// Words of QEMU's errors that go with a family of qmig's finding codes.
struct CauseWords {
  absl::string_view code_prefix;
  std::vector<absl::string_view> words;
};
const std::vector<CauseWords>& Causes() {
  static const auto* causes = new std::vector<CauseWords>{
      {"header.", {"Not a migration stream", "SaveVM v2", "version"}},
      {"config.", {"Configuration section", "Machine type", "capability", "page bits", "UUID"}},
      {"cmd.", {"MIG_CMD", "command", "postcopy", "advise", "PING", "listen", "LISTEN"}},
      {"package.", {"PACKAGED", "packaged", "package", "Input/output error", "-5"}},
      {"stream.truncated", {"Input/output error", "-5", "stream error", "EOF"}},
      {"section.", {"section", "Section", "footer"}},
      {"ram.", {"RAM", "ramblock", "page", "'ram'"}},
  };
  return *causes;
}

}  // namespace

void StreamFactsObserver::OnCommand(CommandKind kind, uint64_t, absl::Span<const uint8_t> payload) {
  if (kind == CommandKind::kPostcopyAdvise && !payload.empty()) facts_.ram_postcopy_advised = true;
}

void StreamFactsObserver::OnSection(uint8_t type, uint32_t, absl::string_view idstr, uint32_t,
                                    uint32_t, uint64_t) {
  const bool opens = type == static_cast<uint8_t>(SectionType::kStart) ||
                     type == static_cast<uint8_t>(SectionType::kFull);
  if (opens && facts_.section_names.size() < kMaxFactNames) {
    facts_.section_names.insert(std::string(idstr));
  }
}

absl::StatusOr<DestinationConfig> ConfigFromStream(const ParseResult& result,
                                                   const StreamFacts& facts,
                                                   const std::string& machine,
                                                   const std::string& dir) {
  const StreamSummary& s = result.summary;
  DestinationConfig config;
  const bool footers = s.footers.value_or(true);
  std::string machine_type = machine;
  if (machine_type.empty() && s.machine.has_value()) machine_type = *s.machine;
  if (machine_type.empty()) {
    // No CONFIGURATION. The device set tells the family; the framing tells
    // the age: machine types up to 2.3 send neither the configuration nor
    // footers, and up to 2.2 no VMDESCRIPTION either.
    const bool q35 = HasSection(facts, "ICH9") || HasSection(facts, "mch");
    const bool i440fx = HasSection(facts, "PIIX") || HasSection(facts, "i440FX");
    if (!q35 && !i440fx) {
      return absl::FailedPreconditionError(
          "the stream names no machine (no CONFIGURATION) and its devices do not tell one; "
          "pass --machine=TYPE");
    }
    const std::string family = q35 ? "pc-q35-" : "pc-i440fx-";
    if (footers) {
      // A machine with footers but without the configuration section: the
      // source ran with send-configuration=off.
      machine_type = family + "7.2";
      config.args.insert(config.args.end(), {"-global", "migration.send-configuration=off"});
    } else {
      machine_type = family + (facts.trailer ? "2.3" : "2.2");
    }
    config.notes.push_back(absl::StrCat("machine ", machine_type,
                                        " inferred from the devices and the stream's framing "
                                        "(no CONFIGURATION section)"));
  } else if (!footers) {
    config.args.insert(config.args.end(), {"-global", "migration.send-section-footer=off"});
  }

  // Guest RAM and firmware from the blocks the stream lists.
  uint64_t ram_bytes = uint64_t{16} << 20;
  std::vector<const RamBlockSummary*> backends;  // blocks of memory backends
  for (const RamBlockSummary& block : s.ram_blocks) {
    if (block.name == "pc.ram" || block.name == "microvm.ram") {
      ram_bytes = block.length;
    } else if (block.name == "pc.bios" && block.length % kFirmwareGranule == 0 &&
               block.length <= kMaxFirmware) {
      const std::string firmware = dir + "/firmware.bin";
      absl::Status written = WriteFirmware(firmware, block.length);
      if (!written.ok()) return written;
      config.args.insert(config.args.end(), {"-bios", firmware});
    } else if (block.name.find_first_of("./@") == std::string::npos) {
      backends.push_back(&block);  // ram0, mem1: -object memory-backend-*,id=NAME
    }
  }
  const bool ignore_shared =
      std::count(s.capabilities.begin(), s.capabilities.end(), "x-ignore-shared") > 0;
  std::string memory = absl::StrCat(std::max<uint64_t>(ram_bytes >> 20, 1));
  std::vector<std::string> extra;
  uint64_t dimm_bytes = 0;
  int dimms = 0;
  // Without a pc.ram block the machine's RAM is a memory backend, the first
  // block the stream lists (QEMU registers the machine's RAM first).
  const bool ram_in_backend = std::none_of(
      s.ram_blocks.begin(), s.ram_blocks.end(),
      [](const RamBlockSummary& b) { return b.name == "pc.ram" || b.name == "microvm.ram"; });
  for (const RamBlockSummary* block : backends) {
    const bool main_ram = ram_in_backend && block == backends.front();
    const std::string size = absl::StrCat(block->length >> 20, "M");
    if (main_ram) {
      // Shared, as x-ignore-shared needs; QEMU only sends pages of private RAM.
      ram_bytes = block->length;
      const std::string backend =
          ignore_shared ? absl::StrCat("memory-backend-file,id=", block->name, ",size=", size,
                                       ",share=on,mem-path=", dir, "/", block->name, ".shared")
                        : absl::StrCat("memory-backend-ram,id=", block->name, ",size=", size);
      extra.insert(extra.end(),
                   {"-object", backend, "-machine", absl::StrCat("memory-backend=", block->name)});
      memory = absl::StrCat(block->length >> 20);
      continue;
    }
    extra.insert(
        extra.end(),
        {"-object", absl::StrCat("memory-backend-ram,id=", block->name, ",size=", size), "-device",
         absl::StrCat("pc-dimm,id=dimm-", block->name, ",memdev=", block->name)});
    dimm_bytes += block->length;
    ++dimms;
  }
  if (dimms > 0) {
    absl::StrAppend(&memory, "M,slots=", dimms, ",maxmem=",
                    ((std::max<uint64_t>(ram_bytes, uint64_t{1} << 20) + dimm_bytes) >> 20) + 1,
                    "M");
  } else {
    absl::StrAppend(&memory, "M");
  }
  std::vector<std::string> args = {"-machine", machine_type, "-m",        memory, "-nodefaults",
                                   "-vga",     "none",       "-display",  "none", "-accel",
                                   "tcg",      "-S",         "-incoming", "defer"};
  args.insert(args.end(), config.args.begin(), config.args.end());
  args.insert(args.end(), extra.begin(), extra.end());
  config.args = std::move(args);

  auto need = [&config](const std::string& capability) {
    if (std::find(config.capabilities.begin(), config.capabilities.end(), capability) ==
        config.capabilities.end()) {
      config.capabilities.push_back(capability);
    }
  };
  for (const std::string& capability : s.capabilities) need(capability);
  // A 16-byte ADVISE asks for RAM postcopy; a 0-byte one only for dirty
  // bitmaps, and a destination with postcopy-ram refuses it.
  if (facts.ram_postcopy_advised) need("postcopy-ram");
  if (s.iterable_sections.count(std::string(kDirtyBitmapSectionName)) > 0) need("dirty-bitmaps");
  if (s.uuid.has_value()) {
    need("validate-uuid");
    config.args.insert(config.args.end(), {"-uuid", *s.uuid});
  }
  uint64_t xbzrle = 0, compressed = 0;
  for (const RamBlockSummary& block : s.ram_blocks) {
    xbzrle += block.xbzrle_pages;
    compressed += block.compressed_pages;
  }
  if (xbzrle > 0) need("xbzrle");
  if (compressed > 0) need("compress");
  return config;
}

namespace {

// The corpus's "loop-kernel" (tools/corpus): a multiboot image loaded at
// 1 MiB that counts in a loop and writes the count into the first dword of
// each of the 8 pages at 2 MiB, so that a booted guest dirties pages.
std::vector<char> LoopKernelImage() {
  constexpr uint32_t kMagic = 0x1BADB002, kFlags = 0x00010000;  // address fields valid
  const uint32_t header[8] = {kMagic,   kFlags,   static_cast<uint32_t>(-(kMagic + kFlags)),
                              0x100000, 0x100000, 0,
                              0,        0x100020};
  std::vector<char> image;
  for (uint32_t word : header) {
    for (int byte = 0; byte < 4; ++byte) image.push_back(static_cast<char>(word >> (8 * byte)));
  }
  constexpr unsigned char kCode[] = {
      0xbf, 0x00, 0x00, 0x20, 0x00,        // mov edi, 0x200000
      0xff, 0x05, 0x00, 0x10, 0x10, 0x00,  // inc dword [0x101000]
      0xa1, 0x00, 0x10, 0x10, 0x00,        // mov eax, [0x101000]
      0x89, 0x07,                          // mov [edi], eax
      0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,  // add edi, 0x1000
      0x81, 0xff, 0x00, 0x80, 0x20, 0x00,  // cmp edi, 0x208000
      0x72, 0xe5,                          // jb (the inc)
      0xeb, 0xde,                          // jmp (the mov edi)
  };
  image.insert(image.end(), std::begin(kCode), std::end(kCode));
  return image;
}

}  // namespace

absl::StatusOr<DestinationConfig> ConfigFromMeta(const std::string& path, const std::string& dir) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json meta = nlohmann::json::parse(text.str(), nullptr, false);
  if (!in || meta.is_discarded() || !meta.is_object() || !meta.contains("dest_args") ||
      !meta["dest_args"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not corpus metadata with dest_args"));
  }
  DestinationConfig config;
  // Recordings of live migrations keep the whole command line: the binary,
  // the harness's monitor and qtest sockets, a "(QMP) ..." note. Keep only
  // the machine's own configuration.
  const nlohmann::json& args = meta["dest_args"];
  nlohmann::json aux_files = meta.contains("aux_files") && meta["aux_files"].is_object()
                                 ? meta["aux_files"]
                                 : nlohmann::json::object();
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].is_string()) return absl::InvalidArgumentError("dest_args holds a non-string");
    std::string arg = args[i].get<std::string>();
    if (i == 0 && !arg.empty() && arg[0] != '-') continue;
    if (arg.rfind("(QMP)", 0) == 0) continue;
    if (arg == "-qmp" || arg == "-qtest" || arg == "-qtest-log") {
      ++i;
      continue;
    }
    if (arg.find("$TMP/tiny-bios.bin") != std::string::npos &&
        !aux_files.contains("tiny-bios.bin")) {
      aux_files["tiny-bios.bin"] = {{"kind", "tiny-bios"}, {"size", 65536}};
    }
    config.args.push_back(absl::StrReplaceAll(arg, {{"$TMP", dir}}));
  }
  config.args.insert(config.args.end(), {"-accel", "tcg"});
  if (meta.contains("dest_capabilities") && meta["dest_capabilities"].is_array()) {
    for (const nlohmann::json& cap : meta["dest_capabilities"]) {
      if (cap.is_string()) config.capabilities.push_back(cap.get<std::string>());
    }
  }
  if (meta.contains("dest_parameters") && meta["dest_parameters"].is_object()) {
    config.parameters = meta["dest_parameters"];
  }
  // Files the configuration refers to as $TMP/NAME: a 64 KiB firmware that
  // halts at the reset vector, or zero-filled backing files.
  {
    for (const auto& [name, aux] : aux_files.items()) {
      if (name.find('/') != std::string::npos || !aux.is_object()) continue;
      uint64_t size = aux.value("size", uint64_t{0});
      if (size > (uint64_t{1} << 30)) return absl::InvalidArgumentError("aux file too large");
      std::string file = dir + "/" + name;
      std::ofstream out(file, std::ios::binary);
      std::vector<char> bytes(size, 0);
      const std::string kind = aux.value("kind", std::string());
      if (kind == "tiny-bios" && size >= 16) {
        bytes[size - 16] = static_cast<char>(0xf4);  // hlt
        bytes[size - 15] = static_cast<char>(0xeb);  // jmp $-1
        bytes[size - 14] = static_cast<char>(0xfd);
      } else if (kind == "loop-kernel") {
        bytes = LoopKernelImage();
      }
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", file));
    }
  }
  return config;
}

bool QemuVerdict::loaded() const {
  return status == "completed" || status == "crashed at exit" || status == "hung at exit";
}

bool QemuVerdict::misbehaved() const {
  return status == "timeout" || status == "crashed" || status == "crashed at exit" ||
         status == "hung at exit";
}

namespace {

// A mapped-ram stream needs a seekable input, which only a file: URI gives
// (QEMU refuses "exec:"); every other stream goes through a pipe, as 7.2,
// which has no file: URI, reads it too.
std::string IncomingUri(const DestinationConfig& config, const std::string& stream) {
  if (std::find(config.capabilities.begin(), config.capabilities.end(), "mapped-ram") !=
      config.capabilities.end()) {
    return absl::StrCat("file:", stream);
  }
  return absl::StrCat("exec:cat ", ShellQuote(stream));
}

}  // namespace

absl::StatusOr<QemuVerdict> LoadIntoQemu(const std::string& binary, const DestinationConfig& config,
                                         const std::string& stream, const std::string& dir,
                                         absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<QemuProcess>> started =
      QemuProcess::Start(binary, config.args, dir, kConnectTimeout);
  if (!started.ok()) return started.status();
  QemuProcess& qemu = **started;
  QemuVerdict verdict;
  verdict.command_line = qemu.command_line();

  auto finish = [&](std::string status, std::string detail, bool kill_now) {
    QemuProcess::Exit exit =
        qemu.WaitOrKill(kill_now ? absl::InfinitePast() : absl::Now() + kExitGrace);
    verdict.status = std::move(status);
    verdict.detail = std::move(detail);
    if (exit.killed_by_us && !kill_now && verdict.status == "completed") {
      verdict.status = "hung at exit";
    } else if (!exit.killed_by_us && exit.signal.has_value()) {
      verdict.signal = exit.signal;
      verdict.status = verdict.status == "completed" ? "crashed at exit" : "crashed";
    }
    verdict.exit_code = exit.code;
    std::string last = qemu.LogTail(6);
    if (!last.empty()) {
      verdict.detail = verdict.detail.empty() ? last : absl::StrCat(verdict.detail, "\n", last);
    }
    return verdict;
  };

  const absl::Time setup = absl::Now() + kConnectTimeout;
  QmpClient& qmp = qemu.qmp();
  if (!config.capabilities.empty()) {
    nlohmann::json caps = nlohmann::json::array();
    for (const std::string& cap : config.capabilities) {
      caps.push_back({{"capability", cap}, {"state", true}});
    }
    std::optional<nlohmann::json> reply =
        qmp.Command("migrate-set-capabilities", {{"capabilities", caps}}, setup);
    if (!reply || reply->contains("error")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrate-set-capabilities: ", reply ? reply->dump() : "no reply", "\n", qemu.LogTail(4)));
    }
  }
  if (!config.parameters.empty()) {
    std::optional<nlohmann::json> reply =
        qmp.Command("migrate-set-parameters", config.parameters, setup);
    if (!reply || reply->contains("error")) {
      return absl::FailedPreconditionError(
          absl::StrCat("migrate-set-parameters: ", reply ? reply->dump() : "no reply"));
    }
  }
  std::optional<nlohmann::json> incoming =
      qmp.Command("migrate-incoming", {{"uri", IncomingUri(config, stream)}}, setup);
  if (!incoming || incoming->contains("error")) {
    return absl::FailedPreconditionError(
        absl::StrCat("migrate-incoming: ", incoming ? incoming->dump() : "no reply"));
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<nlohmann::json> reply =
        qmp.Command("query-migrate", nullptr, deadline + absl::Seconds(5));
    // The monitor went away: QEMU exited (7.2 exits after a failed load) or died.
    if (!reply) return finish("failed", "", false);
    std::string status;
    const nlohmann::json& answer = (*reply)["return"];
    if (answer.is_object() && answer.contains("status") && answer["status"].is_string()) {
      status = answer["status"].get<std::string>();
    }
    if (status == "completed") {
      qmp.Command("quit", nullptr, absl::Now() + absl::Seconds(5));
      return finish("completed", "", false);
    }
    if (status == "failed") return finish("failed", "", false);
    if (status == "postcopy-paused") {
      // QEMU's answer to a postcopy stream that breaks after RUN: it keeps
      // the guest and waits for the source to resume.
      return finish("paused", "postcopy paused, waiting for the source to resume", true);
    }
    if (absl::Now() > deadline) {
      return finish("timeout",
                    absl::StrCat("still loading after ", absl::FormatDuration(timeout), "; killed"),
                    true);
    }
    absl::SleepFor(kPollInterval);
  }
}

std::optional<std::string> DeviceTheDestinationLacks(const QemuVerdict& qemu,
                                                     const StreamFacts& facts) {
  // 7.2: "Unknown savevm section or instance 'NAME' N"; 10.0 and later:
  // "Unknown section or instance 'NAME' N".
  static const std::regex kUnknown("Unknown (?:savevm )?section or instance '([^']+)'");
  std::smatch match;
  if (qemu.loaded() || !std::regex_search(qemu.detail, match, kUnknown)) return std::nullopt;
  const std::string name = match[1].str();
  if (facts.section_names.count(name) == 0) return std::nullopt;
  return name;
}

std::optional<std::pair<std::string, std::string>> MachineTheDestinationRefuses(
    const QemuVerdict& qemu) {
  // Every release's configuration post-load: "Machine type received is 'S'
  // and local is 'D'".
  static const std::regex kMachine("Machine type received is '([^']*)' and local is '([^']*)'");
  std::smatch match;
  if (qemu.loaded() || !std::regex_search(qemu.detail, match, kMachine)) return std::nullopt;
  if (match[1].str() == match[2].str()) return std::nullopt;
  return std::make_pair(match[1].str(), match[2].str());
}

VerdictComparison CompareVerdicts(const ParseResult& result, const QemuVerdict& qemu) {
  VerdictComparison out;
  std::vector<std::string> lax;  // errors QEMU loads anyway
  bool strict_only = true;       // every qmig error is one QEMU accepts
  const Finding* first_error = nullptr;
  for (const Finding& finding : result.findings.findings()) {
    if (finding.severity != Severity::kError) continue;
    if (first_error == nullptr) first_error = &finding;
    if (finding.qemu_accepts) {
      lax.push_back(std::string(DescribeFinding(finding.code).name));
    } else {
      strict_only = false;
    }
  }
  const auto machines = MachineTheDestinationRefuses(qemu);
  if (result.valid() && qemu.loaded() && !qemu.misbehaved()) {
    out.relation = "agree: both accept";
  } else if (result.valid() && machines && !qemu.misbehaved()) {
    // A stream's machine name is a fact about its source, not a defect: the
    // destination was started as another machine.
    out.relation = absl::StrCat("the destination's configuration: QEMU runs machine '",
                                EscapeName(machines->second), "' and the stream is for '",
                                EscapeName(machines->first),
                                "'; a destination of that machine would have to load it");
  } else if (!result.valid() && !qemu.loaded() && !qemu.misbehaved()) {
    // The same cause: a name both quote, or QEMU's words for that kind of
    // finding. QEMU saying nothing leaves qmig's cause standing.
    const std::string code(first_error != nullptr ? DescribeFinding(first_error->code).name : "");
    std::set<std::string> ours;
    if (first_error != nullptr) ours = Subjects(first_error->path);
    std::set<std::string> theirs = Subjects(qemu.detail);
    bool same = theirs.empty() && !absl::StrContains(qemu.detail, "error");
    for (const std::string& name : ours) same |= theirs.count(name) > 0;
    for (const CauseWords& cause : Causes()) {
      if (!absl::StartsWith(code, cause.code_prefix)) continue;
      for (absl::string_view word : cause.words) same |= absl::StrContains(qemu.detail, word);
    }
    if (same) {
      out.relation = "agree: both reject";
    } else {
      out.relation = absl::StrCat("both reject, for different reasons: qmig's first error is ",
                                  code, " at ", first_error != nullptr ? first_error->path : "");
      out.explained = false;
    }
  } else if (!result.valid() && qemu.loaded() && strict_only) {
    out.relation =
        absl::StrCat("QEMU is lax: it loads the stream despite ", absl::StrJoin(lax, ", "));
  } else if (qemu.misbehaved() && !result.valid()) {
    out.relation = absl::StrCat("QEMU is wrong: it ", qemu.status, " on a stream qmig rejects");
  } else if (qemu.misbehaved()) {
    out.relation = absl::StrCat("QEMU ", qemu.status, " on a stream qmig accepts");
    out.explained = false;
  } else {
    out.relation = result.valid() ? "DISAGREE: QEMU rejects a stream qmig accepts"
                                  : "DISAGREE: QEMU loads a stream qmig rejects for reasons QEMU "
                                    "should share";
    out.explained = false;
  }
  return out;
}

}  // namespace qmig
