// qmig: reads, validates, replays and fuzzes QEMU live-migration streams.
//
//   qmig check [--json] [--profile=NAME] [--schema=FILE] FILE|-
//   qmig dump [--json|--format=analyze-migration] FILE|-
//   qmig desc FILE
//   qmig extract FILE|- DIR
//   qmig diff A B
//   qmig report FILE [--return_path=RP] -o OUT.html
//   qmig qemu-verdict STREAM [--meta=FILE] [-- QEMU ARGS]
//   qmig schema STREAM|DUMP [-o FILE]
//   qmig replay STREAM [--return_path=FILE] [--guest=PATTERN] [--tcp]
//   qmig loopback [--image=FILE|--ram_mib=N] [--inject=FAULT] [--guest=PATTERN]
//
// Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "tools/qmig/commands.h"

ABSL_FLAG(bool, json, false, "print machine-readable JSON (schema: docs/JSON.md)");
ABSL_FLAG(std::string, profile, "auto",
          "protocol profile: auto, qemu-7.2, upstream, qemu-3.0 or v5-draft");
ABSL_FLAG(std::string, schema, "",
          "vmstate description to decode device sections with: a VMDESCRIPTION JSON");
ABSL_FLAG(std::string, kind, "auto",
          "what the input is: auto, main, return-path, multifd or preempt (a postcopy "
          "preempt channel, which has no magic to detect it by)");
ABSL_FLAG(std::string, main, "",
          "the main stream a return path or multifd channel belongs to (for block sizes)");
ABSL_FLAG(uint64_t, max_package, qmig::kOriginalPackageLimit,
          "largest PACKAGED blob accepted, in bytes (up to 4294967295)");
ABSL_FLAG(bool, quiet, false,
          "print only errors and the verdict line; no progress on stderr");
ABSL_FLAG(std::string, format, "text", "dump: text, json or analyze-migration");
ABSL_FLAG(std::string, meta, "",
          "qemu-verdict: corpus metadata (.meta.json) whose dest_args configure QEMU");
ABSL_FLAG(std::string, machine, "", "qemu-verdict: machine type (default: the stream's)");
ABSL_FLAG(std::string, qemu, "qemu-system-x86_64", "qemu-verdict: the QEMU binary");
ABSL_FLAG(int64_t, timeout_s, 30, "qemu-verdict: seconds QEMU may take to load the stream");
ABSL_FLAG(std::string, o, "", "output file (schema)");
ABSL_FLAG(std::string, return_path, "",
          "replay: the recorded return path of the same migration, to compare with");
ABSL_FLAG(std::string, guest, "none",
          "replay: guest threads after RUN: none, sequential, random, hot or trace:FILE, "
          "with ,threads=N,touches=N,pages=N,seed=N,block=NAME");
ABSL_FLAG(bool, tcp, false, "replay/loopback over loopback TCP instead of a socket pair");
ABSL_FLAG(std::string, inject, "none",
          "loopback: a source fault: drop-page, double-page, discard-after-listen, "
          "mis-size-package, forbidden-in-package, run-before-listen, stop-mid-stream");
ABSL_FLAG(std::string, image, "", "loopback: a guest image file to migrate");
ABSL_FLAG(uint64_t, ram_mib, 16, "loopback: size of the synthetic guest, in MiB");
ABSL_FLAG(bool, precopy, false, "loopback: precopy only (no postcopy)");
ABSL_FLAG(std::string, dump_memory, "", "listen: write the received RAM block to this file");
ABSL_FLAG(std::string, dump_block, "pc.ram", "listen: the RAM block --dump_memory writes");
ABSL_FLAG(std::string, record, "",
          "tap: record each connection to PREFIX.N.fwd (source to destination) and "
          "PREFIX.N.rev (the return path)");
ABSL_FLAG(int64_t, accept_timeout_s, 60, "listen: seconds to wait for the source to connect");
ABSL_FLAG(int64_t, recover_timeout_s, 0,
          "listen: when the main connection breaks while postcopy runs, wait this many "
          "seconds for the source to resume on the same address (migrate ... resume=true); "
          "0: do not wait");
ABSL_FLAG(int64_t, stall_timeout_s, 30,
          "listen/replay: seconds of silence after which the source counts as stopped");
ABSL_FLAG(uint64_t, max_resident_mib, 0,
          "replay: guest RAM the destination may make resident, in MiB (0: half of this "
          "machine's available memory, within 256 MiB..16 GiB)");

