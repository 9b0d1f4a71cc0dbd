// Search (the ghOSt paper, section 4.4: Google Search's policy on AMD Rome,
// whose original is not public): one global agent that keeps threads near
// their caches on a machine of many small LLCs (CCXs) and NUMA nodes. The
// centralized scheduler (userspace/policies/fifo_centralized.h) with two
// decisions:
//   - order: the waiting thread that has run least goes first (its runtime
//     over its weight, so nice counts: PolicyOptions::least_runtime_first);
//   - placement: the idle CPU nearest its last one (that CPU, an SMT sibling,
//     the same LLC, the same node, then any), and while nothing in its LLC is
//     idle it waits up to kHoldLlc for one before crossing
//     (CacheAwarePlacement in placement.h; --stats counts placed_cross_llc,
//     placed_cross_node and placements_held).
// Transactions only (the rings' consumers would take threads anywhere in a
// node); the FIFOs' 20 ms slice by default.
#ifndef GHOST_SCX_USERSPACE_POLICIES_SEARCH_H_
#define GHOST_SCX_USERSPACE_POLICIES_SEARCH_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"

namespace ghost {

class SearchPolicy {
 public:
  static constexpr const char* kName = "search";
  // The paper's "about 100 us" before a thread leaves its CCX.
  static constexpr absl::Duration kHoldLlc = absl::Microseconds(100);
  // No topology (PolicyOptions::topology) or --fast-path=on: InvalidArgument.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(const PolicyOptions& opts,
                                                        Enclave& enclave);
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_SEARCH_H_
