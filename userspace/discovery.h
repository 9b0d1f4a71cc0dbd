// Live-upgrade discovery (ghOSt's agent restart): a new agent learns which
// threads an earlier agent's enclave still holds from the status words, the
// only per-thread state that outlives an agent, and tells its policy about
// each as if it had just arrived (a TASK_NEW made from the word).
#ifndef GHOST_SCX_USERSPACE_DISCOVERY_H_
#define GHOST_SCX_USERSPACE_DISCOVERY_H_

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
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

struct TakeOverResult {
  int taken = 0;    // associated with the default queue and told to the policy
  int gone = 0;     // exited meanwhile
  int retried = 0;  // associations refused at first (a message landed in an old queue)
  int missed = 0;   // still refused after the retries: its next message tells
};

// A new agent taking over `enclave` (same number as the previous agent's):
// every live thread the status words place in it now reports to the
// enclave's default queue, and the policy's agent on that queue hears of it
// through DiscoveryMessage. Call before the agents run. Threads that exited
// meanwhile are skipped. A message produced into a previous agent's queue
// while it was being retired makes the association fail (its old queue holds
// a message about it): `drain_previous` discards such stragglers, and the
// association is tried again, so a thread whose last message (a WAKEUP) is
// lost this way is still taken over as runnable.
TakeOverResult TakeOverThreads(KernelSide& kernel, Enclave& enclave, Policy& policy,
                               const std::function<void()>& drain_previous = nullptr);

// An agent closing its enclave while other agents keep the class: every live
// thread the status words place in `enclave` goes back to the fair class
// (SCHED_OTHER), as the class's unloading would send it. Passes repeat until
// one finds none (a thread forked meanwhile joined the enclave). Returns how
// many threads were moved.
int ReturnToFairClass(const ghost_status_word* words, EnclaveId enclave);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_DISCOVERY_H_
