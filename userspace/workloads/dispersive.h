// The paper's dispersive RPC service (the Shinjuku experiment): one load
// generator thread (default class) with Poisson arrivals at `rps`; requests of
// `short_request` compute, a `long_fraction` of them `long_request`; served by
// `workers` threads that block between requests. A request waits in a FIFO
// when every worker is busy. Latency = completion - arrival (open loop: the
// arrival is the scheduled time, so a late generator counts against latency).
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_DISPERSIVE_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_DISPERSIVE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/workloads/bench_report.h"
#include "userspace/workloads/workload.h"

namespace ghost {

struct DispersiveOptions {
  int workers = 200;
  double rps = 10000;
  absl::Duration short_request = absl::Microseconds(4);
  absl::Duration long_request = absl::Milliseconds(10);
  double long_fraction = 0.005;
  int queue_capacity = 1 << 16;  // waiting requests beyond this are dropped (= lost)
  uint64_t seed = 1;
};

absl::Status ValidateDispersiveOptions(const DispersiveOptions& o);
// Generates for run.duration, then lets the workers drain the queue. Fails if
// a request was dropped or never completed, or a thread did not finish.
BenchResult RunDispersive(const DispersiveOptions& o, const RunOptions& run);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_DISPERSIVE_H_
