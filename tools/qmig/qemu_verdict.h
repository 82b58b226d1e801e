// What a real QEMU destination says of a stream file, and how that relates
// to qmig's verdict: the destination's configuration (from the stream, or
// from a corpus .meta.json), one load under a deadline, and the comparison
// of verdicts and of their causes.
#ifndef QMIG_TOOLS_QMIG_QEMU_VERDICT_H_
#define QMIG_TOOLS_QMIG_QEMU_VERDICT_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "parser/stream_parser.h"

namespace qmig {

// What a stream shows beyond its summary that a destination must match.
struct StreamFacts {
  std::set<std::string> section_names;  // idstrs of START and FULL sections (bounded)
  bool trailer = false;
  bool ram_postcopy_advised = false;  // a POSTCOPY_ADVISE with its 16-byte RAM payload
};
// A StreamObserver that gathers StreamFacts.
class StreamFactsObserver final : public StreamObserver {
 public:
  void OnSection(uint8_t type, uint32_t section_id, absl::string_view idstr, uint32_t instance_id,
                 uint32_t version, uint64_t offset) override;
  void OnCommand(CommandKind kind, uint64_t offset, absl::Span<const uint8_t> payload) override;
  void OnTrailer(uint64_t offset, absl::string_view json) override { facts_.trailer = true; }
  const StreamFacts& facts() const { return facts_; }

 private:
  StreamFacts facts_;
};

struct DestinationConfig {
  std::vector<std::string> args;  // QEMU's arguments; $DIR files already written
  std::vector<std::string> capabilities;
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<std::string> notes;  // what was inferred, for people
};

// A destination for the stream, from what it shows: the machine (or, when
// the stream has no CONFIGURATION, the one its device set and framing
// imply), RAM blocks and their sizes (firmware files of the size the stream
// says are written into `dir`), the capabilities its records need. Fails
// when the machine cannot be told.
absl::StatusOr<DestinationConfig> ConfigFromStream(const ParseResult& result,
                                                   const StreamFacts& facts,
                                                   const std::string& machine,
                                                   const std::string& dir);
// A destination from a corpus .meta.json (dest_args, dest_capabilities,
// dest_parameters, aux_files written into `dir`).
absl::StatusOr<DestinationConfig> ConfigFromMeta(const std::string& path, const std::string& dir);

struct QemuVerdict {
  // completed, failed, paused, timeout, crashed, crashed at exit, hung at exit
  std::string status;
  std::string detail;  // QEMU's last words, or what went wrong
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string command_line;
  bool loaded() const;
  bool misbehaved() const;
};

// Loads `stream` (a file) into `binary` configured as `config`, through
// `migrate-incoming exec:cat`. A non-OK status: QEMU could not be run.
absl::StatusOr<QemuVerdict> LoadIntoQemu(const std::string& binary, const DestinationConfig& config,
                                         const std::string& stream, const std::string& dir,
                                         absl::Duration timeout);

// A device the stream carries that the destination turned out not to have
// ("Unknown savevm section or instance 'X'"): one a stream alone does not say
// how to add, so a destination configured from the stream cannot judge it.
std::optional<std::string> DeviceTheDestinationLacks(const QemuVerdict& qemu,
                                                     const StreamFacts& facts);

// The machines of a destination that refused the stream's configuration
// ("Machine type received is 'S' and local is 'D'"): {S, D}, when they differ.
std::optional<std::pair<std::string, std::string>> MachineTheDestinationRefuses(
    const QemuVerdict& qemu);

struct VerdictComparison {
  std::string relation;   // for people: "agree: both reject", ...
  bool explained = true;  // agree, or differ where qmig says why
};

// How the two verdicts relate. "Both reject" is an agreement only when QEMU's
// error and qmig's first error concern the same section, block or part of
// the stream; otherwise they reject for different reasons.
VerdictComparison CompareVerdicts(const ParseResult& result, const QemuVerdict& qemu);

}  // namespace qmig

#endif  // QMIG_TOOLS_QMIG_QEMU_VERDICT_H_
