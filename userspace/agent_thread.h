// How an agent thread starts on the real class, the way ghost-agent ships it
// (and the VM tests that drive policies run it): the class knows it as an
// agent (BpfKernelSide::RegisterAgentThread: when it takes a CPU that is not
// a higher class taking it, so no CPU_BUSY, and a commit to its own CPU waits
// until it blocks), it outranks every thread it schedules (SCHED_FIFO), and it
// stays on its CPU (pinned), as ghOSt's agents do.
#ifndef GHOST_SCX_USERSPACE_AGENT_THREAD_H_
#define GHOST_SCX_USERSPACE_AGENT_THREAD_H_

#include "absl/status/status.h"
#include "userspace/agent.h"
#include "userspace/bpf_kernel_side.h"

namespace ghost {

// Called by the agent thread itself, before Agent::Run: registers it with the
// class as the kind of agent it is (per-CPU or global), pins it to its CPU
// (none: not pinned) and makes it SCHED_FIFO `priority`
// (1..99). Registration comes first, so the class never sees it take a CPU as
// an unknown real-time thread.
absl::Status BecomeAgentThread(BpfKernelSide& kernel, const Agent& agent, int priority);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_AGENT_THREAD_H_
