// qmig replay STREAM [--return_path=FILE] [--guest=PATTERN] [--tcp]: replays
// a captured stream into the loopback destination over a real socket.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "absl/flags/declare.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "emulator/replay.h"
#include "nlohmann/json.hpp"
#include "parser/wire/byte_source.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {
namespace {

nlohmann::json StatsToJson(const DestinationStats& s) {
  return {{"precopy_pages", s.precopy_pages},
          {"postcopy_pages", s.postcopy_pages},
          {"zero_pages", s.zero_pages},
          {"discarded_pages", s.discarded_pages},
          {"faults", s.faults},
          {"page_requests", s.page_requests},
          {"requests_served", s.requests_served},
          {"pongs", s.pongs},
          {"guest_touches", s.guest_touches},
          {"eagain_retries", s.eagain_retries},
          {"fault_latency_us_p50", Percentile(s.fault_latency_us, 0.5)},
          {"fault_latency_us_p99", Percentile(s.fault_latency_us, 0.99)},
          {"postcopy", s.postcopy},
          {"userfaultfd", s.userfaultfd}};
}

}  // namespace

int RunReplay(const std::vector<std::string>& operands, const ReplayCommandOptions& options) {
  if (operands.size() != 1) return UsageError("replay", "takes one STREAM (or - for stdin)");
  ReplayOptions replay;
  absl::StatusOr<ParseSetup> parse = MakeParseOptions(options.stream);
  if (!parse.ok()) return UsageError("replay", parse.status().message());
  replay.destination.parse = parse->parse;
  absl::StatusOr<GuestPattern> guest = ParseGuestPattern(options.guest);
  if (!guest.ok()) return UsageError("replay", guest.status().message());
  replay.destination.guest = *guest;
  if (options.max_resident_mib > (UINT64_MAX >> 20)) {
    return UsageError(
        "replay", absl::StrCat("--max-resident-mib ", options.max_resident_mib, " is too large"));
  }
  // 0: the destination's default, from the machine's available memory.
  replay.destination.max_resident_bytes = options.max_resident_mib << 20;
  replay.transport = options.tcp ? Transport::kTcpLoopback : Transport::kSocketPair;
  if (!options.return_path.empty()) {
    std::ifstream in(options.return_path, std::ios::binary);
    if (!in) return InputError("replay", absl::StrCat("cannot open ", options.return_path));
    replay.recorded_return_path =
        std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenInputPath(operands[0]);
  if (!input.ok()) return InputError("replay", input.status().message());
  absl::StatusOr<ReplayResult> result = ReplayStream((*input)->source(), replay);
  if (!result.ok()) {
    std::cerr << "qmig: " << result.status().message() << "\n";
    return kExitUsage;
  }
  const FindingList& findings = result->report.parse.findings;
  const DestinationStats& stats = result->report.stats;
  bool valid = findings.error_count() == 0;
  if (options.output.json) {
    nlohmann::json out = {
        {"input", operands[0]},
        {"kind", "replay"},
        {"valid", valid},
        {"errors", findings.error_count()},
        {"warnings", findings.warning_count()},
        {"findings_dropped", findings.dropped()},
        {"summary", SummaryToJson(result->report.parse.summary)},
        {"emulator", StatsToJson(stats)},
        {"return_path",
         {{"messages", result->return_path.summary.messages},
          {"pongs", result->return_path.summary.pongs},
          {"page_requests", result->return_path.summary.page_requests}}},
        {"findings", FindingsToJson(findings)},
    };
    std::cout << JsonDocument(out);
  } else {
    if (!options.output.quiet) {
      const StreamSummary& s = result->report.parse.summary;
      std::cout << absl::StrFormat(
          "replayed  %s: %d bytes over %s, machine %s, postcopy state %s\n", operands[0],
          result->bytes_sent, options.tcp ? "loopback TCP" : "a socket pair",
          s.machine.value_or("?"), PostcopyStateName(s.postcopy));
      std::cout << absl::StrFormat("pages     %d precopy, %d postcopy (%d zero), %d discarded\n",
                                   stats.precopy_pages, stats.postcopy_pages, stats.zero_pages,
                                   stats.discarded_pages);
      if (stats.postcopy) {
        std::cout << absl::StrFormat(
            "faults    %d faults, %d page requests, %d served, latency p50 %.0f us p99 %.0f us "
            "(userfaultfd via %s)\n",
            stats.faults, stats.page_requests, stats.requests_served,
            Percentile(stats.fault_latency_us, 0.5), Percentile(stats.fault_latency_us, 0.99),
            stats.userfaultfd);
        std::cout << absl::StrFormat("guest     %d touches\n", stats.guest_touches);
      }
      std::string pongs;
      for (uint32_t pong : result->return_path.summary.pongs) absl::StrAppend(&pongs, " ", pong);
      std::cout << "return    " << result->return_path.summary.messages.size() << " message kinds,"
                << " PONGs:" << (pongs.empty() ? " none" : pongs)
                << (result->return_path.summary.shut_status.has_value()
                        ? absl::StrCat(", SHUT ", *result->return_path.summary.shut_status)
                        : "")
                << "\n";
    }
    PrintFindings(findings, options.output.quiet, options.output.verbose);
  }
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
