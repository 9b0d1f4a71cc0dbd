// The policies by name: what --policy=NAME of ghost-agent and ghost-sim
// chooses from. A new policy adds itself here and nowhere else; the library
// (userspace/policy.h) knows only the Policy interface.
#ifndef GHOST_SCX_USERSPACE_POLICIES_REGISTRY_H_
#define GHOST_SCX_USERSPACE_POLICIES_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"

namespace ghost {

std::vector<std::string> PolicyNames();

// The slice a policy runs with when the user gives none (--slice-us): 20 ms
// for the FIFOs (and the class alone), ShinjukuPolicy::kDefaultSlice for it.
absl::Duration DefaultSlice(const std::string& policy);

// Whether `policy` ranks threads by a hint table (shinjuku, edf).
bool ReadsHints(const std::string& policy);

// A hint table (--hints) is for a policy that reads one: InvalidArgument
// ("--hints is read by --policy=shinjuku and edf only (not X)") when `hints` is set
// for another.
absl::Status CheckHintsFor(const std::string& policy, const std::string& hints);

// Shenango-style sharing (--batch-below=Q, PolicyOptions::batch_below) is
// Shinjuku's: InvalidArgument for another policy when Q != 0, or Q < 0.
absl::Status CheckBatchBelowFor(const std::string& policy, int64_t batch_below);

// Unknown name -> InvalidArgument("unknown policy 'x' (known: fifo-per-cpu,
// fifo-centralized)"); bad options (negative slice, agent CPU outside the
// enclave, too few CPUs) -> InvalidArgument.
absl::StatusOr<std::unique_ptr<Policy>> MakePolicy(const PolicyOptions& opts,
                                                   Enclave& enclave);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_REGISTRY_H_
