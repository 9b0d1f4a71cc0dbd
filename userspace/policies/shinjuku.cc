#include "userspace/policies/shinjuku.h"

#include <algorithm>

#include "userspace/policies/hinted.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> ShinjukuPolicy::Create(const PolicyOptions& opts,
                                                               Enclave& enclave) {
  PolicyOptions o = opts;
  o.batch_slice = std::max(kBatchSlice, opts.slice);
  return HintedPolicy::Create({.name = kName, .deadlines = false}, o, enclave);
}

}  // namespace ghost
