// ghost-sim's command line, as a library so tests can run it: flags ->
// SimOptions -> report text. Flag values are parsed with Abseil's flag
// marshalling (absl::ParseFlag), so durations read as Abseil durations
// ("200ms", "1s"). Names may be spelled with '-' or '_' (--slice-us ==
// --slice_us, as in ghost-agent).
#ifndef GHOST_SCX_USERSPACE_SIM_CLI_H_
#define GHOST_SCX_USERSPACE_SIM_CLI_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/sim/simulation.h"

namespace ghost {
namespace sim {

struct CliOptions {
  SimOptions sim;
  std::string format = "text";  // text | csv | json
  std::string sweep;            // "0.1,0.5": a load-vs-latency table instead
  bool help = false;
};

// `args` excludes the program name. Errors are one line.
absl::StatusOr<CliOptions> ParseCli(const std::vector<std::string>& args);
std::string CliUsage();

// The whole program: 0 with the report in *out, 2 with one line in *err.
int RunCli(const std::vector<std::string>& args, std::string* out, std::string* err);

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_CLI_H_
