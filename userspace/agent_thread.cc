#include "userspace/agent_thread.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace ghost {

absl::Status BecomeAgentThread(BpfKernelSide& kernel, const Agent& agent, int priority) {
  const int cpu = agent.cpu();
  if (absl::Status s = kernel.RegisterAgentThread(static_cast<pid_t>(gettid()), agent.global());
      !s.ok()) {
    return s;
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      return absl::InternalError(absl::StrCat("pinning an agent to CPU ", cpu, ": ", strerror(errno)));
    }
  }
  sched_param p = {.sched_priority = priority};
  if (sched_setscheduler(0, SCHED_FIFO, &p) != 0) {
    return absl::InternalError(absl::StrCat("making an agent SCHED_FIFO: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace ghost
