// What the commands share: the stream and output flags, parse options from
// them, opening inputs, and usage errors.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "parser/multifd.h"
#include "parser/parse_context.h"
#include "parser/return_path.h"
#include "parser/vmstate/description.h"
#include "parser/wire/constants.h"
#include "parser/wire/endian.h"
#include "parser/wire/escape.h"
#include "parser/wire/profile.h"
#include "tools/qmig/commands.h"

namespace qmig {
namespace {

// Reads a --schema file, bounded by the limit.
absl::StatusOr<VmDescription> LoadSchema(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open schema ", path));
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("schema ", path, " is over the limit of ", max_bytes, " bytes"));
    }
  }
  absl::StatusOr<VmDescription> description = ParseVmDescription(text);
  if (!description.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema ", path, ": ", description.status().message()));
  }
  return description;
}

// A postcopy preempt channel has no magic, but it opens with a RAM page
// record that names its block: a page-aligned offset with PAGE or ZERO and
// without CONTINUE, then a counted block name of printable bytes.
bool LooksLikePreemptChannel(absl::Span<const uint8_t> head) {
  if (head.size() < 9) return false;
  const uint64_t word = LoadBe64(head.data());
  const uint64_t flags = word & (kTargetPageSize - 1);
  if (flags != ram_flag::kPage && flags != ram_flag::kZero) return false;
  const size_t length = head[8];
  if (length == 0 || head.size() < 9 + length) return false;
  for (size_t i = 9; i < 9 + length; ++i) {
    if (head[i] < 0x20 || head[i] > 0x7e) return false;
  }
  return true;
}

}  // namespace

// What an input holds, from its first bytes.
std::string DetectKind(ByteSource& source) {
  // Four bytes tell every kind with a magic, so a live pipe is not kept
  // waiting for more; only what none of them claims reads on.
  absl::StatusOr<absl::Span<const uint8_t>> head = source.View(0, 4);
  if (!head.ok() || head->size() < 4) return "main";
  uint32_t word = LoadBe32(head->data());
  if (word == kFileMagic || (*head)[0] == static_cast<uint8_t>(SectionType::kCommand))
    return "main";
  if (word == kMultifdMagic) return "multifd";
  uint16_t type = static_cast<uint16_t>(word >> 16);
  if (type >= 1 && type < kReturnPathTypeCount) return "return-path";
  // A record header and the longest block name.
  head = source.View(0, 9 + 255);
  if (head.ok() && LooksLikePreemptChannel(*head)) return "preempt";
  return "main";
}

void StreamFlags::AddTo(std::vector<Flag>* flags) {
  std::string names;
  for (const Profile& known : AllProfiles()) absl::StrAppend(&names, ", ", known.name);
  flags->push_back(
      ValueFlag("profile", &profile, "NAME",
                absl::StrCat("protocol profile: auto (detected from the stream)", names)));
  flags->push_back(ValueFlag("schema", &schema_path, "FILE",
                             "a vmstate description (VMDESCRIPTION JSON, or QEMU's -dump-vmstate "
                             "output) to decode device sections with"));
  flags->push_back(ValueFlag("max-package", &max_package, "BYTES",
                             "largest PACKAGED blob accepted, up to 4294967295"));
}

void OutputFlags::AddTo(std::vector<Flag>* flags, bool with_json) {
  if (with_json) {
    flags->push_back(BoolFlag("json", &json, "machine-readable output (docs/JSON.md)"));
  }
  flags->push_back(BoolFlag("quiet", &quiet, "only errors and the verdict; no progress"));
}

void OutputFlags::AddVerboseTo(std::vector<Flag>* flags) {
  flags->push_back(BoolFlag("verbose", &verbose,
                            "every warning on its own line; repeated ones are grouped otherwise"));
}

absl::StatusOr<ParseSetup> MakeParseOptions(const StreamFlags& flags) {
  ParseSetup setup;
  if (flags.profile != "auto") {
    const Profile* profile = FindProfileByName(flags.profile);
    if (profile == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown profile '", flags.profile, "'"));
    }
    setup.parse.profile = profile->id;
  }
  if (flags.max_package > kMaxPackageLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max-package is at most ", kMaxPackageLimit));
  }
  setup.parse.limits.max_package_bytes = flags.max_package;
  if (!flags.schema_path.empty()) {
    QMIG_ASSIGN_OR_RETURN(VmDescription loaded,
                          LoadSchema(flags.schema_path, setup.parse.limits.max_schema_file_bytes));
    setup.schema = std::make_shared<const VmDescription>(std::move(loaded));
    setup.parse.schema = setup.schema.get();
  }
  return setup;
}

absl::StatusOr<std::unique_ptr<OpenedInput>> OpenInputPath(const std::string& path) {
  if (path != "-") {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return absl::NotFoundError(
          absl::StrCat("cannot read ", EscapeName(path), ": ", std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(EscapeName(path), " is a directory, not a stream"));
    }
  }
  return OpenedInput::Open(path);
}

absl::StatusOr<StreamInput> OpenStreamInput(const std::string& path, const StreamFlags& flags) {
  StreamInput stream;
  QMIG_ASSIGN_OR_RETURN(ParseSetup setup, MakeParseOptions(flags));
  stream.parse = setup.parse;
  stream.schema = std::move(setup.schema);
  QMIG_ASSIGN_OR_RETURN(stream.input, OpenInputPath(path));
  const std::string kind = DetectKind(stream.input->source());
  if (kind != "main") {
    return absl::InvalidArgumentError(absl::StrCat(
        EscapeName(path), " is a ", kind, " recording, not a main stream: 'qmig check ",
        EscapeName(path), "' reads it (with --main=STREAM for its blocks)"));
  }
  return stream;
}

int InputError(absl::string_view command, absl::string_view message) {
  std::cerr << "qmig " << command << ": " << message << "\n";
  return kExitUsage;
}

int UsageError(absl::string_view command, absl::string_view message) {
  std::cerr << "qmig " << command << ": " << message << " (see 'qmig " << command << " --help')\n";
  return kExitUsage;
}

}  // namespace qmig
