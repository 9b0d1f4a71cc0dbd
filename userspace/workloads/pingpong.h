// Pairs of threads handing a turn back and forth through a futex: the
// context-switch / futex wake-up baseline. Each pair does `rounds` round trips;
// the pinger records each round trip's time.
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_PINGPONG_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_PINGPONG_H_

#include <cstdint>

#include "absl/status/status.h"
#include "userspace/workloads/bench_report.h"
#include "userspace/workloads/workload.h"

namespace ghost {

struct PingpongOptions {
  int pairs = 1;
  int64_t rounds = 10000;
};

absl::Status ValidatePingpongOptions(const PingpongOptions& o);
// Runs every round (not bounded by run.duration); fails if a pair is not done
// by duration + grace.
BenchResult RunPingpong(const PingpongOptions& o, const RunOptions& run);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_PINGPONG_H_
