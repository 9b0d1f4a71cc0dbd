#include "userspace/agent.h"

namespace ghost {

Agent::Agent(KernelSide& kernel, Scheduler& sched, const AgentOptions& opts)
    : kernel_(kernel), sched_(sched), opts_(opts), channel_(kernel, opts.queue) {}

size_t Agent::RunOnce() {
  size_t n = 0;
  if (channel_.valid()) {
    // Barrier before draining: anything produced after this load is unseen,
    // and a commit carrying this barrier must fail as AGENT_STALE.
    barrier_ = channel_.barrier();
    n = channel_.Consume([this](const Message& m) { sched_.DispatchMessage(m); });
  }
  messages_ += n;
  ++rounds_;
  sched_.Schedule(*this);
  return n;
}

void Agent::Run(const std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_acquire)) {
    const size_t n = RunOnce();
    if (!opts_.global && n == 0 && channel_.valid()) {
      // A timeout or an interrupted wait is not an error: just go round.
      (void)channel_.Wait(opts_.wait_timeout);
    }
  }
}

}  // namespace ghost
