// What every ghost-bench workload is told, whatever it runs.
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_WORKLOAD_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_WORKLOAD_H_

#include <sys/types.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ghost {

struct RunOptions {
  bool sched_ext = true;       // threads switch themselves to SCHED_EXT
  // If set, every measured thread first calls it with its tid (ghost-bench
  // --enclave enrolls it in an enclave, so the enclave's agent schedules it).
  std::function<absl::Status(pid_t tid)> enroll;
  // Fail the run unless a sched_ext class really ran every measured thread.
  bool expect_class = false;
  std::string label = "ghost";  // scheduler label in the report
  absl::Duration duration = absl::Seconds(5);
  // Past duration + grace, threads still running are reported and abandoned.
  absl::Duration grace = absl::Seconds(10);
};

// Duration in (0, 1 h], grace in [0, 1 h], label 1..32 chars of [A-Za-z0-9_.+-].
absl::Status ValidateRunOptions(const RunOptions& o);

// Shared range checks, each returning "--NAME=VALUE is out of range (LO..HI)".
absl::Status CheckRange(const char* flag, double value, double lo, double hi);
absl::Status CheckDuration(const char* flag, absl::Duration d, absl::Duration lo,
                           absl::Duration hi);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_WORKLOAD_H_
