#include "userspace/agent.h"

namespace ghost {

Agent::Agent(KernelSide& kernel, Scheduler& sched, const AgentOptions& opts)
    : kernel_(kernel), sched_(sched), opts_(opts) {}

size_t Agent::RunOnce() {
  size_t n = 0;
  if (opts_.queue != GHOST_QUEUE_NONE) {
    // Barrier before draining: anything produced after this load is unseen,
    // and a commit carrying this barrier must fail as AGENT_STALE.
    barrier_ = __atomic_load_n(&kernel_.QueueWord(opts_.queue).barrier,
                               __ATOMIC_ACQUIRE);
    n = kernel_.ConsumeQueue(opts_.queue, [this](const ghost_msg& raw) {
      sched_.DispatchMessage(Message(raw));
    });
  }
  messages_ += n;
  ++rounds_;
  sched_.Schedule(*this);
  return n;
}

void Agent::Run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_acquire)) {
    const size_t n = RunOnce();
    if (!opts_.global && n == 0 && opts_.queue != GHOST_QUEUE_NONE) {
      // A timeout or an interrupted wait is not an error: just go round.
      (void)kernel_.WaitQueue(opts_.queue, opts_.wait_timeout);
    }
  }
}

}  // namespace ghost
