#include "userspace/policies/sol.h"

#include "absl/status/status.h"
#include "userspace/policies/fifo_centralized.h"
#include "userspace/policies/placement.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> SolPolicy::Create(const PolicyOptions& opts,
                                                          Enclave& enclave) {
  if (opts.fast_path == PolicyOptions::FastPath::kOn) {
    return absl::InvalidArgumentError(
        "sol measures the agent's own placements: --fast-path=on does not apply");
  }
  PolicyOptions o = opts;
  o.name = kName;
  o.fast_path = PolicyOptions::FastPath::kOff;
  o.place = NearestSiblingPlacement(o.topology);
  return FifoCentralizedPolicy::Create(o, enclave);
}

}  // namespace ghost
