// Shinjuku (the ghOSt paper, section 4.2; Kaffes et al., NSDI '19): one
// global agent, preemptive, with a FIFO per QoS class. The centralized
// scheduler does the work (userspace/policies/fifo_centralized.h); this policy
// is its decisions:
//   - a thread's class is its QoS in the application's hint table
//     (docs/HINTS.md; `PolicyOptions::hints`), 0 for a thread with no entry;
//   - a waiting thread of a higher class preempts a lower one at once;
//   - a thread's slice (30 us unless the caller asks for another) ends when
//     one of its class or a higher one waits, and it goes to its class's tail;
//   - every placement is a transaction: the rings (the fast path) run entries
//     in push order, which a class that jumps the queue would break.
// Reading the table and the rest it shares with EDF: HintedPolicy (hinted.h).
// Shenango-style sharing (`PolicyOptions::batch_below`, --batch-below=Q): the
// classes below Q are a batch application's, which gets every CPU the
// latency-critical classes leave idle and gives each one back the moment one
// of theirs waits (the rule above); batch threads take turns every
// kBatchSlice, not every slice, since nothing latency-critical waits for them.
// Threads with no work should block (not spin), or the kernel's stall rule
// applies: a thread held runnable longer than the watchdog runs through the
// class's fallback (docs/OPERATING.md, "Shinjuku").
#ifndef GHOST_SCX_USERSPACE_POLICIES_SHINJUKU_H_
#define GHOST_SCX_USERSPACE_POLICIES_SHINJUKU_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"

namespace ghost {

class ShinjukuPolicy {
 public:
  static constexpr const char* kName = "shinjuku";
  // The slice when the caller gives none (ghost-agent and ghost-sim without
  // --slice-us): the paper's.
  static constexpr absl::Duration kDefaultSlice = absl::Microseconds(30);
  // Batch threads' turns among themselves (at least the slice).
  static constexpr absl::Duration kBatchSlice = absl::Milliseconds(20);
  // A hint table that cannot be opened: InvalidArgument, one line.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(const PolicyOptions& opts,
                                                        Enclave& enclave);
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_SHINJUKU_H_
