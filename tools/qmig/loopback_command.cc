// qmig loopback [--image=FILE | --ram_mib=N] [--inject=FAULT] [--guest=PATTERN]
// [--precopy] [--tcp]: migrates a guest image from the synthetic source into
// the loopback destination and compares the memory at the end.
#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "emulator/loopback.h"
#include "nlohmann/json.hpp"
#include "parser/wire/limits.h"
#include "parser/wire/plural.h"
#include "tools/qmig/commands.h"
#include "tools/qmig/report.h"

namespace qmig {

int RunLoopbackCommand(const std::vector<std::string>& operands,
                       const LoopbackCommandOptions& options) {
  if (!operands.empty()) return UsageError("loopback", "takes no operands (use --image=FILE)");
  LoopbackOptions loopback;
  absl::StatusOr<ParseSetup> parse = MakeParseOptions(options.stream);
  absl::StatusOr<GuestPattern> guest = ParseGuestPattern(options.guest);
  absl::StatusOr<SourceFault> fault = ParseSourceFault(options.inject);
  for (const absl::Status& status : {parse.status(), guest.status(), fault.status()}) {
    if (!status.ok()) return UsageError("loopback", status.message());
  }
  loopback.destination.parse = parse->parse;
  loopback.destination.guest = *guest;
  loopback.source.fault = *fault;
  loopback.source.postcopy = !options.precopy;
  loopback.transport = options.tcp ? Transport::kTcpLoopback : Transport::kSocketPair;
  GuestImage image;
  if (!options.image.empty()) {
    absl::StatusOr<GuestImage> loaded = GuestImage::FromFile(options.image, kMaxLoopbackImage);
    if (!loaded.ok()) return InputError("loopback", loaded.status().message());
    image = std::move(*loaded);
  } else {
    if (options.ram_mib == 0 || options.ram_mib > (kMaxLoopbackImage >> 20)) {
      return UsageError("loopback", absl::StrCat("--ram-mib must be 1..", kMaxLoopbackImage >> 20));
    }
    image = GuestImage::Synthetic(options.ram_mib << 20);
  }
  absl::StatusOr<LoopbackResult> result = RunLoopback(image, loopback);
  if (!result.ok()) return InputError("loopback", result.status().message());
  const FindingList& findings = result->report.parse.findings;
  const DestinationStats& stats = result->report.stats;
  bool valid = findings.error_count() == 0;
  if (options.output.json) {
    nlohmann::json out = {
        {"kind", "loopback"},
        {"fault", std::string(SourceFaultName(*fault))},
        {"valid", valid},
        {"errors", findings.error_count()},
        {"warnings", findings.warning_count()},
        {"differing_pages", result->differing_pages},
        {"source",
         {{"bytes_sent", result->source.bytes_sent},
          {"pages_sent", result->source.pages_sent},
          {"requests_received", result->source.requests_received},
          {"requested_pages_sent", result->source.requested_pages_sent},
          {"pongs", result->source.pongs},
          {"shut_status", result->source.shut_status}}},
        {"emulator",
         {{"precopy_pages", stats.precopy_pages},
          {"postcopy_pages", stats.postcopy_pages},
          {"faults", stats.faults},
          {"page_requests", stats.page_requests},
          {"requests_served", stats.requests_served},
          {"guest_touches", stats.guest_touches},
          {"fault_latency_us_p50", Percentile(stats.fault_latency_us, 0.5)},
          {"fault_latency_us_p99", Percentile(stats.fault_latency_us, 0.99)}}},
        {"summary", SummaryToJson(result->report.parse.summary)},
        {"findings", FindingsToJson(findings)},
    };
    std::cout << JsonDocument(out);
  } else {
    if (!options.output.quiet) {
      std::cout << absl::StrFormat(
          "migrated  %d MiB guest, %s over %s, fault injected: %s\n",
          image.blocks.empty() ? 0 : image.blocks.front().bytes.size() >> 20,
          options.precopy ? "precopy" : "precopy then postcopy",
          options.tcp ? "loopback TCP" : "a socket pair", SourceFaultName(*fault));
      std::cout << absl::StrFormat(
          "source    %d bytes, %d pages, %d requests received, %d pages sent on request\n",
          result->source.bytes_sent, result->source.pages_sent, result->source.requests_received,
          result->source.requested_pages_sent);
      std::cout << absl::StrFormat(
          "dest      %d precopy + %d postcopy pages, %d faults, %d requests, %d served "
          "(latency p50 %.0f us, p99 %.0f us), %d guest touches\n",
          stats.precopy_pages, stats.postcopy_pages, stats.faults, stats.page_requests,
          stats.requests_served, Percentile(stats.fault_latency_us, 0.5),
          Percentile(stats.fault_latency_us, 0.99), stats.guest_touches);
      std::cout << "memory    "
                << (result->differing_pages == 0
                        ? std::string("identical to the source's")
                        : absl::StrCat(Counted(result->differing_pages, "page"),
                                       result->differing_pages == 1 ? " differs" : " differ",
                                       " from the source's",
                                       result->differing_pages > kMaxSourceMismatchFindings
                                           ? absl::StrCat(" (the first ",
                                                          kMaxSourceMismatchFindings, " listed)")
                                           : ""))
                << "\n";
    }
    PrintFindings(findings, options.output.quiet, options.output.verbose);
  }
  return valid ? kExitValid : kExitInvalid;
}

}  // namespace qmig
