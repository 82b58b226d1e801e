// qmig diff A B: what differs between two streams of the same machine. Both
// are extracted to private temporary directories (sparse files, so only the
// pages sent take space), then compared: RAM page by page per block, device
// state field by field. Exit 0 when equal, 1 when not, 2 when either stream
// cannot be read or is invalid.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "parser/wire/limits.h"
#include "tools/inspect/ram_map.h"
#include "tools/qmig/extract.h"
#include "tools/qmig/report.h"
#include "tools/qmig/temp_dir.h"

namespace qmig {
namespace {

// Differing ranges listed per block, and device fields listed in all.
constexpr size_t kMaxListedRanges = 64;
constexpr size_t kMaxListedFields = 1000;
constexpr size_t kCompareChunk = size_t{1} << 20;

// Flattens a field tree to path -> value text.
void Flatten(const nlohmann::ordered_json& tree, const std::string& prefix,
             std::map<std::string, std::string>* out) {
  if (tree.is_object()) {
    for (const auto& [name, value] : tree.items()) {
      Flatten(value, prefix.empty() ? name : absl::StrCat(prefix, ".", name), out);
    }
  } else if (tree.is_array()) {
    for (size_t i = 0; i < tree.size(); ++i)
      Flatten(tree[i], absl::StrCat(prefix, "[", i, "]"), out);
  } else {
    (*out)[prefix] = tree.is_string() ? tree.get<std::string>() : tree.dump();
  }
}

struct BlockDiff {
  std::string name;
  uint64_t length_a = 0;
  uint64_t length_b = 0;
  uint64_t pages_differ = 0;
  RangeList ranges{kMaxListedRanges};
};

// Reads up to `size` bytes at `offset`; what lies past the end (or a
// missing file) reads as zeros, as guest RAM never sent does.
void ReadZeroFilled(int fd, uint64_t offset, uint8_t* buffer, size_t size) {
  size_t done = 0;
  while (fd >= 0 && done < size) {
    ssize_t n = pread(fd, buffer + done, size - done, static_cast<off_t>(offset + done));
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  std::memset(buffer + done, 0, size - done);
}

absl::StatusOr<BlockDiff> CompareBlock(const std::string& name, const RamFileWriter::BlockFile* a,
                                       const RamFileWriter::BlockFile* b) {
  BlockDiff diff;
  diff.name = name;
  diff.length_a = a != nullptr ? a->length : 0;
  diff.length_b = b != nullptr ? b->length : 0;
  int fd_a = a != nullptr ? open(a->path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  int fd_b = b != nullptr ? open(b->path.c_str(), O_RDONLY | O_CLOEXEC) : -1;
  std::vector<uint8_t> chunk_a(kCompareChunk), chunk_b(kCompareChunk);
  const uint64_t length = std::max(diff.length_a, diff.length_b);
  for (uint64_t offset = 0; offset < length; offset += kCompareChunk) {
    const size_t size = static_cast<size_t>(std::min<uint64_t>(kCompareChunk, length - offset));
    ReadZeroFilled(fd_a, offset, chunk_a.data(), size);
    ReadZeroFilled(fd_b, offset, chunk_b.data(), size);
    if (std::memcmp(chunk_a.data(), chunk_b.data(), size) == 0) continue;
    for (size_t page = 0; page < size; page += kTargetPageSize) {
      const size_t n = std::min(kTargetPageSize, size - page);
      if (std::memcmp(chunk_a.data() + page, chunk_b.data() + page, n) != 0) {
        ++diff.pages_differ;
        diff.ranges.Add(offset + page, n, PageKind::kNormal);
      }
    }
  }
  if (fd_a >= 0) close(fd_a);
  if (fd_b >= 0) close(fd_b);
  return diff;
}

}  // namespace

int RunDiff(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 2) {
    std::cerr << "qmig: diff takes two streams, A and B (one of them may be - for stdin)\n";
    return kExitUsage;
  }
  TempDir dir_a("qmig-diff"), dir_b("qmig-diff");
  if (dir_a.path().empty() || dir_b.path().empty()) {
    std::cerr << "qmig: cannot create a temporary directory: " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  Extracted a, b;
  for (auto [input, dir, out, label] : {std::make_tuple(&operands[0], &dir_a, &a, "qmig diff A"),
                                        std::make_tuple(&operands[1], &dir_b, &b, "qmig diff B")}) {
    absl::Status status = ExtractStream(*input, dir->path(), options, label, out);
    if (!status.ok()) {
      std::cerr << "qmig: " << *input << ": " << status.message() << "\n";
      return kExitUsage;
    }
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
  bool equal = true;
  nlohmann::ordered_json ram = nlohmann::ordered_json::array();
  std::string text;
  for (const std::string& name : names) {
    auto found_a = in_a.find(name);
    auto found_b = in_b.find(name);
    absl::StatusOr<BlockDiff> diff =
        CompareBlock(name, found_a != in_a.end() ? found_a->second : nullptr,
                     found_b != in_b.end() ? found_b->second : nullptr);
    if (!diff.ok()) {
      std::cerr << "qmig: " << diff.status().message() << "\n";
      return kExitUsage;
    }
    const bool same = diff->pages_differ == 0 && diff->length_a == diff->length_b;
    equal = equal && same;
    nlohmann::ordered_json ranges = nlohmann::ordered_json::array();
    for (const PageRange& range : diff->ranges.ranges()) ranges.push_back({range.start, range.end});
    ram.push_back({{"block", name},
                   {"length_a", diff->length_a},
                   {"length_b", diff->length_b},
                   {"pages_differ", diff->pages_differ},
                   {"ranges", ranges},
                   {"ranges_dropped", diff->ranges.dropped()}});
    if (same) continue;
    absl::StrAppendFormat(&text, "RAM %s: %d pages differ", name, diff->pages_differ);
    if (diff->length_a != diff->length_b) {
      absl::StrAppendFormat(&text, " (length %#x in A, %#x in B)", diff->length_a, diff->length_b);
    }
    absl::StrAppend(&text, "\n");
    for (const PageRange& range : diff->ranges.ranges()) {
      absl::StrAppendFormat(&text, "  %#x-%#x (%d pages)\n", range.start, range.end,
                            (range.end - range.start) / kTargetPageSize);
    }
    if (diff->ranges.dropped() > 0) {
      absl::StrAppend(&text, "  ... and ", diff->ranges.dropped(), " more ranges\n");
    }
  }

  // Device state, field by field.
  nlohmann::ordered_json fields = nlohmann::ordered_json::array();
  uint64_t fields_differ = 0;
  std::set<std::string> devices;
  for (const auto& [key, tree] : a.devices) devices.insert(key);
  for (const auto& [key, tree] : b.devices) devices.insert(key);
  for (const std::string& device : devices) {
    std::map<std::string, std::string> flat_a, flat_b;
    auto it_a = a.devices.find(device);
    auto it_b = b.devices.find(device);
    if (it_a != a.devices.end()) Flatten(it_a->second, "", &flat_a);
    if (it_b != b.devices.end()) Flatten(it_b->second, "", &flat_b);
    std::set<std::string> paths;
    for (const auto& [path, value] : flat_a) paths.insert(path);
    for (const auto& [path, value] : flat_b) paths.insert(path);
    for (const std::string& path : paths) {
      auto value_a = flat_a.find(path);
      auto value_b = flat_b.find(path);
      const bool has_a = value_a != flat_a.end(), has_b = value_b != flat_b.end();
      if (has_a && has_b && value_a->second == value_b->second) continue;
      ++fields_differ;
      equal = false;
      if (fields.size() >= kMaxListedFields) continue;
      nlohmann::ordered_json entry = {{"device", device}, {"path", path}};
      entry["a"] = has_a ? nlohmann::ordered_json(value_a->second) : nlohmann::ordered_json();
      entry["b"] = has_b ? nlohmann::ordered_json(value_b->second) : nlohmann::ordered_json();
      absl::StrAppend(&text, "device ", device, " ", path, ": ",
                      has_a ? value_a->second : "(absent)", " -> ",
                      has_b ? value_b->second : "(absent)", "\n");
      fields.push_back(std::move(entry));
    }
  }

  const bool valid = a.result.valid() && b.result.valid();
  if (options.json) {
    nlohmann::ordered_json out = {{"schema_version", kJsonSchemaVersion},
                                  {"a", operands[0]},
                                  {"b", operands[1]},
                                  {"equal", equal},
                                  {"valid_a", a.result.valid()},
                                  {"valid_b", b.result.valid()},
                                  {"ram", ram},
                                  {"fields_differ", fields_differ},
                                  {"fields", fields}};
    std::cout << out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else {
    std::cout << text;
    if (fields_differ > fields.size()) {
      std::cout << "... and " << fields_differ - fields.size() << " more device fields\n";
    }
    std::cout << (equal ? "equal" : "different") << "\n";
  }
  for (const auto& [name, extracted] :
       {std::make_pair(&operands[0], &a), std::make_pair(&operands[1], &b)}) {
    if (!extracted->result.valid()) {
      std::cerr << "qmig: " << *name << " is not a valid stream ("
                << extracted->result.findings.error_count()
                << " errors); the comparison covers what was read\n";
      PrintFindings(extracted->result.findings, /*errors_only=*/true);
    }
  }
  if (!valid) return kExitUsage;
  return equal ? kExitValid : kExitInvalid;
}

}  // namespace qmig
