#include "userspace/flags.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace ghost {
namespace {

std::string Canonical(absl::string_view name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }
std::string Dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

}  // namespace

absl::StatusOr<ParsedArgs> ParseFlags(int argc, char** argv) {
  ParsedArgs out;
  for (int i = 1; i < argc; i++) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (i++; i < argc; i++) out.positional.push_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      // Flags come first: from the first argument on, everything is positional
      // (so `ghost-run ls -l` passes -l to ls).
      for (; i < argc; i++) out.positional.push_back(argv[i]);
      break;
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    absl::string_view name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    std::string canon = Canonical(name);
    if (canon == "help" || canon == "helpfull" || canon == "h") {
      out.help = true;
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(canon);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(canon, "no") && !has_value) {
      flag = absl::FindCommandLineFlag(canon.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr || flag->IsRetired()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", Dashed(name), " (see --help)"));
    }
    std::string v;
    if (negated) {
      v = "false";
    } else if (has_value) {
      v = std::string(value);
    } else if (flag->IsOfType<bool>()) {
      v = "true";
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", Dashed(name), " needs a value"));
    }
    out.given.insert(std::string(flag->Name()));
    std::string err;
    if (!flag->ParseFrom(v, &err)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", v, "' for --", Dashed(name), ": ", err));
    }
  }
  return out;
}

ParsedArgs ParseArgsOrExit(int argc, char** argv, absl::string_view usage) {
  std::string prog = argc > 0 ? argv[0] : "ghost";
  if (size_t slash = prog.rfind('/'); slash != std::string::npos) prog = prog.substr(slash + 1);
  absl::StatusOr<ParsedArgs> args = ParseFlags(argc, argv);
  if (!args.ok()) {
    absl::FPrintF(stderr, "%s: %s\n", prog, args.status().message());
    exit(2);
  }
  if (args->help) {
    absl::PrintF("%s\n\nFlags:\n", usage);
    std::vector<std::pair<std::string, absl::CommandLineFlag*>> flags;
    for (const auto& [name, flag] : absl::GetAllFlags()) {
      if (absl::StrContains(flag->Filename(), "userspace/")) {
        flags.emplace_back(Dashed(name), flag);
      }
    }
    std::sort(flags.begin(), flags.end());
    for (const auto& [name, flag] : flags) {
      absl::PrintF("  --%s (default: %s)\n      %s\n", name,
                   flag->DefaultValue().empty() ? "\"\"" : flag->DefaultValue(), flag->Help());
    }
    exit(0);
  }
  return *std::move(args);
}

std::vector<std::string> ParseFlagsOrExit(int argc, char** argv, absl::string_view usage) {
  return ParseArgsOrExit(argc, argv, usage).positional;
}

}  // namespace ghost
