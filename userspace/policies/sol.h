// SOL ("speed of light", the ghOSt paper's agent-scaling figure, Fig. 5): the leanest
// centralized FIFO, to measure how many scheduling decisions one global agent
// can make. The centralized scheduler (userspace/policies/fifo_centralized.h)
// with nothing but placement:
//   - every placement is a transaction, committed in groups without waiting
//     for the outcome and reaped on a later round (the scheduler's way); no
//     rings (they would hide the agent's own rate);
//   - no slice unless the caller gives one: a thread runs until it blocks;
//   - each waiting thread, oldest first, goes to the idle CPU nearest the one
//     it last ran on: that CPU, then its SMT sibling, then any
//     (NearestSiblingPlacement in placement.h; counted as placed_last_cpu,
//     placed_sibling and placed_elsewhere in --stats).
#ifndef GHOST_SCX_USERSPACE_POLICIES_SOL_H_
#define GHOST_SCX_USERSPACE_POLICIES_SOL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"

namespace ghost {

class SolPolicy {
 public:
  static constexpr const char* kName = "sol";
  static constexpr absl::Duration kDefaultSlice = absl::ZeroDuration();
  // --fast-path=on: InvalidArgument, one line.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(const PolicyOptions& opts,
                                                        Enclave& enclave);
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_SOL_H_
