// ghost-sim: run a policy against a simulated machine and workload.
//
//   ghost-sim                      the dispersive load under fifo-centralized
//   ghost-sim --policy=fifo-per-cpu --machine=flat21 --load=0.8 --duration=1s
//   ghost-sim --sweep=0.1,0.3,0.5,0.7,0.9      load-vs-latency table
//   ghost-sim --trace=out.json                 per-CPU timelines for ui.perfetto.dev
//
// Bad input (unknown flag, policy, machine or workload, an absurd value): one
// line on stderr, exit 2. The logic lives in userspace/sim/cli.cc (tested).
#include <cstdio>
#include <string>
#include <vector>

#include "userspace/sim/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string out, err;
  const int rc = ghost::sim::RunCli(args, &out, &err);
  fputs(out.c_str(), stdout);
  fputs(err.c_str(), stderr);
  return rc;
}
