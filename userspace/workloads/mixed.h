// The demo's workload: worker threads that sleep until woken, run a compute
// burst (mostly short, sometimes long), and sleep again. Waker threads (in the
// default class: they are the load, not the measured work) wake idle workers
// with Poisson arrivals at the rate that keeps `load` of the CPUs busy.
// Measured: wake-up latency (waker's futex wake -> worker running), bursts
// completed, and the wall time long bursts took (CPU time + time not running).
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_MIXED_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_MIXED_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/workloads/bench_report.h"
#include "userspace/workloads/workload.h"

namespace ghost {

struct MixedOptions {
  int threads = 64;
  double load = 0.7;  // CPUs kept busy, as a fraction of `cpus`
  int cpus = 0;       // 0: the CPUs this process may run on
  absl::Duration short_burst = absl::Microseconds(50);
  absl::Duration long_burst = absl::Milliseconds(5);
  double long_fraction = 0.1;
  int wakers = 1;
  uint64_t seed = 1;
};

absl::Status ValidateMixedOptions(const MixedOptions& o);
// Wake-ups per second that keep load * cpus CPUs busy with bursts on average.
double MixedWakeRate(const MixedOptions& o, int cpus);
// Runs for run.duration. Fails (result not ok) if a worker does not finish by
// duration + grace or a wake-up handed to a worker was never served.
BenchResult RunMixed(const MixedOptions& o, const RunOptions& run);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_MIXED_H_
