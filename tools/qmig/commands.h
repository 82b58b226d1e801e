// The qmig subcommands: each has its own options and flags, and returns the
// process exit status (0 valid, 1 invalid, 2 usage or I/O error).
#ifndef QMIG_TOOLS_QMIG_COMMANDS_H_
#define QMIG_TOOLS_QMIG_COMMANDS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "parser/stream_parser.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/limits.h"
#include "tools/qmig/cli.h"

namespace qmig {

inline constexpr int kExitValid = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;

// How a stream is read: every command that parses one takes these.
struct StreamFlags {
  std::string profile = "auto";
  std::string schema_path;
  uint64_t max_package = kOriginalPackageLimit;
  void AddTo(std::vector<Flag>* flags);
};

// Output: most commands take --json and --quiet.
struct OutputFlags {
  bool json = false;
  bool quiet = false;
  bool verbose = false;  // repeated warnings each on a line (text output)
  void AddTo(std::vector<Flag>* flags, bool with_json = true);
  // --verbose, for the commands that print findings as text.
  void AddVerboseTo(std::vector<Flag>* flags);
};

// ParseOptions from the stream flags (profile, limits, --schema), with the
// --schema description its `schema` points at.
struct ParseSetup {
  ParseOptions parse;
  std::shared_ptr<const VmDescription> schema;
};
absl::StatusOr<ParseSetup> MakeParseOptions(const StreamFlags& flags);

// A main stream to parse: the options from the flags and the opened input
// (a file, a pipe, or "-" for stdin). A directory, an unreadable path, or a
// return path or multifd channel (which only `check` reads) is an error
// here, before anything is parsed.
struct StreamInput {
  ParseOptions parse;
  std::shared_ptr<const VmDescription> schema;  // what parse.schema points at
  std::unique_ptr<OpenedInput> input;
};
absl::StatusOr<StreamInput> OpenStreamInput(const std::string& path, const StreamFlags& flags);
// What an input holds, from its first bytes: "main" (QEVM magic, or a
// headerless recovery connection), "multifd" or "return-path". A preempt
// channel has no magic and shows as "main".
std::string DetectKind(ByteSource& source);
// Opens an input path: "-" is stdin; a directory is refused.
absl::StatusOr<std::unique_ptr<OpenedInput>> OpenInputPath(const std::string& path);

// Writes a usage error, "qmig COMMAND: message (see 'qmig COMMAND --help')",
// and returns kExitUsage.
int UsageError(absl::string_view command, absl::string_view message);
// Writes "qmig COMMAND: message" for an input or output that cannot be used
// (missing, a directory, unreadable), and returns kExitUsage.
int InputError(absl::string_view command, absl::string_view message);

struct CheckOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string kind = "auto";
  std::string main_path;  // companion main stream of a return path or channel
};
struct DumpOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string format = "text";
};
struct DescOptions {
  std::string schema_path;
};
struct ExtractOptions {
  StreamFlags stream;
  OutputFlags output;
};
struct DiffOptions {
  StreamFlags stream;
  OutputFlags output;
};
struct ReportOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string output_path;  // -o; "-" is standard output
  std::string return_path;
};
struct SchemaOptions {
  OutputFlags output;
  std::string output_path;  // -o; "-" or empty is standard output
};
struct ReplayCommandOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string return_path;
  std::string guest = "none";
  bool tcp = false;
  uint64_t max_resident_mib = 0;  // 0: from the machine's memory
};
struct LoopbackCommandOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string guest = "none";
  bool tcp = false;
  std::string inject = "none";
  std::string image;
  uint64_t ram_mib = 16;
  bool precopy = false;
};
struct ListenOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string guest = "none";
  int64_t accept_timeout_s = 60;
  int64_t stall_timeout_s = 30;
  int64_t recover_timeout_s = 0;
  std::string dump_memory;
  std::string dump_block = "pc.ram";
};
struct TapOptions {
  StreamFlags stream;
  OutputFlags output;
  int64_t accept_timeout_s = 60;
  std::string record;
};
struct QemuVerdictOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string meta;
  std::string machine;
  std::string qemu = "qemu-system-x86_64";
  int64_t timeout_s = 30;
};

struct CompatOptions {
  StreamFlags stream;
  OutputFlags output;
  std::string qemu;     // ask this destination QEMU (7.2, 10.0, 11.1 or a path)
  std::string machine;  // the destination's machine type with --qemu
  int64_t timeout_s = 30;
  bool all = false;  // list every device, not only those that matter
};

int RunCheck(const std::vector<std::string>& operands, const CheckOptions& options);
int RunDump(const std::vector<std::string>& operands, const DumpOptions& options);
int RunDesc(const std::vector<std::string>& operands, const DescOptions& options);
int RunExtract(const std::vector<std::string>& operands, const ExtractOptions& options);
int RunDiff(const std::vector<std::string>& operands, const DiffOptions& options);
int RunReport(const std::vector<std::string>& operands, const ReportOptions& options);
int RunSchema(const std::vector<std::string>& operands, const SchemaOptions& options);
int RunReplay(const std::vector<std::string>& operands, const ReplayCommandOptions& options);
int RunLoopbackCommand(const std::vector<std::string>& operands,
                       const LoopbackCommandOptions& options);
int RunListen(const std::vector<std::string>& operands, const ListenOptions& options);
int RunTap(const std::vector<std::string>& operands, const TapOptions& options);
int RunCompat(const std::vector<std::string>& operands, const CompatOptions& options);
int RunQemuVerdict(const std::vector<std::string>& operands, const QemuVerdictOptions& options);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_COMMANDS_H_
