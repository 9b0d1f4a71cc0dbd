// One command-line dialect for every ghost-scx binary: Abseil flags, spelled
// with dashes (--slice-us) or underscores (--slice_us), "--flag=value" or
// "--flag value", bools as --flag / --noflag / --flag=false. Flags come before
// arguments: the first argument that is not a flag, or "--", ends them.
// Bad flags or values end the program with one line on stderr and exit 2;
// --help prints this binary's own flags and exits 0.
#ifndef GHOST_SCX_USERSPACE_FLAGS_H_
#define GHOST_SCX_USERSPACE_FLAGS_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ghost {

struct ParsedArgs {
  std::vector<std::string> positional;  // from the first non-flag (or after "--") on
  bool help = false;
  // The flags the command line named, with underscores (slice_us): a
  // binary whose default depends on another flag tells "not given" apart.
  std::set<std::string> given;
};

// Sets every flag named in argv; does not exit. Errors are one line.
absl::StatusOr<ParsedArgs> ParseFlags(int argc, char** argv);

// ParseFlags for a main(): prints "PROGRAM: error" and exits 2 on error, prints
// `usage` and the flags defined under userspace/ and exits 0 on --help.
std::vector<std::string> ParseFlagsOrExit(int argc, char** argv, absl::string_view usage);
// The same, with what ParsedArgs says besides the arguments.
ParsedArgs ParseArgsOrExit(int argc, char** argv, absl::string_view usage);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_FLAGS_H_
