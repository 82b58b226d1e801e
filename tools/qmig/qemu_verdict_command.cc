// qmig qemu-verdict STREAM [--meta=FILE] [--machine=TYPE] [--qemu=VERSION]
// [-- QEMU ARGS...]: loads STREAM into a real QEMU destination (`-incoming
// defer`, then `migrate-incoming exec:cat STREAM`, with a timeout) and prints
// QEMU's verdict next to qmig's, with the QEMU command line it ran.
//
// The destination is configured from the stream (qemu_verdict.h) or, with
// --meta, from a corpus metadata file; arguments after "--" are added to
// QEMU's command line.
//
// Exit status: 0 when the verdicts agree, or differ only where qmig names
// why (findings QEMU accepts, or QEMU crashing or hanging); 1 when they
// differ unexplained, or both reject for different reasons; 2 when QEMU
// could not be run.
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"
#include "parser/wire/escape.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/qemu_process.h"
#include "tools/qmig/qemu_verdict.h"
#include "tools/qmig/report.h"
#include "tools/qmig/temp_dir.h"

namespace qmig {

int RunQemuVerdict(const std::vector<std::string>& operands, const QemuVerdictOptions& options) {
  const char* kCommand = "qemu-verdict";
  if (operands.empty()) {
    return UsageError(kCommand, "takes a STREAM file (then optionally -- QEMU ARGS)");
  }
  if (operands[0] == "-") return UsageError(kCommand, "needs a stream file, not stdin");
  absl::StatusOr<std::string> binary = QemuBinary(options.qemu);
  if (!binary.ok()) return InputError(kCommand, binary.status().message());
  const std::string stream = std::filesystem::absolute(operands[0]).string();
  absl::StatusOr<ParseSetup> made = MakeParseOptions(options.stream);
  if (!made.ok()) return UsageError(kCommand, made.status().message());
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(stream);
  if (!input.ok()) return InputError(kCommand, input.status().message());
  StreamFactsObserver facts;
  ParseOptions parse_options = made->parse;
  parse_options.observer = &facts;
  ParseResult result = ParseMigrationStream((*input)->source(), parse_options);

  // Streams that only load with their other connections.
  if (result.summary.headerless) {
    return InputError(kCommand, absl::StrCat(EscapeName(operands[0]),
                                             " is a postcopy-recovery connection (no header): "
                                             "QEMU loads it only as the resumption of a paused "
                                             "incoming migration, not from a file"));
  }
  // A QEMU in a chroot of tools/qemu-versions sees /tmp only: its files,
  // and the stream it reads, go there.
  const bool sees_only_tmp = QemuSeesOnlyTmp(*binary);
  TempDir dir("qmig-verdict", sees_only_tmp ? "/tmp" : nullptr);
  if (dir.path().empty()) return InputError(kCommand, "cannot create a temporary directory");
  std::string stream_for_qemu = stream;
  if (sees_only_tmp && stream.rfind("/tmp/", 0) != 0) {
    stream_for_qemu = dir.path() + "/stream.mig";
    std::error_code error;
    std::filesystem::copy_file(stream, stream_for_qemu, error);
    if (error) {
      return InputError(kCommand, absl::StrCat("cannot copy the stream to ", stream_for_qemu,
                                               " for QEMU's chroot: ", error.message()));
    }
  }
  absl::StatusOr<DestinationConfig> config =
      options.meta.empty() ? ConfigFromStream(result, facts.facts(), options.machine, dir.path())
                           : ConfigFromMeta(options.meta, dir.path());
  if (!config.ok()) return InputError(kCommand, config.status().message());
  config->args.insert(config->args.end(), operands.begin() + 1, operands.end());
  auto has_capability = [&](absl::string_view name) {
    return std::find(config->capabilities.begin(), config->capabilities.end(), name) !=
           config->capabilities.end();
  };
  // With mapped-ram, multifd channels write into the one file, and the
  // destination reads them all from it.
  if (has_capability("postcopy-preempt")) {
    return InputError(kCommand,
                      "a postcopy-preempt destination needs a second channel, which a file "
                      "cannot bring (QEMU asks for a multi-channel URI); check the main stream "
                      "and its preempt channel with qmig check --kind=preempt");
  }
  if (has_capability("multifd") && !has_capability("mapped-ram")) {
    return InputError(kCommand,
                      "a multifd destination waits for its channels, which a file cannot bring; "
                      "check the main stream and its channels with qmig check");
  }

  absl::StatusOr<QemuVerdict> loaded =
      LoadIntoQemu(*binary, *config, stream_for_qemu, dir.path(), absl::Seconds(options.timeout_s));
  if (!loaded.ok()) return InputError(kCommand, loaded.status().message());
  const QemuVerdict& qemu = *loaded;
  if (options.meta.empty()) {
    if (std::optional<std::string> lacking = DeviceTheDestinationLacks(qemu, facts.facts())) {
      return InputError(kCommand,
                        absl::StrCat("cannot tell: the destination configured from the stream "
                                     "has no device '",
                                     EscapeName(*lacking),
                                     "', and the stream does not say how it was added; pass "
                                     "its -device arguments after --, or --meta. QEMU ran as: ",
                                     PrintableText(qemu.command_line)));
    }
  }
  const VerdictComparison comparison = CompareVerdicts(result, qemu);

  if (options.output.json) {
    nlohmann::json qemu_json = {{"status", qemu.status},
                                {"message", PrintableText(qemu.detail)},
                                {"command_line", PrintableText(qemu.command_line)}};
    qemu_json["exit_code"] =
        qemu.exit_code.has_value() ? nlohmann::json(*qemu.exit_code) : nlohmann::json();
    qemu_json["signal"] = qemu.signal.has_value() ? nlohmann::json(*qemu.signal) : nlohmann::json();
    nlohmann::json out = {{"input", operands[0]},
                          {"qmig",
                           {{"valid", result.valid()},
                            {"errors", result.findings.error_count()},
                            {"warnings", result.findings.warning_count()},
                            {"findings", FindingsToJson(result.findings)}}},
                          {"qemu", qemu_json},
                          {"qemu_args", config->args},
                          {"qemu_capabilities", config->capabilities},
                          {"inferred", config->notes},
                          {"relation", comparison.relation},
                          {"explained", comparison.explained}};
    std::cout << JsonDocument(out);
  } else {
    std::cout << "qemu:     " << PrintableText(qemu.command_line) << "\n";
    if (!config->capabilities.empty()) {
      std::cout << "          capabilities " << absl::StrJoin(config->capabilities, ", ") << "\n";
    }
    for (const std::string& note : config->notes) std::cout << "          " << note << "\n";
    std::cout << "qmig:     " << FormatVerdict(result.findings) << "\n";
    std::cout << "QEMU:     " << qemu.status;
    if (qemu.exit_code.has_value()) std::cout << " (exit status " << *qemu.exit_code << ")";
    if (qemu.signal.has_value()) {
      std::cout << " (signal " << *qemu.signal << ", " << strsignal(*qemu.signal) << ")";
    }
    std::cout << "\n";
    if (!qemu.detail.empty()) {
      std::cout << "  " << absl::StrReplaceAll(PrintableText(qemu.detail), {{"\\x0a", "\n  "}})
                << "\n";
    }
    std::cout << comparison.relation << "\n";
    if (!options.output.quiet) {
      for (const Finding& finding : result.findings.findings()) {
        if (finding.severity == Severity::kError) std::cout << FormatFinding(finding) << "\n";
      }
    }
  }
  return comparison.explained ? kExitValid : kExitInvalid;
}

}  // namespace qmig
