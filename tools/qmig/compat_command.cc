// qmig compat SOURCE DEST | SOURCE --qemu=VERSION|PATH [--machine=TYPE]:
// will the destination load what the source sends? Per device, and the
// machine type (parser/vmstate/compat.h holds the rules).
//
// SOURCE is a recorded stream (its START/FULL sections, read with the
// parser, and its VMDESCRIPTION trailer when it has one: the fields and
// subsections actually sent) or a source QEMU's -dump-vmstate output. DEST
// is a destination's -dump-vmstate output; or, with --qemu, the destination
// QEMU is asked: `QEMU -machine TYPE -nodefaults ... -dump-vmstate FILE`,
// where TYPE is --machine, else the source's machine. A QEMU that refuses
// the machine type is itself the answer.
//
// Exit status: 0 will load, 1 will not, 2 cannot tell, or a usage or I/O
// error.
#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/vmstate/compat.h"
#include "parser/vmstate/description.h"
#include "parser/vmstate/vmstate_dump.h"
#include "parser/wire/constants.h"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/qemu_process.h"
#include "tools/qmig/report.h"
#include "tools/qmig/temp_dir.h"

namespace qmig {
namespace {

constexpr char kCommand[] = "compat";
// Names of devices not checked that the text output lists.
constexpr size_t kListedNotChecked = 16;

// The START and FULL sections a stream opens, once each, in order; and its
// VMDESCRIPTION.
class SectionCollector final : public StreamObserver {
 public:
  struct Section {
    std::string idstr;
    uint32_t instance_id;
    uint32_t version;
    bool iterative;
  };

  void OnSection(uint8_t type, uint32_t, absl::string_view idstr, uint32_t instance_id,
                 uint32_t version, uint64_t) override {
    const bool start = type == static_cast<uint8_t>(SectionType::kStart);
    if (!start && type != static_cast<uint8_t>(SectionType::kFull)) return;
    auto key = std::make_tuple(std::string(idstr), instance_id, start);
    if (seen_.count(key) > 0) return;
    if (sections_.size() >= kMaxCompatSections) {
      ++dropped_;
      return;
    }
    seen_.insert(key);
    sections_.push_back(Section{std::string(idstr), instance_id, version, start});
  }
  void OnTrailer(uint64_t, absl::string_view json) override { trailer_ = std::string(json); }

  const std::vector<Section>& sections() const { return sections_; }
  const std::optional<std::string>& trailer() const { return trailer_; }
  uint64_t dropped() const { return dropped_; }

 private:
  std::set<std::tuple<std::string, uint32_t, bool>> seen_;
  std::vector<Section> sections_;
  std::optional<std::string> trailer_;
  uint64_t dropped_ = 0;
};

// What the source is, kept in one place: the CompatSource points into it.
struct LoadedSource {
  std::string input;
  std::optional<VmstateDump> dump;
  VmDescription description;
  CompatSource compat;
  uint64_t sections = 0;           // a stream's, including any past the limit
  std::optional<uint64_t> errors;  // qmig check's errors on a stream
  std::string first_error;
};

// Whether an input is a JSON document rather than a stream: its first byte.
absl::StatusOr<bool> IsJson(ByteSource& source) {
  absl::StatusOr<absl::Span<const uint8_t>> head = source.View(0, 1);
  if (!head.ok()) return head.status();
  return !head->empty() && (absl::ascii_isspace((*head)[0]) || (*head)[0] == '{');
}

// A -dump-vmstate document, read whole within kMaxVmstateDumpBytes.
absl::StatusOr<VmstateDump> ReadDump(ByteSource& source, const std::string& path) {
  absl::StatusOr<bool> whole = source.BufferToEnd(0, kMaxVmstateDumpBytes);
  if (!whole.ok()) return whole.status();
  if (!*whole) {
    return absl::InvalidArgumentError(absl::StrCat(EscapeName(path), " is over the limit of ",
                                                   kMaxVmstateDumpBytes,
                                                   " bytes for -dump-vmstate output"));
  }
  absl::StatusOr<absl::Span<const uint8_t>> all = source.View(0, 1);
  if (!all.ok()) return all.status();
  absl::StatusOr<VmstateDump> dump =
      ParseVmstateDump(absl::string_view(reinterpret_cast<const char*>(all->data()), all->size()));
  if (!dump.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        EscapeName(path), " is not usable -dump-vmstate output: ", dump.status().message()));
  }
  return dump;
}

