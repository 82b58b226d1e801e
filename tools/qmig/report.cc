#include "tools/qmig/report.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "parser/wire/escape.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/plural.h"

namespace qmig {

nlohmann::json FindingToJson(const Finding& finding) {
  nlohmann::json out = {
      {"code", std::string(DescribeFinding(finding.code).name)},
      {"severity", std::string(SeverityName(finding.severity))},
      {"offset", finding.offset},
      {"path", PrintableText(finding.path)},
      {"message", PrintableText(finding.message)},
      {"qemu_accepts", finding.qemu_accepts.any()},
  };
  nlohmann::json releases = nlohmann::json::array();
  for (int i = 0; i < kQemuReleaseCount; ++i) {
    const QemuRelease release = static_cast<QemuRelease>(i);
    if (finding.qemu_accepts.Has(release))
      releases.push_back(std::string(QemuReleaseName(release)));
  }
  out["qemu_accepts_in"] = std::move(releases);
  out["package_offset"] = finding.package_offset.has_value()
                              ? nlohmann::json(*finding.package_offset)
                              : nlohmann::json();
  return out;
}

nlohmann::json FindingsToJson(const FindingList& findings) {
  nlohmann::json list = nlohmann::json::array();
  for (const Finding& finding : findings.findings()) list.push_back(FindingToJson(finding));
  return list;
}

namespace {

std::vector<std::string> EscapedNames(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& name : names) out.push_back(EscapeName(name));
  return out;
}

NameCounts EscapedKeys(const NameCounts& counts) {
  NameCounts out;
  for (const auto& [name, count] : counts) out[EscapeName(name)] += count;
  return out;
}

}  // namespace

nlohmann::json FindingCountsToJson(const FindingList& findings) {
  nlohmann::json counts = nlohmann::json::object();
  for (const FindingInfo& info : AllFindingInfos()) {
    if (findings.count(info.code) > 0) counts[std::string(info.name)] = findings.count(info.code);
  }
  return counts;
}

nlohmann::json SummaryToJson(const StreamSummary& s) {
  nlohmann::json blocks = nlohmann::json::array();
  for (const RamBlockSummary& b : s.ram_blocks) {
    nlohmann::json block = {{"name", EscapeName(b.name)},
                            {"length", b.length},
                            {"page_size", b.page_size},
                            {"zero_pages", b.zero_pages},
                            {"normal_pages", b.normal_pages},
                            {"xbzrle_pages", b.xbzrle_pages},
                            {"compressed_pages", b.compressed_pages}};
    block["guest_address"] =
        b.guest_address.has_value() ? nlohmann::json(*b.guest_address) : nlohmann::json();
    blocks.push_back(std::move(block));
  }
  nlohmann::json out = {
      {"profile", s.profile},
      {"profile_detected", s.profile_detected},
      {"profile_evidence", s.profile_evidence},
      {"profile_also_consistent", s.profile_also_consistent},
      {"headerless", s.headerless},
      {"file_version", s.file_version},
      {"capabilities", EscapedNames(s.capabilities)},
      {"sections", s.sections},
      {"commands", s.commands},
      {"pings", s.pings},
      {"ram_blocks", blocks},
      {"ram_records", s.ram_records},
      {"packages", s.packages},
      {"devices_decoded", s.devices_decoded},
      {"devices_unverified", s.devices_unverified},
      {"device_fields", s.device_fields},
      {"device_description", s.device_description_source},
      {"vmdesc_present", s.vmdesc_present},
      {"vmdesc_bytes", s.vmdesc_bytes},
      {"iterable_sections", EscapedKeys(s.iterable_sections)},
      {"eof", s.eof_seen},
      {"postcopy_state", std::string(PostcopyStateName(s.postcopy))},
      {"return_path_opened", s.return_path_opened},
      {"bytes", s.bytes},
  };
  out["machine"] =
      s.machine.has_value() ? nlohmann::json(EscapeName(*s.machine)) : nlohmann::json();
  out["target_page_bits"] =
      s.target_page_bits.has_value() ? nlohmann::json(*s.target_page_bits) : nlohmann::json();
  out["uuid"] = s.uuid.has_value() ? nlohmann::json(*s.uuid) : nlohmann::json();
  out["footers"] = s.footers.has_value() ? nlohmann::json(*s.footers) : nlohmann::json();
  return out;
}

std::string FormatFinding(const Finding& f) {
  std::string where = absl::StrFormat("@0x%x", f.offset);
  if (f.package_offset.has_value())
    absl::StrAppendFormat(&where, " (+0x%x in package)", *f.package_offset);
  std::string line =
      absl::StrCat(SeverityName(f.severity), " ", DescribeFinding(f.code).name, " ", where);
  if (!f.path.empty()) absl::StrAppend(&line, " ", PrintableText(f.path));
  absl::StrAppend(&line, ": ", PrintableText(f.message));
  if (f.qemu_accepts) absl::StrAppend(&line, " [", f.qemu_accepts.Describe(), " accepts this]");
  return line;
}

namespace {
std::string Counts(const NameCounts& counts) {
  if (counts.empty()) return "none";
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) parts.push_back(absl::StrCat(name, " ", count));
  return absl::StrJoin(parts, ", ");
}
}  // namespace

