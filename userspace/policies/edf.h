// EDF: earliest deadline first, from the application's hint table
// (docs/HINTS.md). The centralized scheduler with HintedPolicy's ranks
// (userspace/policies/hinted.h); this policy is its decisions:
//   - a thread's class is its entry's QoS (0 without one), as under Shinjuku,
//     and a higher class that waits takes a lower one's CPU at once;
//   - within a class, the waiting thread with the earliest deadline runs
//     first: its entry's absolute deadline (CLOCK_MONOTONIC), else its hint
//     class's relative deadline counted from when it woke up; threads with
//     no deadline come after every deadline, first come first served;
//   - an earlier deadline preempts nothing: a running thread keeps its CPU
//     until it blocks or yields (no slice by default; with --slice-us, a
//     slice ends only when a thread of its class or a higher one waits);
//   - deadlines are read when a thread is queued and every millisecond while
//     it waits, so an application that writes a request's deadline before it
//     wakes the worker is ordered by it.
#ifndef GHOST_SCX_USERSPACE_POLICIES_EDF_H_
#define GHOST_SCX_USERSPACE_POLICIES_EDF_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"

namespace ghost {

class EdfPolicy {
 public:
  static constexpr const char* kName = "edf";
  // No slice unless the caller gives one: a thread runs until it blocks.
  static constexpr absl::Duration kDefaultSlice = absl::ZeroDuration();
  // A hint table that cannot be opened: InvalidArgument, one line.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(const PolicyOptions& opts,
                                                        Enclave& enclave);
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_EDF_H_