absl::StatusOr<VmstateDump> ReadDumpFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(path);
  if (!input.ok()) return input.status();
  return ReadDump((*input)->source(), path);
}

absl::Status LoadSource(const std::string& path, const CompatOptions& options, LoadedSource& out) {
  out.input = path;
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(path);
  if (!input.ok()) return input.status();
  absl::StatusOr<bool> json = IsJson((*input)->source());
  if (!json.ok()) return json.status();
  if (*json) {
    absl::StatusOr<VmstateDump> dump = ReadDump((*input)->source(), path);
    if (!dump.ok()) return dump.status();
    out.dump = std::move(*dump);
    out.compat.kind = CompatSource::Kind::kDump;
    out.compat.machine = out.dump->machine();
    for (const DumpDevice& device : out.dump->devices()) {
      CompatSourceDevice d;
      d.name = device.type;
      d.version = device.vmsd.version_id;
      d.declared = &device.vmsd;
      out.compat.devices.push_back(std::move(d));
    }
    return absl::OkStatus();
  }

  const std::string kind = DetectKind((*input)->source());
  if (kind != "main") {
    return absl::InvalidArgumentError(
        absl::StrCat(EscapeName(path), " is a ", kind, " recording, not a main stream"));
  }
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return setup.status();
  SectionCollector collector;
  ParseOptions parse = setup->parse;
  parse.observer = &collector;
  ParseResult result = ParseMigrationStream((*input)->source(), parse);
  if (result.summary.headerless) {
    return absl::InvalidArgumentError(
        absl::StrCat(EscapeName(path),
                     " is a postcopy-recovery connection (no header): its first connection "
                     "holds the device state"));
  }
  // Errors some QEMU accepts still leave the outcome open: a later version
  // may refuse what 7.2 let through.
  for (const Finding& finding : result.findings.findings()) {
    if (finding.severity != Severity::kError) continue;
    out.first_error = FormatFinding(finding);
    break;
  }
  out.errors = result.findings.error_count();
  out.sections = collector.sections().size() + collector.dropped();
  out.compat.kind = CompatSource::Kind::kStream;
  out.compat.machine = result.summary.machine;
  out.compat.footers = result.summary.footers.value_or(true);
  if (collector.trailer().has_value()) {
    absl::StatusOr<VmDescription> description = ParseVmDescription(*collector.trailer());
    if (description.ok()) {
      out.description = std::move(*description);
      out.compat.described = true;
    }
  }
  for (const SectionCollector::Section& section : collector.sections()) {
    CompatSourceDevice d;
    d.name = section.idstr;
    d.instance_id = section.instance_id;
    d.version = section.version;
    d.iterative = section.iterative;
    if (out.compat.described && !section.iterative) {
      d.sent = out.description.Find(section.idstr, section.instance_id);
    }
    out.compat.devices.push_back(std::move(d));
  }
  return absl::OkStatus();
}

// A machine type QEMU can be given on its command line as it is.
bool PlainMachineName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxMachineNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

struct LoadedDestination {
  std::string input;  // a dump file, or empty
  std::string qemu;   // the binary asked, or empty
  std::string command_line;
  std::optional<VmstateDump> dump;
  CompatDestination compat;
};

// Asks the destination QEMU for its -dump-vmstate of `machine`. The file is
// made under /tmp, which the chroots of tools/qemu-versions share.
absl::Status AskQemu(const std::string& version, const std::string& machine, absl::Duration timeout,
                     LoadedDestination& out) {
  absl::StatusOr<std::string> binary = QemuBinary(version);
  if (!binary.ok()) return binary.status();
  out.qemu = *binary;
  out.compat.machine = machine;
  TempDir dir("qmig-compat", "/tmp");
  if (dir.path().empty()) return absl::InternalError("cannot create a temporary directory");
  const std::string file = dir.path() + "/vmstate.json";
  absl::StatusOr<QemuRun> run =
      RunQemuToExit(*binary,
                    {"-machine", machine, "-nodefaults", "-vga", "none", "-display", "none",
                     "-accel", "tcg", "-dump-vmstate", file},
                    dir.path(), timeout);
  if (!run.ok()) return run.status();
  out.command_line = run->command_line;
  if (run->exit.killed_by_us) {
    return absl::DeadlineExceededError(absl::StrCat("QEMU did not finish -dump-vmstate within ",
                                                    absl::FormatDuration(timeout), ": ",
                                                    run->command_line));
  }
  if (run->exit.code != 0) {
    if (absl::StrContains(run->log_tail, "unsupported machine type")) {
      out.compat.machine_missing = true;
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "QEMU failed to write -dump-vmstate: ", run->command_line, "\n", run->log_tail));
  }
  absl::StatusOr<VmstateDump> dump = ReadDumpFile(file);
  if (!dump.ok()) return dump.status();
  out.dump = std::move(*dump);
  return absl::OkStatus();
}

