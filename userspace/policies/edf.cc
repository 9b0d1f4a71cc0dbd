#include "userspace/policies/edf.h"

#include "userspace/policies/hinted.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> EdfPolicy::Create(const PolicyOptions& opts,
                                                          Enclave& enclave) {
  return HintedPolicy::Create({.name = kName, .deadlines = true}, opts, enclave);
}

}  // namespace ghost
