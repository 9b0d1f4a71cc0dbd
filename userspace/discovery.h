// Live-upgrade discovery (ghOSt's agent restart): a new agent learns which
// threads an earlier agent's enclave still holds from the status words, the
// only per-thread state that outlives an agent, and tells its policy about
// each as if it had just arrived (a TASK_NEW made from the word).
#ifndef GHOST_SCX_USERSPACE_DISCOVERY_H_
#define GHOST_SCX_USERSPACE_DISCOVERY_H_

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel/ghost_abi.h"
#include "userspace/enclave.h"
#include "userspace/kernel_side.h"
#include "userspace/policy.h"
#include "userspace/status_word.h"

namespace ghost {

struct DiscoveredThread {
  uint32_t sw_index = 0;
  StatusWordSnapshot word;
};

// Threads of `enclave` in words[0..n): in use, not dead. Words a writer never
// let settle are skipped (the thread is busy changing; its next message tells).
std::vector<DiscoveredThread> DiscoverThreads(const ghost_status_word* words, size_t n,
                                              EnclaveId enclave);

// The TASK_NEW a policy gets for a discovered thread: its status word, tid and
// seqnum, runnable as the word says, and the CPU it is on or was last on.
ghost_msg DiscoveryMessage(const DiscoveredThread& t);

// A new agent taking over `enclave` (same number as the previous agent's):
// every live thread the status words place in it now reports to the
// enclave's default queue, and the policy's agent on that queue hears of it
// through DiscoveryMessage. Call before the agents run. Threads that exited
// meanwhile are skipped. Returns how many were taken over.
int TakeOverThreads(KernelSide& kernel, Enclave& enclave, Policy& policy);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_DISCOVERY_H_
