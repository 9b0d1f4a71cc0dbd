#include "userspace/policies/registry.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/policies/fifo_centralized.h"
#include "userspace/policies/fifo_per_cpu.h"

namespace ghost {

std::vector<std::string> PolicyNames() {
  return {FifoPerCpuPolicy::kName, FifoCentralizedPolicy::kName};
}

absl::StatusOr<std::unique_ptr<Policy>> MakePolicy(const PolicyOptions& opts,
                                                   Enclave& enclave) {
  if (opts.slice < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "negative slice %s", absl::FormatDuration(opts.slice)));
  }
  PolicyOptions o = opts;
  if (!o.clock) o.clock = MonotonicNowNs;
  if (o.name == FifoPerCpuPolicy::kName) {
    return FifoPerCpuPolicy::Create(o, enclave);
  }
  if (o.name == FifoCentralizedPolicy::kName) {
    return FifoCentralizedPolicy::Create(o, enclave);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown policy '%s' (known: %s)", opts.name,
      absl::StrJoin(PolicyNames(), ", ")));
}

}  // namespace ghost
