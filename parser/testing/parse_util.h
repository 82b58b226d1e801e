// Test helpers around ParseMigrationStream: parse bytes from memory or
// through a pipe (FdSource, as for stdin), and print findings so that a
// failing expectation shows everything the parser said.
#ifndef QMIG_PARSER_TESTING_PARSE_UTIL_H_
#define QMIG_PARSER_TESTING_PARSE_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "parser/stream_parser.h"
#include "parser/wire/finding.h"

namespace qmig {

// Options with the profile fixed (no auto-detection), default limits.
ParseOptions FixedProfile(ProfileId profile = ProfileId::kQemu72);

ParseResult ParseBytes(absl::Span<const uint8_t> bytes, const ParseOptions& options = {});

// Feeds `bytes` to an FdSource over a pipe from a writer thread. SIGPIPE is
// ignored for the process (the parser may stop reading early). With
// `pause_after`, the writer stops for a moment after that many bytes, so that
// a read ends there.
ParseResult ParseBytesThroughPipe(absl::Span<const uint8_t> bytes,
                                  const ParseOptions& options = {},
                                  std::optional<size_t> pause_after = std::nullopt);

// "code @0x.. (+0x.. in package) [severity] {qemu_accepts} path: message",
// one finding per line.
std::string FormatFinding(const Finding& finding);
std::string FormatFindings(const ParseResult& result);

// The first finding with `code`, or nullptr.
const Finding* FindFinding(const ParseResult& result, FindingCode code);
std::vector<const Finding*> FindingsWithCode(const ParseResult& result, FindingCode code);
// Findings of error severity.
std::vector<const Finding*> Errors(const ParseResult& result);

}  // namespace qmig

#endif  // QMIG_PARSER_TESTING_PARSE_UTIL_H_
