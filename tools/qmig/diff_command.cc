// qmig diff A B: what differs between two streams of the same machine. Both
// are extracted to private temporary directories (sparse files, so only the
// pages sent take space; device fields as lines in a log), then compared:
// RAM page by page per block, over the pages either stream wrote, and device
// state field by field. Memory follows the number of blocks and devices, not
// their sizes. Exit 0 when equal, 1 when not, 2 when either stream cannot be
// read or is invalid.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "parser/wire/escape.h"
#include "parser/wire/limits.h"
#include "parser/wire/natural_order.h"
#include "parser/wire/plural.h"
#include "tools/inspect/ram_map.h"
#include "tools/qmig/extract.h"
#include "tools/qmig/output_files.h"
#include "tools/qmig/report.h"
#include "tools/qmig/temp_dir.h"

namespace qmig {
namespace {

constexpr size_t kReadChunk = size_t{1} << 20;

struct BlockDiff {
  std::string name;
  uint64_t length_a = 0;
  uint64_t length_b = 0;
  uint64_t pages_differ = 0;
  RangeList ranges{kMaxListedRanges};
};

// Reads a page at `offset`; what lies past the end (or a missing file) reads
// as zeros, as guest RAM never sent does.
absl::Status ReadPage(int fd, uint64_t offset, uint8_t* page) {
  size_t done = 0;
  while (fd >= 0 && done < kTargetPageSize) {
    ssize_t n = pread(fd, page + done, kTargetPageSize - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read: ", std::strerror(errno)));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  std::memset(page + done, 0, kTargetPageSize - done);
  return absl::OkStatus();
}

// Compares the pages that hold data in A or in B; every other page is a
// hole (zeros) in both.
absl::StatusOr<BlockDiff> CompareBlock(const std::string& name, int dir_a, int dir_b,
                                       const RamFileWriter::BlockFile* a,
                                       const RamFileWriter::BlockFile* b) {
  BlockDiff diff;
  diff.name = name;
  diff.length_a = a != nullptr ? a->length : 0;
  diff.length_b = b != nullptr ? b->length : 0;
  UniqueFd fd_a(
      a != nullptr ? openat(dir_a, a->file_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1);
  UniqueFd fd_b(
      b != nullptr ? openat(dir_b, b->file_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1);
  std::vector<uint64_t> pages_a = a != nullptr ? a->data_pages.Sorted() : std::vector<uint64_t>();
  std::vector<uint64_t> pages_b = b != nullptr ? b->data_pages.Sorted() : std::vector<uint64_t>();
  std::vector<uint64_t> pages;
  pages.reserve(pages_a.size() + pages_b.size());
  std::set_union(pages_a.begin(), pages_a.end(), pages_b.begin(), pages_b.end(),
                 std::back_inserter(pages));
  uint8_t page_a[kTargetPageSize], page_b[kTargetPageSize];
  for (uint64_t page : pages) {
    const uint64_t offset = page * kTargetPageSize;
    QMIG_RETURN_IF_ERROR(ReadPage(fd_a.get(), offset, page_a));
    QMIG_RETURN_IF_ERROR(ReadPage(fd_b.get(), offset, page_b));
    if (std::memcmp(page_a, page_b, kTargetPageSize) == 0) continue;
    ++diff.pages_differ;
    diff.ranges.Add(offset, kTargetPageSize, PageKind::kNormal);
  }
  return diff;
}

// The lines of one device in a field log, read in chunks.
class LineReader {
 public:
  LineReader(int fd, DeviceFieldLog::Extent extent) : fd_(fd), next_(extent.offset) {
    end_ = extent.offset + extent.length;
  }
  // The next line without its newline; false at the end.
  bool Next(std::string* line) {
    line->clear();
    while (true) {
      size_t newline = buffer_.find('\n', position_);
      if (newline != std::string::npos) {
        line->append(buffer_, position_, newline - position_);
        position_ = newline + 1;
        return true;
      }
      line->append(buffer_, position_, std::string::npos);
      buffer_.clear();
      position_ = 0;
      if (next_ >= end_ || !Fill()) return !line->empty();
    }
  }

 private:
  bool Fill() {
    buffer_.resize(static_cast<size_t>(std::min<uint64_t>(kReadChunk, end_ - next_)));
    ssize_t n = pread(fd_, buffer_.data(), buffer_.size(), static_cast<off_t>(next_));
    if (n <= 0) {
      buffer_.clear();
      return false;
    }
    buffer_.resize(static_cast<size_t>(n));
    next_ += static_cast<uint64_t>(n);
    return true;
  }

  int fd_;
  uint64_t next_;
  uint64_t end_;
  std::string buffer_;
  size_t position_ = 0;
};

// "path\tvalue" split at its first tab (paths are escaped: they hold none).
std::pair<std::string, std::string> SplitLine(const std::string& line) {
  size_t tab = line.find('\t');
  if (tab == std::string::npos) return {line, ""};
  return {line.substr(0, tab), line.substr(tab + 1)};
}

struct FieldDiffs {
  uint64_t count = 0;
  nlohmann::ordered_json listed = nlohmann::ordered_json::array();
  std::string text;

  void Add(const std::string& device, const std::string& path, const std::string* a,
           const std::string* b) {
    ++count;
    if (listed.size() >= kMaxListedFields) return;
    nlohmann::ordered_json entry = {{"device", device}, {"path", path}};
    entry["a"] = a != nullptr ? nlohmann::ordered_json(*a) : nlohmann::ordered_json();
    entry["b"] = b != nullptr ? nlohmann::ordered_json(*b) : nlohmann::ordered_json();
    absl::StrAppend(&text, "device ", device, " ", path, ": ", a != nullptr ? *a : "(absent)",
                    " -> ", b != nullptr ? *b : "(absent)", "\n");
    listed.push_back(std::move(entry));
  }
};

// A device's fields by path, the last of a repeated path counting.
std::vector<std::pair<std::string, std::string>> SortedFields(int fd,
                                                              DeviceFieldLog::Extent extent) {
  std::vector<std::pair<std::string, std::string>> fields;
  LineReader reader(fd, extent);
  std::string line;
  while (reader.Next(&line)) fields.push_back(SplitLine(line));
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& x, const auto& y) { return NaturalLess(x.first, y.first); });
  std::vector<std::pair<std::string, std::string>> unique;
  for (auto& field : fields) {
    if (!unique.empty() && unique.back().first == field.first) {
      unique.back() = std::move(field);
    } else {
      unique.push_back(std::move(field));
    }
  }
  return unique;
}

void CompareDevice(const std::string& device, int fd_a, const DeviceFieldLog::Extent* a, int fd_b,
                   const DeviceFieldLog::Extent* b, FieldDiffs* diffs) {
  const DeviceFieldLog::Extent none;
  const DeviceFieldLog::Extent& extent_a = a != nullptr ? *a : none;
  const DeviceFieldLog::Extent& extent_b = b != nullptr ? *b : none;
  if (extent_a.length <= kMaxSortedDeviceBytes && extent_b.length <= kMaxSortedDeviceBytes) {
    auto fields_a = SortedFields(fd_a, extent_a);
    auto fields_b = SortedFields(fd_b, extent_b);
    size_t i = 0, j = 0;
    while (i < fields_a.size() || j < fields_b.size()) {
      if (j == fields_b.size() ||
          (i < fields_a.size() && NaturalLess(fields_a[i].first, fields_b[j].first))) {
        diffs->Add(device, fields_a[i].first, &fields_a[i].second, nullptr);
        ++i;
      } else if (i == fields_a.size() || NaturalLess(fields_b[j].first, fields_a[i].first)) {
        diffs->Add(device, fields_b[j].first, nullptr, &fields_b[j].second);
        ++j;
      } else {
        if (fields_a[i].second != fields_b[j].second) {
          diffs->Add(device, fields_a[i].first, &fields_a[i].second, &fields_b[j].second);
        }
        ++i;
        ++j;
      }
    }
    return;
  }
  // Too long to sort in memory: both sides in wire order, which is the
  // description's order, the same on two streams of one machine.
  LineReader reader_a(fd_a, extent_a), reader_b(fd_b, extent_b);
  std::string line_a, line_b;
  bool has_a = reader_a.Next(&line_a), has_b = reader_b.Next(&line_b);
  while (has_a || has_b) {
    auto [path_a, value_a] = SplitLine(line_a);
    auto [path_b, value_b] = SplitLine(line_b);
    if (has_a && has_b && path_a == path_b) {
      if (value_a != value_b) diffs->Add(device, path_a, &value_a, &value_b);
    } else {
      // The layouts part: what remains is listed on its own side.
      if (has_a) diffs->Add(device, path_a, &value_a, nullptr);
      if (has_b) diffs->Add(device, path_b, nullptr, &value_b);
    }
    if (has_a) has_a = reader_a.Next(&line_a);
    if (has_b) has_b = reader_b.Next(&line_b);
  }
}

}  // namespace

int RunDiff(const std::vector<std::string>& operands, const DiffOptions& options) {
  if (operands.size() != 2) {
    return UsageError("diff", "takes two streams, A and B (one of them may be - for stdin)");
  }
  if (operands[0] == "-" && operands[1] == "-") {
    return UsageError("diff", "only one of A and B can be standard input");
  }
  absl::StatusOr<ParseSetup> setup = MakeParseOptions(options.stream);
  if (!setup.ok()) return UsageError("diff", setup.status().message());
  TempDir dir_a("qmig-diff"), dir_b("qmig-diff");
  if (dir_a.path().empty() || dir_b.path().empty()) {
    std::cerr << "qmig diff: cannot create a temporary directory: " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  Extracted a, b;
  std::vector<UniqueFd> dir_fds;
  std::vector<std::unique_ptr<DeviceFieldLog>> logs;
  for (auto [input, dir, out, label] : {std::make_tuple(&operands[0], &dir_a, &a, "qmig diff A"),
                                        std::make_tuple(&operands[1], &dir_b, &b, "qmig diff B")}) {
    absl::StatusOr<UniqueFd> dir_fd = OpenDirectory(dir->path(), /*create=*/false);
    if (!dir_fd.ok()) {
      std::cerr << "qmig diff: " << dir_fd.status().message() << "\n";
      return kExitUsage;
    }
    UniqueFd log_fd(openat(dir_fd->get(), "fields.log",
                           O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!log_fd.valid()) {
      std::cerr << "qmig diff: cannot create a field log in " << dir->path() << ": "
                << std::strerror(errno) << "\n";
      return kExitUsage;
    }
    logs.push_back(std::make_unique<DeviceFieldLog>(std::move(log_fd)));
    ExtractOutputs outputs;
    outputs.devices = logs.back().get();
    absl::Status status = ExtractStream(*input, dir_fd->get(), dir->path(), options.stream,
                                        options.output.quiet, label, outputs, out);
    // The message names the input already.
    if (!status.ok()) return InputError("diff", status.message());
    dir_fds.push_back(std::move(*dir_fd));
  }

  // RAM, block by block, in A's order then B's own.
  std::vector<std::string> names;
  std::map<std::string, const RamFileWriter::BlockFile*> in_a, in_b;
  for (const auto& block : a.blocks) {
    in_a[block.name] = &block;
    names.push_back(block.name);
  }
  for (const auto& block : b.blocks) {
    in_b[block.name] = &block;
    if (in_a.count(block.name) == 0) names.push_back(block.name);
  }
  for (const Extracted* extracted : {&a, &b}) {
    for (const auto& block : extracted->blocks) {
      if (block.pages_beyond_file_limit == 0) continue;
      std::cerr << "qmig diff: " << EscapeName(block.name) << ": " << block.pages_beyond_file_limit
                << " pages lie past the longest file this file system holds; they are not "
                   "compared\n";
    }
  }
  bool equal = true;
  nlohmann::ordered_json ram = nlohmann::ordered_json::array();
  std::string text;
  for (const std::string& name : names) {
    auto found_a = in_a.find(name);
    auto found_b = in_b.find(name);
    absl::StatusOr<BlockDiff> diff = CompareBlock(
        name, dir_fds[0].get(), dir_fds[1].get(), found_a != in_a.end() ? found_a->second : nullptr,
        found_b != in_b.end() ? found_b->second : nullptr);
    if (!diff.ok()) {
      std::cerr << "qmig diff: " << diff.status().message() << "\n";
      return kExitUsage;
    }
    const bool same = diff->pages_differ == 0 && diff->length_a == diff->length_b;
    equal = equal && same;
    nlohmann::ordered_json ranges = nlohmann::ordered_json::array();
    for (const PageRange& range : diff->ranges.ranges()) ranges.push_back({range.start, range.end});
    const std::string shown = EscapeName(name);
    ram.push_back({{"block", shown},
                   {"length_a", diff->length_a},
                   {"length_b", diff->length_b},
                   {"pages_differ", diff->pages_differ},
                   {"ranges", ranges},
                   {"ranges_dropped", diff->ranges.dropped()}});
    if (same) continue;
    absl::StrAppendFormat(&text, "RAM %s: %d %s", shown, diff->pages_differ,
                          diff->pages_differ == 1 ? "page differs" : "pages differ");
    if (diff->length_a != diff->length_b) {
      absl::StrAppendFormat(&text, " (length %#x in A, %#x in B)", diff->length_a, diff->length_b);
    }
    absl::StrAppend(&text, "\n");
    for (const PageRange& range : diff->ranges.ranges()) {
      const uint64_t pages = (range.end - range.start) / kTargetPageSize;
      absl::StrAppendFormat(&text, "  %#x-%#x (%d page%s)\n", range.start, range.end, pages,
                            pages == 1 ? "" : "s");
    }
    if (diff->ranges.dropped() > 0) {
      absl::StrAppend(&text, "  ... and ", diff->ranges.dropped(), " more range",
                      diff->ranges.dropped() == 1 ? "" : "s", "\n");
    }
  }

  // Device state, field by field, devices in name order.
  FieldDiffs fields;
  std::set<std::string, NaturalOrder> devices;
  for (const auto& [key, extent] : logs[0]->index()) devices.insert(key);
  for (const auto& [key, extent] : logs[1]->index()) devices.insert(key);
  // A device a side has, but could not decode (no vmstate description), is
  // not compared: its fields are unknown there, not absent.
  for (const std::string& device : a.devices_undecoded) devices.insert(device);
  for (const std::string& device : b.devices_undecoded) devices.insert(device);
  nlohmann::ordered_json not_compared = nlohmann::ordered_json::array();
  uint64_t not_compared_count = a.devices_undecoded_unnamed + b.devices_undecoded_unnamed;
  std::string not_compared_text;
  for (const std::string& device : devices) {
    auto it_a = logs[0]->index().find(device);
    auto it_b = logs[1]->index().find(device);
    const bool undecoded_a = it_a == logs[0]->index().end() && a.devices_undecoded.count(device);
    const bool undecoded_b = it_b == logs[1]->index().end() && b.devices_undecoded.count(device);
    if (undecoded_a || undecoded_b) {
      ++not_compared_count;
      const char* where = undecoded_a && undecoded_b ? "A and B" : undecoded_a ? "A" : "B";
      if (not_compared.size() < kMaxListedFields) {
        not_compared.push_back({{"device", device}, {"not_decoded_in", where}});
        absl::StrAppend(&not_compared_text, "device ", device, ": not decoded in ", where,
                        ", not compared\n");
      }
      continue;
    }
    CompareDevice(device, logs[0]->fd(), it_a != logs[0]->index().end() ? &it_a->second : nullptr,
                  logs[1]->fd(), it_b != logs[1]->index().end() ? &it_b->second : nullptr, &fields);
  }
  if (fields.count > 0) equal = false;
  absl::StrAppend(&text, fields.text, not_compared_text);
  if (not_compared_count > not_compared.size()) {
    absl::StrAppend(&text, "... and ", not_compared_count - not_compared.size(),
                    " more devices not compared\n");
  }

  const bool valid = a.result.valid() && b.result.valid();
  if (options.output.json) {
    nlohmann::ordered_json out = {{"a", operands[0]},
                                  {"b", operands[1]},
                                  {"equal", equal},
                                  {"valid_a", a.result.valid()},
                                  {"valid_b", b.result.valid()},
                                  {"ram", ram},
                                  {"fields_differ", fields.count},
                                  {"fields", fields.listed},
                                  {"devices_not_compared", not_compared_count},
                                  {"not_compared", not_compared}};
    std::cout << JsonDocument(out);
  } else {
    std::cout << text;
    if (fields.count > fields.listed.size()) {
      std::cout << "... and " << fields.count - fields.listed.size() << " more device fields\n";
    }
    if (!equal) {
      std::cout << "different\n";
    } else if (not_compared_count > 0) {
      std::cout << "equal in what was compared (" << not_compared_count << " device"
                << (not_compared_count == 1 ? "" : "s")
                << " not decoded; pass --schema to compare them)\n";
    } else {
      std::cout << "equal\n";
    }
  }
  for (const auto& [name, extracted] :
       {std::make_pair(&operands[0], &a), std::make_pair(&operands[1], &b)}) {
    if (!extracted->result.valid()) {
      std::cerr << "qmig diff: " << EscapeName(*name) << " is not a valid stream ("
                << Counted(extracted->result.findings.error_count(), "error")
                << "); the comparison covers what was read\n";
      PrintFindings(extracted->result.findings, /*errors_only=*/true);
    }
  }
  if (!valid) return kExitUsage;
  return equal ? kExitValid : kExitInvalid;
}

}  // namespace qmig
