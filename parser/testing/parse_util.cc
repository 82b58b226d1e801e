#include "parser/testing/parse_util.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "parser/wire/byte_source.h"

namespace qmig {

ParseOptions FixedProfile(ProfileId profile) {
  ParseOptions options;
  options.profile = profile;
  return options;
}

ParseResult ParseBytes(absl::Span<const uint8_t> bytes, const ParseOptions& options) {
  MemorySource source(bytes);
  return ParseMigrationStream(source, options);
}

ParseResult ParseBytesThroughPipe(absl::Span<const uint8_t> bytes, const ParseOptions& options,
                                  std::optional<size_t> pause_after) {
  // The parser may stop before the writer is done; the writer then gets EPIPE
  // instead of a signal that would end the test.
  ::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  if (::pipe(fds) != 0) {
    ParseResult failed{StreamSummary{}, FindingList()};
    failed.findings.Add({FindingCode::kIoError, Severity::kError, 0, {}, "", "pipe() failed", {}});
    return failed;
  }
  std::thread writer([fd = fds[1], bytes, pause_after] {
    size_t done = 0;
    while (done < bytes.size()) {
      size_t end = bytes.size();
      if (pause_after.has_value() && done < *pause_after) end = std::min(end, *pause_after);
      ssize_t n = ::write(fd, bytes.data() + done, end - done);
      if (n <= 0) break;  // EPIPE: the reader is gone
      done += static_cast<size_t>(n);
      if (pause_after.has_value() && done == *pause_after) absl::SleepFor(absl::Milliseconds(200));
    }
    ::close(fd);
  });
  ParseResult result = [&] {
    FdSource source(fds[0]);
    return ParseMigrationStream(source, options);
  }();
  ::close(fds[0]);  // unblocks a writer stuck on a full pipe
  writer.join();
  return result;
}

std::string FormatFinding(const Finding& finding) {
  std::string text =
      absl::StrFormat("%s @0x%x", DescribeFinding(finding.code).name, finding.offset);
  if (finding.package_offset.has_value()) {
    absl::StrAppendFormat(&text, " (+0x%x in package)", *finding.package_offset);
  }
  absl::StrAppend(&text, " [", SeverityName(finding.severity), "]",
                  finding.qemu_accepts ? " {qemu_accepts}" : "", " ", finding.path, ": ",
                  finding.message);
  return text;
}

std::string FormatFindings(const ParseResult& result) {
  std::string text;
  for (const Finding& finding : result.findings.findings()) {
    absl::StrAppend(&text, FormatFinding(finding), "\n");
  }
  return text.empty() ? "(no findings)\n" : text;
}

const Finding* FindFinding(const ParseResult& result, FindingCode code) {
  for (const Finding& finding : result.findings.findings()) {
    if (finding.code == code) return &finding;
  }
  return nullptr;
}

std::vector<const Finding*> FindingsWithCode(const ParseResult& result, FindingCode code) {
  std::vector<const Finding*> out;
  for (const Finding& finding : result.findings.findings()) {
    if (finding.code == code) out.push_back(&finding);
  }
  return out;
}

std::vector<const Finding*> Errors(const ParseResult& result) {
  std::vector<const Finding*> out;
  for (const Finding& finding : result.findings.findings()) {
    if (finding.severity == Severity::kError) out.push_back(&finding);
  }
  return out;
}

}  // namespace qmig
