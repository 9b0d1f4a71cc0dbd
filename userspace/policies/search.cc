#include "userspace/policies/search.h"

#include "absl/status/status.h"
#include "userspace/policies/fifo_centralized.h"
#include "userspace/policies/placement.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> SearchPolicy::Create(const PolicyOptions& opts,
                                                             Enclave& enclave) {
  if (opts.fast_path == PolicyOptions::FastPath::kOn) {
    return absl::InvalidArgumentError(
        "search places every thread near its caches by transaction: --fast-path=on does not "
        "apply");
  }
  if (opts.topology == nullptr) {
    return absl::InvalidArgumentError(
        "search needs the machine's topology (SMT siblings, LLCs, nodes), and none was read");
  }
  PolicyOptions o = opts;
  o.name = kName;
  o.fast_path = PolicyOptions::FastPath::kOff;
  o.least_runtime_first = true;
  o.place = CacheAwarePlacement(o.topology, absl::ToInt64Nanoseconds(kHoldLlc));
  return FifoCentralizedPolicy::Create(o, enclave);
}

}  // namespace ghost
