// qmig: reads, validates, replays and fuzzes QEMU live-migration streams.
// `qmig --help` lists the commands, `qmig help COMMAND` (or
// `qmig COMMAND --help`) a command's own flags.
//
// Exit status: 0 valid, 1 invalid, 2 usage or I/O error.
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/qmig/cli.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/version.h"

namespace qmig {
namespace {

// One command: its help, its flags bound to a fresh options value, and the
// function that runs it.
struct Command {
  const char* name;
  const char* operands;  // "FILE|-"
  const char* summary;   // the first line in `qmig --help`
  const char* details;   // more for `qmig help NAME`; may be empty
  // Bound after the table is written (each runner needs its own entry).
  std::function<int(const std::string& name, const std::vector<std::string>& args)> run = nullptr;
};

void PrintCommandHelp(const Command& command, const std::vector<Flag>& flags) {
  std::cout << "usage: qmig " << command.name << " [flags] " << command.operands << "\n\n"
            << command.summary << "\n";
  if (*command.details != '\0') std::cout << "\n" << command.details << "\n";
  std::cout << "\nflags:\n" << FlagsHelp(flags);
}

// Runs a command whose options are `Options` and flags come from `add_flags`.
template <typename Options>
std::function<int(const std::string&, const std::vector<std::string>&)> Runner(
    void (*add_flags)(Options*, std::vector<Flag>*),
    int (*run)(const std::vector<std::string>&, const Options&), const Command* self) {
  return [add_flags, run, self](const std::string& name, const std::vector<std::string>& args) {
    Options options;
    std::vector<Flag> flags;
    add_flags(&options, &flags);
    absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, flags);
    if (!parsed.ok()) return UsageError(name, parsed.status().message());
    if (parsed->help) {
      PrintCommandHelp(*self, flags);
      return kExitValid;
    }
    return run(parsed->operands, options);
  };
}

void CheckFlags(CheckOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->output.AddVerboseTo(flags);
  o->stream.AddTo(flags);
  flags->push_back(ValueFlag("kind", &o->kind, "KIND",
                             "what the input is: auto (from its first bytes; a postcopy preempt "
                             "channel, which has no magic, by its first page record), main, "
                             "return-path, multifd or preempt"));
  flags->push_back(ValueFlag("main", &o->main_path, "FILE",
                             "the main stream a return path or channel belongs to, for its RAM "
                             "block sizes"));
}
void DumpFlags(DumpOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->output.AddVerboseTo(flags);
  o->stream.AddTo(flags);
  flags->push_back(
      ValueFlag("format", &o->format, "FORMAT", "text, json (as --json) or analyze-migration"));
}
void DescFlags(DescOptions* o, std::vector<Flag>* flags) {
  flags->push_back(ValueFlag("schema", &o->schema_path, "FILE",
                             "show this description instead of the stream's trailer"));
}
void ExtractFlags(ExtractOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags, /*with_json=*/false);
  o->stream.AddTo(flags);
}
void DiffFlags(DiffOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->stream.AddTo(flags);
}
void ReportFlags(ReportOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags, /*with_json=*/false);
  o->stream.AddTo(flags);
  flags->push_back(ValueFlag("o", &o->output_path, "OUT.html", "the page to write; - for stdout"));
  flags->push_back(ValueFlag("return-path", &o->return_path, "FILE",
                             "the capture's return path: page requests against pages sent"));
}
void SchemaFlags(SchemaOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags, /*with_json=*/false);
  flags->push_back(ValueFlag("o", &o->output_path, "FILE", "write it here; - for stdout"));
}
void GuestFlag(std::string* guest, std::vector<Flag>* flags) {
  flags->push_back(ValueFlag("guest", guest, "PATTERN",
                             "guest threads after RUN: none, sequential, random, hot or "
                             "trace:FILE, with ,threads=N,touches=N,pages=N,seed=N,block=NAME"));
}
void ReplayFlags(ReplayCommandOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->output.AddVerboseTo(flags);
  o->stream.AddTo(flags);
  flags->push_back(ValueFlag("return-path", &o->return_path, "FILE",
                             "the recorded return path of the same migration, to compare with"));
  GuestFlag(&o->guest, flags);
  flags->push_back(BoolFlag("tcp", &o->tcp, "loopback TCP instead of a socket pair"));
  flags->push_back(ValueFlag("max-resident-mib", &o->max_resident_mib, "MIB",
                             "guest memory the emulator may make resident; 0: half of what the "
                             "machine has available"));
}
void LoopbackFlags(LoopbackCommandOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->output.AddVerboseTo(flags);
  o->stream.AddTo(flags);
  GuestFlag(&o->guest, flags);
  flags->push_back(BoolFlag("tcp", &o->tcp, "loopback TCP instead of a socket pair"));
  flags->push_back(ValueFlag("inject", &o->inject, "FAULT",
                             "a source fault: drop-page, double-page, discard-after-listen, "
                             "mis-size-package, forbidden-in-package, run-before-listen, "
                             "stop-mid-stream"));
  flags->push_back(ValueFlag("image", &o->image, "FILE", "a guest image to migrate"));
  flags->push_back(ValueFlag("ram-mib", &o->ram_mib, "MIB", "size of the synthetic guest"));
  flags->push_back(BoolFlag("precopy", &o->precopy, "precopy only (no postcopy)"));
}
void ListenFlags(ListenOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->output.AddVerboseTo(flags);
  o->stream.AddTo(flags);
  GuestFlag(&o->guest, flags);
  flags->push_back(ValueFlag("accept-timeout-s", &o->accept_timeout_s, "SECONDS",
                             "how long to wait for the source to connect"));
  flags->push_back(ValueFlag("stall-timeout-s", &o->stall_timeout_s, "SECONDS",
                             "silence after which the source counts as stopped"));
  flags->push_back(ValueFlag("recover-timeout-s", &o->recover_timeout_s, "SECONDS",
                             "when the connection breaks while postcopy runs, wait this long for "
                             "the source to resume (migrate ... resume=true); 0: do not wait"));
  flags->push_back(
      ValueFlag("dump-memory", &o->dump_memory, "FILE", "write the received RAM block here"));
  flags->push_back(
      ValueFlag("dump-block", &o->dump_block, "NAME", "the RAM block --dump-memory writes"));
}
void TapFlags(TapOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->stream.AddTo(flags);
  flags->push_back(ValueFlag("accept-timeout-s", &o->accept_timeout_s, "SECONDS",
                             "how long to wait for the source to connect"));
  flags->push_back(ValueFlag("record", &o->record, "PREFIX",
                             "record each connection to PREFIX.N.fwd (source to destination) and "
                             "PREFIX.N.rev (the return path)"));
}
void QemuVerdictFlags(QemuVerdictOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  o->stream.AddTo(flags);
  flags->push_back(ValueFlag("meta", &o->meta, "FILE",
                             "corpus metadata (.meta.json) whose dest_args configure QEMU"));
  flags->push_back(
      ValueFlag("machine", &o->machine, "TYPE", "the machine type, when the stream does not say"));
  flags->push_back(ValueFlag("qemu", &o->qemu, "BINARY", "the QEMU to load the stream into"));
  flags->push_back(ValueFlag("timeout-s", &o->timeout_s, "SECONDS",
                             "how long QEMU may take to load the stream"));
}