std::string VerdictLine(CompatStatus overall, const CompatReport& report, bool stream_errors,
                        bool dump_source) {
  switch (overall) {
    case CompatStatus::kFails: {
      const size_t n = report.Count(CompatStatus::kFails);
      const std::string devices = absl::StrCat(n, n == 1 ? " device" : " devices");
      std::string line = report.machine_status != CompatStatus::kFails
                             ? absl::StrCat("WILL NOT LOAD: ", devices)
                         : n == 0 ? std::string("WILL NOT LOAD: the machine")
                                  : absl::StrCat("WILL NOT LOAD: the machine and ", devices);
      if (dump_source && n > 0) absl::StrAppend(&line, " (when the guest has them)");
      return line;
    }
    case CompatStatus::kUnknown: {
      const size_t n = report.Count(CompatStatus::kUnknown);
      if (n == 0 && stream_errors) return "CANNOT TELL: the stream itself has errors (qmig check)";
      return absl::StrCat("CANNOT TELL: ", n, n == 1 ? " device" : " devices");
    }
    default:
      return "WILL LOAD";
  }
}

nlohmann::json ReasonsJson(const std::vector<CompatReason>& reasons) {
  nlohmann::json out = nlohmann::json::array();
  for (const CompatReason& reason : reasons) {
    out.push_back({{"code", reason.code},
                   {"status", CompatStatusName(reason.status)},
                   {"message", PrintableText(reason.message)}});
  }
  return out;
}

std::string Label(CompatStatus status) {
  switch (status) {
    case CompatStatus::kLoads:
      return "loads";
    case CompatStatus::kFails:
      return "does not load";
    case CompatStatus::kUnknown:
      return "cannot tell";
    case CompatStatus::kNotChecked:
      return "not checked";
  }
  return "";
}

std::string DeviceLine(const DeviceVerdict& device, bool dump_source) {
  std::string line =
      absl::StrCat(Label(device.status), std::string(15 - Label(device.status).size(), ' '), "'",
                   device.name, "'");
  if (!dump_source) absl::StrAppend(&line, " #", device.instance_id);
  absl::StrAppend(&line, " v", device.version);
  if (!device.vmsd_name.empty() && device.vmsd_name != device.name) {
    absl::StrAppend(&line, " (vmsd '", device.vmsd_name, "')");
  }
  std::vector<std::string> messages;
  for (const CompatReason& reason : device.reasons) messages.push_back(reason.message);
  if (!messages.empty()) absl::StrAppend(&line, ": ", absl::StrJoin(messages, "; "));
  return PrintableText(line);
}

}  // namespace