std::string FormatSummary(const StreamSummary& s, const std::string& input_name) {
  std::string out;
  absl::StrAppend(&out, "stream    ", EscapeName(input_name), " (", Counted(s.bytes, "byte"),
                  " read)\n");
  absl::StrAppend(&out, "profile   ", s.profile, s.profile_detected ? " (detected)" : " (default)",
                  s.profile_also_consistent.empty()
                      ? ""
                      : absl::StrCat(", or ", absl::StrJoin(s.profile_also_consistent, ", ")),
                  s.headerless ? ", headerless (postcopy recovery connection)" : "", "\n");
  for (const std::string& evidence : s.profile_evidence) {
    absl::StrAppend(&out, "          ", evidence, "\n");
  }
  absl::StrAppend(&out, "machine   ",
                  s.machine.has_value() ? EscapeName(*s.machine) : "(no CONFIGURATION section)");
  if (!s.capabilities.empty()) {
    absl::StrAppend(&out, "  caps: ", absl::StrJoin(EscapedNames(s.capabilities), ","));
  }
  if (s.uuid.has_value()) absl::StrAppend(&out, "  uuid: ", *s.uuid);
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, "footers   ",
                  s.footers.has_value() ? (*s.footers ? "yes" : "no") : "unknown", "\n");
  absl::StrAppend(&out, "sections  ", Counts(s.sections), "\n");
  absl::StrAppend(&out, "commands  ", Counts(s.commands));
  if (s.packages > 0) absl::StrAppend(&out, "  (", Counted(s.packages, "package"), ")");
  if (s.postcopy != PostcopyState::kNone) {
    absl::StrAppend(&out, "  postcopy: ", PostcopyStateName(s.postcopy));
  }
  absl::StrAppend(&out, "\n");
  absl::StrAppend(&out, "ram       ", Counted(s.ram_records, "record"), " in ",
                  Counted(s.ram_blocks.size(), "block"), "\n");
  for (const RamBlockSummary& b : s.ram_blocks) {
    absl::StrAppendFormat(&out, "  %-24s %10s  zero %-7d page %-7d xbzrle %-5d compressed %d\n",
                          EscapeName(b.name), absl::StrFormat("0x%x", b.length), b.zero_pages,
                          b.normal_pages, b.xbzrle_pages, b.compressed_pages);
  }
  if (!s.iterable_sections.empty()) {
    absl::StrAppend(&out, "iterable  ", Counts(EscapedKeys(s.iterable_sections)), "\n");
  }
  absl::StrAppend(
      &out, "devices   ", s.devices_decoded, " decoded (", Counted(s.device_fields, "field"), ")",
      s.devices_unverified > 0 ? absl::StrCat(", ", s.devices_unverified, " unverified") : "",
      s.device_description_source.empty()
          ? ""
          : absl::StrCat(", description from ", s.device_description_source),
      "\n");
  absl::StrAppend(
      &out, "trailer   ",
      s.vmdesc_present ? absl::StrCat("VMDESCRIPTION, ", Counted(s.vmdesc_bytes, "byte")) : "none",
      "\n");
  return out;
}

std::string FormatFindingGroup(const Finding& first, uint64_t count) {
  std::string line = FormatFinding(first);
  // "warning CODE @..." becomes "warning N x CODE, first @...".
  const absl::string_view severity = SeverityName(first.severity);
  const absl::string_view name = DescribeFinding(first.code).name;
  return absl::StrCat(severity, " ", count, " x ", name, ", first",
                      line.substr(severity.size() + 1 + name.size()));
}

void PrintFindings(const FindingList& findings, bool errors_only, bool verbose) {
  // Warnings of one code that repeat are shown once, at the first, with
  // their count; errors always each on their own line.
  std::vector<uint64_t> stored(kFindingCodeCount, 0);
  for (const Finding& finding : findings.findings()) ++stored[static_cast<size_t>(finding.code)];
  std::vector<bool> shown(kFindingCodeCount, false);
  bool grouped = false;
  for (const Finding& finding : findings.findings()) {
    if (errors_only && finding.severity != Severity::kError) continue;
    const size_t code = static_cast<size_t>(finding.code);
    if (verbose || finding.severity == Severity::kError || stored[code] < 2) {
      std::cout << FormatFinding(finding) << "\n";
      continue;
    }
    if (shown[code]) continue;
    shown[code] = true;
    grouped = true;
    std::cout << FormatFindingGroup(finding, findings.count(finding.code)) << "\n";
  }
  if (grouped) std::cout << "(repeated warnings grouped; --verbose or --json lists each)\n";
  // Every code counted, stored or not: the list above may be cut short.
  std::vector<std::string> counts;
  for (const FindingInfo& info : AllFindingInfos()) {
    if (findings.count(info.code) > 0) {
      counts.push_back(absl::StrCat(info.name, " ", findings.count(info.code)));
    }
  }
  if (!counts.empty()) std::cout << "counts    " << absl::StrJoin(counts, ", ") << "\n";
  std::cout << FormatVerdict(findings) << "\n";
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * (values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string FormatVerdict(const FindingList& findings) {
  std::string verdict = findings.error_count() == 0 ? "VALID" : "INVALID";
  std::string not_shown;
  if (findings.dropped() > 0) {
    // Which codes the findings past the limit had: each code's count less
    // the ones listed.
    std::vector<uint64_t> listed(kFindingCodeCount, 0);
    for (const Finding& finding : findings.findings()) ++listed[static_cast<size_t>(finding.code)];
    std::vector<std::string> parts;
    for (const FindingInfo& info : AllFindingInfos()) {
      const uint64_t unlisted = findings.count(info.code) - listed[static_cast<size_t>(info.code)];
      if (unlisted > 0) parts.push_back(absl::StrCat(info.name, " ", unlisted));
    }
    not_shown =
        absl::StrCat(" (", findings.dropped(), " not shown: ", absl::StrJoin(parts, ", "), ")");
  }
  return absl::StrCat(verdict, ": ", findings.error_count(), " error",
                      findings.error_count() == 1 ? "" : "s", ", ", findings.warning_count(),
                      " warning", findings.warning_count() == 1 ? "" : "s", not_shown);
}

}  // namespace qmig