namespace {

constexpr char kUsage[] =
    "qmig COMMAND [flags] ARGS\n"
    "\n"
    "commands:\n"
    "  check FILE|-     validate a migration stream (main channel, return path or\n"
    "                   multifd channel); exit 0 valid, 1 invalid, 2 usage/I/O error\n"
    "  dump FILE|-      the whole stream as a tree: header, configuration, sections\n"
    "                   with offsets and sizes, commands, packages, RAM per block,\n"
    "                   device fields; --json, or --format=analyze-migration\n"
    "  desc FILE        the vmstate description in use (trailer or --schema)\n"
    "  extract FILE|- DIR  RAM blocks (sparse files), device state, configuration\n"
    "  diff A B         what differs between two streams of one machine: RAM pages\n"
    "                   and device fields; exit 0 equal, 1 different\n"
    "  report FILE -o OUT.html  one self-contained page: stream map, RAM, devices,\n"
    "                   findings, postcopy timeline (--return_path=RP)\n"
    "  qemu-verdict STREAM [-- QEMU ARGS]  load STREAM into a real QEMU destination\n"
    "                   and print its verdict next to qmig's (--meta=FILE configures it)\n"
    "  schema STREAM    write the stream's vmstate description (VMDESCRIPTION JSON),\n"
    "                   for --schema; -o FILE writes it to FILE\n"
    "  replay STREAM    replay a captured stream into the loopback destination (real\n"
    "                   socket, userfaultfd arena); --return_path=FILE compares with\n"
    "                   a recorded return path, --guest=PATTERN runs guest threads\n"
    "  loopback         migrate a guest image from a synthetic source into the\n"
    "                   loopback destination; --inject=FAULT makes the source misbehave\n"
    "  listen tcp:HOST:PORT  be the destination of a real QEMU migration\n"
    "  tap tcp:LISTEN tcp:UPSTREAM  forward a migration unchanged, validate both\n"
    "                   directions live, --record=PREFIX records them\n"
    "\n"
    "Run 'qmig --help' for the flags.";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::cerr << kUsage << "\n";
    return qmig::kExitUsage;
  }
  std::string command = args[1];
  std::vector<std::string> operands(args.begin() + 2, args.end());

  qmig::CommonOptions options;
  options.json = absl::GetFlag(FLAGS_json);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  options.profile = absl::GetFlag(FLAGS_profile);
  options.schema_path = absl::GetFlag(FLAGS_schema);
  options.kind = absl::GetFlag(FLAGS_kind);
  options.max_package = absl::GetFlag(FLAGS_max_package);
  options.main_path = absl::GetFlag(FLAGS_main);
  options.output_path = absl::GetFlag(FLAGS_o);
  options.return_path = absl::GetFlag(FLAGS_return_path);
  options.guest = absl::GetFlag(FLAGS_guest);
  options.tcp = absl::GetFlag(FLAGS_tcp);
  options.inject = absl::GetFlag(FLAGS_inject);
  options.image = absl::GetFlag(FLAGS_image);
  options.ram_mib = absl::GetFlag(FLAGS_ram_mib);
  options.precopy = absl::GetFlag(FLAGS_precopy);
  options.dump_memory = absl::GetFlag(FLAGS_dump_memory);
  options.dump_block = absl::GetFlag(FLAGS_dump_block);
  options.accept_timeout_s = absl::GetFlag(FLAGS_accept_timeout_s);
  options.stall_timeout_s = absl::GetFlag(FLAGS_stall_timeout_s);
  options.recover_timeout_s = absl::GetFlag(FLAGS_recover_timeout_s);
  options.record = absl::GetFlag(FLAGS_record);
  options.format = absl::GetFlag(FLAGS_format);
  options.meta = absl::GetFlag(FLAGS_meta);
  options.machine = absl::GetFlag(FLAGS_machine);
  options.qemu = absl::GetFlag(FLAGS_qemu);
  options.timeout_s = absl::GetFlag(FLAGS_timeout_s);

  if (command == "check") return qmig::RunCheck(operands, options);
  if (command == "schema") return qmig::RunSchema(operands, options);
  if (command == "replay") return qmig::RunReplay(operands, options);
  if (command == "loopback") return qmig::RunLoopbackCommand(operands, options);
  if (command == "listen") return qmig::RunListen(operands, options);
  if (command == "tap") return qmig::RunTap(operands, options);
  if (command == "dump") return qmig::RunDump(operands, options);
  if (command == "desc") return qmig::RunDesc(operands, options);
  if (command == "extract") return qmig::RunExtract(operands, options);
  if (command == "diff") return qmig::RunDiff(operands, options);
  if (command == "report") return qmig::RunReport(operands, options);
  if (command == "qemu-verdict") return qmig::RunQemuVerdict(operands, options);
  std::cerr << "qmig: unknown command '" << command << "'\n" << kUsage << "\n";
  return qmig::kExitUsage;
}