int RunCompat(const std::vector<std::string>& operands, const CompatOptions& options) {
  if (operands.empty() || operands.size() > 2) {
    return UsageError(kCommand,
                      "takes a SOURCE (a stream or -dump-vmstate output) and a DEST "
                      "(-dump-vmstate output), or a SOURCE and --qemu");
  }
  if (operands.size() == 2 && !options.qemu.empty()) {
    return UsageError(kCommand, "takes either a DEST file or --qemu, not both");
  }
  if (operands.size() == 1 && options.qemu.empty()) {
    return UsageError(kCommand, "needs a destination: a -dump-vmstate file or --qemu=VERSION|PATH");
  }
  if (!options.machine.empty() && options.qemu.empty()) {
    return UsageError(kCommand, "--machine goes with --qemu (a dump names its own machine)");
  }
  if (options.timeout_s <= 0) return UsageError(kCommand, "--timeout-s must be positive");

  LoadedSource source;
  absl::Status loaded = LoadSource(operands[0], options, source);
  if (!loaded.ok()) return InputError(kCommand, loaded.message());

  LoadedDestination destination;
  if (operands.size() == 2) {
    destination.input = operands[1];
    absl::StatusOr<VmstateDump> dump = ReadDumpFile(operands[1]);
    if (!dump.ok()) return InputError(kCommand, dump.status().message());
    destination.dump = std::move(*dump);
    destination.compat.machine = destination.dump->machine();
  } else {
    std::string machine = options.machine;
    if (machine.empty() && source.compat.machine.has_value()) machine = *source.compat.machine;
    if (machine.empty()) {
      return UsageError(kCommand, "the source names no machine type; pass --machine=TYPE");
    }
    if (!PlainMachineName(machine)) {
      return InputError(kCommand, absl::StrCat("machine type '", EscapeName(machine),
                                               "' is not one to put on QEMU's command line"));
    }
    absl::Status asked =
        AskQemu(options.qemu, machine, absl::Seconds(options.timeout_s), destination);
    if (!asked.ok()) return InputError(kCommand, asked.message());
  }
  if (destination.dump.has_value()) destination.compat.dump = &*destination.dump;

  const CompatReport report = CheckCompat(source.compat, destination.compat);
  const bool dump_source = source.compat.kind == CompatSource::Kind::kDump;
  const bool stream_errors = source.errors.value_or(0) > 0;
  CompatStatus overall = report.Overall();
  if (overall == CompatStatus::kLoads && stream_errors) overall = CompatStatus::kUnknown;
  const std::string verdict = VerdictLine(overall, report, stream_errors, dump_source);
  const int exit_code = overall == CompatStatus::kLoads   ? kExitValid
                        : overall == CompatStatus::kFails ? kExitInvalid
                                                          : kExitUsage;

  if (options.output.json) {
    auto optional_text = [](const std::optional<std::string>& text) {
      return text.has_value() ? nlohmann::json(EscapeName(*text)) : nlohmann::json();
    };
    nlohmann::json src = {
        {"input", EscapeName(source.input)},
        {"kind", dump_source ? "dump" : "stream"},
        {"machine", optional_text(source.compat.machine)},
    };
    if (dump_source) {
      src["device_types"] = source.compat.devices.size();
    } else {
      src["sections"] = source.sections;
      src["described"] = source.compat.described;
      src["footers"] = source.compat.footers;
      src["errors"] = *source.errors;
    }
    nlohmann::json dst = {
        {"input", destination.input.empty() ? nlohmann::json()
                                            : nlohmann::json(EscapeName(destination.input))},
        {"qemu", destination.qemu.empty() ? nlohmann::json()
                                          : nlohmann::json(PrintableText(destination.qemu))},
        {"command_line", destination.command_line.empty()
                             ? nlohmann::json()
                             : nlohmann::json(PrintableText(destination.command_line))},
        {"machine", destination.compat.machine.empty()
                        ? nlohmann::json()
                        : nlohmann::json(EscapeName(destination.compat.machine))},
        {"machine_missing", destination.compat.machine_missing},
        {"device_types", destination.dump.has_value()
                             ? nlohmann::json(destination.dump->devices().size())
                             : nlohmann::json()},
    };
    nlohmann::json devices = nlohmann::json::array();
    for (const DeviceVerdict& device : report.devices) {
      devices.push_back({{"name", device.name},
                         {"instance_id", device.instance_id},
                         {"version", device.version},
                         {"vmsd_name", device.vmsd_name.empty() ? nlohmann::json()
                                                                : nlohmann::json(device.vmsd_name)},
                         {"destination_types", device.destination_types},
                         {"destination_version", device.destination_version.has_value()
                                                     ? nlohmann::json(*device.destination_version)
                                                     : nlohmann::json()},
                         {"destination_minimum", device.destination_minimum.has_value()
                                                     ? nlohmann::json(*device.destination_minimum)
                                                     : nlohmann::json()},
                         {"status", CompatStatusName(device.status)},
                         {"reasons", ReasonsJson(device.reasons)}});
    }
    nlohmann::json out = {
        {"source", src},
        {"destination", dst},
        {"machine",
         {{"status", CompatStatusName(report.machine_status)},
          {"reasons", ReasonsJson(report.machine_reasons)}}},
        {"devices", devices},
        {"counts",
         {{"loads", report.Count(CompatStatus::kLoads)},
          {"does_not_load", report.Count(CompatStatus::kFails)},
          {"cannot_tell", report.Count(CompatStatus::kUnknown)},
          {"not_checked", report.Count(CompatStatus::kNotChecked)}}},
        {"verdict", verdict.substr(0, verdict.find(':'))},
        {"will_load", overall == CompatStatus::kLoads   ? nlohmann::json(true)
                      : overall == CompatStatus::kFails ? nlohmann::json(false)
                                                        : nlohmann::json()},
    };
    std::cout << JsonDocument(out);
    return exit_code;
  }

  if (!options.output.quiet) {
    std::cout << "source       " << EscapeName(source.input) << ": ";
    if (dump_source) {
      std::cout << "-dump-vmstate of machine '" << EscapeName(*source.compat.machine) << "', "
                << source.compat.devices.size() << " device types\n";
    } else {
      std::cout << "stream"
                << (source.compat.machine.has_value()
                        ? absl::StrCat(" of machine '", EscapeName(*source.compat.machine), "'")
                        : " naming no machine")
                << ", " << Counted(source.sections, "section") << ", "
                << (source.compat.described ? "with" : "without") << " VMDESCRIPTION ("
                << (source.compat.described ? "fields and subsections sent "
                                              "are checked"
                                            : "only versions are checked")
                << ")\n";
      if (stream_errors) {
        std::cout << "             " << Counted(*source.errors, "error")
                  << " in the stream itself (qmig check); the first: "
                  << PrintableText(source.first_error) << "\n";
      }
    }
    std::cout << "destination  ";
    if (!destination.input.empty()) {
      std::cout << EscapeName(destination.input) << ": -dump-vmstate of machine '"
                << EscapeName(destination.compat.machine) << "', "
                << destination.dump->devices().size() << " device types\n";
    } else {
      std::cout << PrintableText(destination.command_line) << "\n             ";
      if (destination.compat.machine_missing) {
        std::cout << "QEMU has no machine '" << EscapeName(destination.compat.machine) << "'\n";
      } else {
        std::cout << destination.dump->devices().size() << " device types\n";
      }
    }
    std::vector<std::string> machine_messages;
    for (const CompatReason& reason : report.machine_reasons) {
      machine_messages.push_back(reason.message);
    }
    std::cout << "machine      " << Label(report.machine_status);
    if (report.machine_status == CompatStatus::kLoads) {
      std::cout << ": '" << EscapeName(destination.compat.machine) << "' on both sides";
    } else if (!machine_messages.empty()) {
      std::cout << ": " << PrintableText(absl::StrJoin(machine_messages, "; "));
    }
    std::cout << "\n";
  }
  std::vector<std::string> not_checked;
  for (const DeviceVerdict& device : report.devices) {
    const bool matters =
        device.status == CompatStatus::kFails || device.status == CompatStatus::kUnknown;
    if (matters || options.all) std::cout << DeviceLine(device, dump_source) << "\n";
    if (device.status == CompatStatus::kNotChecked) {
      not_checked.push_back(absl::StrCat("'", device.name, "'"));
    }
  }
  if (!options.output.quiet) {
    std::cout << (dump_source ? "types        " : "devices      ")
              << report.Count(CompatStatus::kLoads) << " load, "
              << report.Count(CompatStatus::kFails) << " do not, "
              << report.Count(CompatStatus::kUnknown) << " cannot tell, " << not_checked.size()
              << " not checked";
    if (!not_checked.empty() && !options.all) {
      const size_t shown = std::min(not_checked.size(), kListedNotChecked);
      std::cout << (destination.compat.dump != nullptr ? " (outside what -dump-vmstate describes: "
                                                       : " (")
                << PrintableText(
                       absl::StrJoin(not_checked.begin(), not_checked.begin() + shown, ", "))
                << (shown < not_checked.size() ? ", ..." : "") << ")";
    }
    std::cout << "\n";
  }
  std::cout << verdict << "\n";
  return exit_code;
}

}  // namespace qmig
