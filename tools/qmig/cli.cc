#include "tools/qmig/cli.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace qmig {
namespace {

// '_' and '-' are the same in a flag's name.
std::string Canonical(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

const Flag* Find(const std::vector<Flag>& flags, absl::string_view name) {
  for (const Flag& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

}  // namespace

Flag BoolFlag(absl::string_view name, bool* target, absl::string_view help) {
  return Flag{std::string(name), "", std::string(help), *target ? "true" : "false",
              [target](absl::string_view text, std::string* error) {
                return absl::ParseFlag(text, target, error);
              }};
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     const std::vector<Flag>& flags) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      parsed.operands.insert(parsed.operands.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {  // "-" is stdin, an operand
      parsed.operands.push_back(arg);
      continue;
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    absl::string_view name = body;
    std::optional<std::string> value;
    if (size_t equals = body.find('='); equals != absl::string_view::npos) {
      name = body.substr(0, equals);
      value = std::string(body.substr(equals + 1));
    }
    std::string canonical = Canonical(name);
    if (canonical == "h" || canonical == "help") {
      parsed.help = true;
      continue;
    }
    const Flag* flag = Find(flags, canonical);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(canonical, "no")) {
      const Flag* positive = Find(flags, canonical.substr(2));
      if (positive != nullptr && positive->is_bool() && !value.has_value()) {
        flag = positive;
        negated = true;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg.substr(0, arg.find('='))));
    }
    if (negated) {
      value = "false";
    } else if (!value.has_value()) {
      if (flag->is_bool()) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", flag->name, " needs a value (--",
                                                       flag->name, "=", flag->value_name, ")"));
      }
    }
    std::string error;
    if (!flag->set(*value, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value '", *value, "' for --", flag->name,
                                                     error.empty() ? "" : ": ", error));
    }
  }
  return parsed;
}

std::string FlagsHelp(const std::vector<Flag>& flags) {
  constexpr size_t kLineWidth = 100;
  std::vector<std::string> left;
  size_t width = std::string("--help").size();
  for (const Flag& flag : flags) {
    left.push_back(flag.is_bool() ? absl::StrCat("--", flag.name)
                                  : absl::StrCat("--", flag.name, "=", flag.value_name));
    width = std::max(width, left.back().size());
  }
  left.push_back("--help");
  const size_t indent = 2 + width + 2;
  std::string out;
  for (size_t i = 0; i < left.size(); ++i) {
    std::string text = "this help";
    if (i < flags.size()) {
      text = flags[i].help;
      if (!flags[i].is_bool() && !flags[i].default_text.empty()) {
        absl::StrAppend(&text, " (default: ", flags[i].default_text, ")");
      }
    }
    // The help wrapped at kLineWidth, continued under its first word.
    std::string line = absl::StrFormat("  %-*s  ", static_cast<int>(width), left[i]);
    size_t column = line.size();
    for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
      if (column > indent && column + 1 + word.size() > kLineWidth) {
        absl::StrAppend(&line, "\n", std::string(indent, ' '));
        column = indent;
      } else if (column > indent) {
        line.push_back(' ');
        ++column;
      }
      absl::StrAppend(&line, word);
      column += word.size();
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace qmig
