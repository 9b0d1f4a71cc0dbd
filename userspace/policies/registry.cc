#include "userspace/policies/registry.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/policies/edf.h"
#include "userspace/policies/fifo_centralized.h"
#include "userspace/policies/fifo_per_cpu.h"
#include "userspace/policies/search.h"
#include "userspace/policies/shinjuku.h"
#include "userspace/policies/sol.h"

namespace ghost {

std::vector<std::string> PolicyNames() {
  return {FifoPerCpuPolicy::kName, FifoCentralizedPolicy::kName, ShinjukuPolicy::kName,
          EdfPolicy::kName, SolPolicy::kName, SearchPolicy::kName};
}

absl::Duration DefaultSlice(const std::string& policy) {
  if (policy == ShinjukuPolicy::kName) return ShinjukuPolicy::kDefaultSlice;
  if (policy == EdfPolicy::kName) return EdfPolicy::kDefaultSlice;
  if (policy == SolPolicy::kName) return SolPolicy::kDefaultSlice;
  return absl::Milliseconds(20);  // sched_ext's own (docs/BENCHMARKS.md, "Slices by default")
}

bool ReadsHints(const std::string& policy) {
  return policy == ShinjukuPolicy::kName || policy == EdfPolicy::kName;
}

absl::Status CheckHintsFor(const std::string& policy, const std::string& hints) {
  if (hints.empty() || ReadsHints(policy)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("--hints is read by --policy=%s and %s only (not %s)",
                      ShinjukuPolicy::kName, EdfPolicy::kName, policy));
}

absl::Status CheckBatchBelowFor(const std::string& policy, int64_t batch_below) {
  if (batch_below < 0 || batch_below > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--batch-below=%d is not a QoS class (0..%u)", batch_below, UINT32_MAX));
  }
  if (batch_below == 0 || policy == ShinjukuPolicy::kName) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "--batch-below is --policy=%s's sharing (not %s)", ShinjukuPolicy::kName, policy));
}

absl::StatusOr<std::unique_ptr<Policy>> MakePolicy(const PolicyOptions& opts,
                                                   Enclave& enclave) {
  if (opts.slice < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "negative slice %s", absl::FormatDuration(opts.slice)));
  }
  const std::vector<std::string> known = PolicyNames();
  if (std::find(known.begin(), known.end(), opts.name) != known.end()) {
    if (absl::Status s = CheckHintsFor(opts.name, opts.hints); !s.ok()) return s;
    if (absl::Status s = CheckBatchBelowFor(opts.name, opts.batch_below); !s.ok()) return s;
  }
  PolicyOptions o = opts;
  if (!o.clock) o.clock = MonotonicNowNs;
  if (o.name == FifoPerCpuPolicy::kName) {
    return FifoPerCpuPolicy::Create(o, enclave);
  }
  if (o.name == FifoCentralizedPolicy::kName) {
    return FifoCentralizedPolicy::Create(o, enclave);
  }
  if (o.name == ShinjukuPolicy::kName) {
    return ShinjukuPolicy::Create(o, enclave);
  }
  if (o.name == EdfPolicy::kName) {
    return EdfPolicy::Create(o, enclave);
  }
  if (o.name == SolPolicy::kName) {
    return SolPolicy::Create(o, enclave);
  }
  if (o.name == SearchPolicy::kName) {
    return SearchPolicy::Create(o, enclave);
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown policy '%s' (known: %s)", opts.name,
      absl::StrJoin(PolicyNames(), ", ")));
}

}  // namespace ghost