void CompatFlags(CompatOptions* o, std::vector<Flag>* flags) {
  o->output.AddTo(flags);
  flags->push_back(ValueFlag("profile", &o->stream.profile, "NAME",
                             "protocol profile of a stream SOURCE; auto detects it"));
  flags->push_back(ValueFlag("max-package", &o->stream.max_package, "BYTES",
                             "largest PACKAGED blob accepted, up to 4294967295"));
  flags->push_back(ValueFlag("qemu", &o->qemu, "VERSION|PATH",
                             "ask this destination QEMU (7.2, 10.0, 11.1 or a binary) instead of "
                             "reading a DEST file"));
  flags->push_back(ValueFlag("machine", &o->machine, "TYPE",
                             "the destination's machine type with --qemu; default: the source's"));
  flags->push_back(ValueFlag("timeout-s", &o->timeout_s, "SECONDS",
                             "how long QEMU may take to write its -dump-vmstate"));
  flags->push_back(BoolFlag("all", &o->all, "list every device, not only those that matter"));
}

std::vector<Command>& Commands();

const Command* FindCommand(const std::string& name) {
  for (const Command& command : Commands()) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

std::vector<Command>& Commands() {
  static std::vector<Command>* commands = [] {
    auto* list = new std::vector<Command>{
        {"check", "FILE|-",
         "Validate a migration stream, a return path or a multifd or preempt channel.",
         "A regular file is read whole, a pipe, socket or stdin through a bounded window.\n"
         "Every finding names its byte offset and path; docs/FINDINGS.md lists the codes."},
        {"dump", "FILE|-",
         "The whole stream as a tree: records with offsets and sizes, commands, packages,\n"
         "RAM per block, device fields.",
         ""},
        {"desc", "FILE|-", "The vmstate description in use, as analyze-migration.py -d desc.", ""},
        {"extract", "FILE|- DIR",
         "RAM blocks (sparse files), device state, configuration and description into DIR.", ""},
        {"diff", "A B",
         "What differs between two streams of one machine: RAM pages and device fields;\n"
         "exit 0 when equal, 1 when not.",
         ""},
        {"report", "FILE|- -o OUT.html",
         "One self-contained page: a map of the stream, RAM, devices, findings.", ""},
        {"schema", "STREAM|DUMP",
         "A vmstate description for --schema, from a stream's trailer or QEMU's\n"
         "-dump-vmstate output.",
         ""},
        {"replay", "STREAM",
         "Replay a captured stream into the loopback destination (a real socket and a\n"
         "userfaultfd arena).",
         ""},
        {"loopback", "",
         "Migrate a guest image from a synthetic source into the loopback destination.", ""},
        {"listen", "ADDRESS",
         "Be the destination of a real QEMU migration. ADDRESS: tcp:HOST:PORT,\n"
         "tcp:[IPV6]:PORT, tcp::PORT or unix:PATH.",
         ""},
        {"tap", "LISTEN UPSTREAM",
         "Forward a migration unchanged, validate both directions live, and record them.", ""},
        {"compat", "SOURCE DEST | SOURCE --qemu=VERSION|PATH",
         "Will a destination QEMU load it? Per device and the machine type: a stream or a\n"
         "source's -dump-vmstate against a destination's -dump-vmstate or a QEMU;\n"
         "exit 0 will load, 1 will not, 2 cannot tell.",
         "SOURCE: a recorded stream (its sections, and the fields and subsections its\n"
         "VMDESCRIPTION shows were sent) or QEMU's -dump-vmstate output. DEST: a\n"
         "destination's -dump-vmstate output; or --qemu runs the destination QEMU with\n"
         "-machine TYPE (--machine, else the source's) -dump-vmstate. Sections that\n"
         "-dump-vmstate does not describe (ram, cpu, timer, ...) are listed as not checked.\n"
         "WILL LOAD means the formats agree: device loaders may still refuse values that\n"
         "do not fit the destination's configuration (a larger virtio queue, PCI config)."},
        {"qemu-verdict", "STREAM [-- QEMU ARGS]",
         "Load STREAM into a real QEMU destination and print its verdict beside qmig's.", ""},
    };
    auto bind = [list](const char* name, auto runner) {
      for (Command& command : *list) {
        if (std::string(command.name) == name) command.run = runner(&command);
      }
    };
    bind("check", [](const Command* c) { return Runner(CheckFlags, RunCheck, c); });
    bind("dump", [](const Command* c) { return Runner(DumpFlags, RunDump, c); });
    bind("desc", [](const Command* c) { return Runner(DescFlags, RunDesc, c); });
    bind("extract", [](const Command* c) { return Runner(ExtractFlags, RunExtract, c); });
    bind("diff", [](const Command* c) { return Runner(DiffFlags, RunDiff, c); });
    bind("report", [](const Command* c) { return Runner(ReportFlags, RunReport, c); });
    bind("schema", [](const Command* c) { return Runner(SchemaFlags, RunSchema, c); });
    bind("replay", [](const Command* c) { return Runner(ReplayFlags, RunReplay, c); });
    bind("loopback", [](const Command* c) { return Runner(LoopbackFlags, RunLoopbackCommand, c); });
    bind("listen", [](const Command* c) { return Runner(ListenFlags, RunListen, c); });
    bind("tap", [](const Command* c) { return Runner(TapFlags, RunTap, c); });
    bind("compat", [](const Command* c) { return Runner(CompatFlags, RunCompat, c); });
    bind("qemu-verdict",
         [](const Command* c) { return Runner(QemuVerdictFlags, RunQemuVerdict, c); });
    return list;
  }();
  return *commands;
}

void PrintUsage(std::ostream& out) {
  out << "usage: qmig COMMAND [flags] ARGS\n\ncommands:\n";
  for (const Command& command : Commands()) {
    std::string first_line = command.summary;
    first_line = first_line.substr(0, first_line.find('\n'));
    out << "  " << command.name << std::string(14 - std::string(command.name).size(), ' ')
        << first_line << "\n";
  }
  out << "\n'qmig help COMMAND' or 'qmig COMMAND --help' shows a command's flags; "
         "'qmig --version' the build.\n"
         "Exit status: 0 valid, 1 invalid, 2 usage or I/O error.\n";
}

}  // namespace
}  // namespace qmig

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    qmig::PrintUsage(std::cerr);
    return qmig::kExitUsage;
  }
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") {
    if (first == "help" && args.size() > 1) {
      const qmig::Command* command = qmig::FindCommand(args[1]);
      if (command == nullptr) {
        return qmig::UsageError("help", absl::StrCat("no command '", args[1], "'"));
      }
      return command->run(command->name, {"--help"});
    }
    qmig::PrintUsage(std::cout);
    return qmig::kExitValid;
  }
  if (first == "--version") {
    std::cout << "qmig " << qmig::kVersion << " (" << qmig::kGitRevision << ", " << qmig::kBuildType
              << " build)\n";
    return qmig::kExitValid;
  }
  const qmig::Command* command = qmig::FindCommand(first);
  if (command == nullptr) {
    std::cerr << "qmig: unknown command '" << first << "'; see 'qmig --help'\n";
    return qmig::kExitUsage;
  }
  return command->run(command->name, std::vector<std::string>(args.begin() + 1, args.end()));
}
