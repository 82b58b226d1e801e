// qmig schema STREAM [-o FILE]: writes the stream's vmstate description (its
// VMDESCRIPTION JSON) so that streams without one (postcopy, suppress-vmdesc,
// old machine types) can be decoded strictly with --schema.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "parser/trailer.h"
#include "parser/vmstate/description.h"
#include "parser/wire/byte_source.h"
#include "parser/wire/limits.h"
#include "tools/qmig/commands.h"

namespace qmig {
namespace {

// Reads the input to its end keeping only the last `keep` bytes, so that a
// pipe of any length needs bounded memory.
absl::StatusOr<std::vector<uint8_t>> ReadTail(ByteSource& source, size_t keep) {
  std::vector<uint8_t> tail;
  uint64_t offset = 0;
  while (true) {
    absl::StatusOr<absl::Span<const uint8_t>> view = source.View(offset, 1);
    if (!view.ok()) return view.status();
    if (view->empty()) break;
    size_t take = std::min(view->size(), kMaxContiguousView);
    tail.insert(tail.end(), view->begin(), view->begin() + take);
    if (tail.size() > 2 * keep) tail.erase(tail.begin(), tail.end() - keep);
    offset += take;
  }
  if (tail.size() > keep) tail.erase(tail.begin(), tail.end() - keep);
  return tail;
}

}  // namespace

int RunSchema(const std::vector<std::string>& operands, const CommonOptions& options) {
  if (operands.size() != 1) {
    std::cerr << "qmig: schema takes one STREAM (or - for stdin)\n";
    return kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<OpenedInput>> input = OpenedInput::Open(operands[0]);
  if (!input.ok()) {
    std::cerr << "qmig: " << input.status().message() << "\n";
    return kExitUsage;
  }
  ParseLimits limits;
  absl::StatusOr<std::vector<uint8_t>> tail =
      ReadTail((*input)->source(), static_cast<size_t>(limits.max_vmdesc_bytes) + 16);
  if (!tail.ok()) {
    std::cerr << "qmig: reading " << operands[0] << ": " << tail.status().message() << "\n";
    return kExitUsage;
  }
  std::optional<TrailerLocation> trailer = LocateTrailer(*tail, 0, limits.max_vmdesc_bytes);
  if (!trailer.has_value()) {
    std::cerr << "qmig: " << operands[0]
              << " ends without a VMDESCRIPTION trailer (postcopy, suppress-vmdesc or an old "
                 "machine type); take the description from a precopy stream of the same "
                 "machine\n";
    return kExitInvalid;
  }
  absl::StatusOr<VmDescription> description = ParseVmDescription(trailer->json);
  if (!description.ok()) {
    std::cerr << "qmig: the trailer of " << operands[0]
              << " is not a usable description: " << description.status().message() << "\n";
    return kExitInvalid;
  }
  if (options.output_path.empty() || options.output_path == "-") {
    std::cout << trailer->json << "\n";
  } else {
    std::ofstream out(options.output_path, std::ios::binary);
    out << trailer->json << "\n";
    if (!out.good()) {
      std::cerr << "qmig: cannot write " << options.output_path << "\n";
      return kExitUsage;
    }
  }
  if (!options.quiet) {
    std::cerr << "qmig: " << description->devices.size() << " device descriptions from "
              << operands[0] << "\n";
  }
  return kExitValid;
}

}  // namespace qmig
