// Batch antagonists: threads that spin for the whole run, the load that
// competes with latency-sensitive work. Reports the CPU time each received
// (CLOCK_THREAD_CPUTIME_ID): the percentiles are per-thread CPU time, the
// throughput is the CPUs' worth of CPU time they got together.
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_ANTAGONIST_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_ANTAGONIST_H_

#include "absl/status/status.h"
#include "userspace/workloads/bench_report.h"
#include "userspace/workloads/workload.h"

namespace ghost {

struct AntagonistOptions {
  int threads = 64;
};

absl::Status ValidateAntagonistOptions(const AntagonistOptions& o);
// Spins for run.duration. Fails if a thread does not stop by duration + grace.
BenchResult RunAntagonist(const AntagonistOptions& o, const RunOptions& run);

// Jain's fairness index of `shares`: 1 when equal, 1/n when one got it all.
double JainFairness(const std::vector<double>& shares);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_ANTAGONIST_H_
