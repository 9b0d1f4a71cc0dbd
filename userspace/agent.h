// An agent (ghOSt's Agent): drains one queue into a Scheduler and lets it
// decide. Per-CPU policies run one per CPU; centralized ones one global agent.
// On a real kernel Run() is the agent thread's loop; the simulator calls
// RunOnce() itself.
#ifndef GHOST_SCX_USERSPACE_AGENT_H_
#define GHOST_SCX_USERSPACE_AGENT_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "userspace/agent_wakeup.h"
#include "userspace/channel.h"
#include "userspace/kernel_side.h"
#include "userspace/scheduler.h"

namespace ghost {

struct AgentOptions {
  int cpu = -1;
  QueueId queue = GHOST_QUEUE_NONE;
  bool global = false;
  // Run(): how long a blocking (per-CPU) agent waits for a message before it
  // runs Schedule() again anyway (pending commits, CPUs coming back).
  absl::Duration wait_timeout = absl::Milliseconds(1);
  // ... and how long when the scheduler has nothing pending
  // (Scheduler::Pending): only a message or a wake-up should end it.
  absl::Duration idle_wait_timeout = absl::Milliseconds(100);
  // Run(): how long the agent steps aside when its policy (RequestYield) or
  // the kernel side (KernelSide::TakeYieldRequest) asks for its CPU: threads
  // that may run nowhere else run meanwhile, and a spinning global agent
  // makes no decisions for the other CPUs. Bounded so that it stays short.
  absl::Duration yield_for = absl::Milliseconds(1);
  // A global agent: when a round consumed no message and its scheduler has
  // nothing to do (Scheduler::IdleFor), sleep on the queue for up to this
  // long instead of spinning, and let its CPU run threads meanwhile
  // (KernelSide::SetAgentAsleep). Zero: always spin (ghOSt's global agent).
  absl::Duration idle_sleep = absl::ZeroDuration();
};

class Agent {
 public:
  Agent(KernelSide& kernel, Scheduler& sched, const AgentOptions& opts);
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Reads the queue's barrier FIRST, then drains every waiting message into
  // the scheduler (DispatchMessage), then calls sched.Schedule(*this).
  // Returns messages handled. A message that arrives after the barrier was
  // read makes this round's commits AGENT_STALE, as in ghOSt.
  size_t RunOnce();
  // Real-kernel loop until `stop`: per-CPU agents block in Wait(), global
  // ones busy-poll.
  void Run(const std::atomic<bool>& stop);

  // Blocks until a message arrives in this agent's queue, another agent
  // calls Wake(), or `timeout` passes (DeadlineExceeded). Returns at once if
  // the queue received something since the last RunOnce read its barrier.
  absl::Status Wait(absl::Duration timeout);
  // From any thread (e.g. another CPU's agent that handed this one a
  // thread): ends the current or the next Wait() early.
  void Wake() { wakeup_.Wake(); }

  // From any thread, while Run() runs: runs `fn` on the agent's own thread
  // after its current round, where the scheduler's state is whole and no
  // round is changing it (a diagnostic reading the policy's view while it
  // schedules), and wakes the agent for it. Run() returning drops what was
  // not run yet: `fn` must not be the only owner of anything waited for.
  void RunBetweenRounds(std::function<void()> fn);

  // From the scheduler, during Schedule(): after this round, Run() lets the
  // agent's own CPU run what the scheduler committed to it, until a message
  // arrives or `yield_for` passes. A per-CPU agent does so anyway (it blocks
  // when idle); this is how a global agent, which spins, gives its CPU to a
  // thread that may run nowhere else.
  void RequestYield() { yield_requested_ = true; }
  // Times Run() stepped aside: asked by the scheduler, or by the kernel side.
  uint64_t policy_yields() const { return policy_yields_; }
  uint64_t kernel_yields() const { return kernel_yields_; }
  // Times Run() slept because the scheduler was idle (AgentOptions::idle_sleep).
  uint64_t idle_sleeps() const { return idle_sleeps_; }
  // After a round that read no message: how long a global agent with
  // AgentOptions::idle_sleep may now sleep on its queue, its CPU given to
  // threads (Run() does; the simulator models it); zero: it polls on.
  absl::Duration IdleSleep();
  // Run(): the longest time between two rounds that the agent did not
  // spend waiting or stepping aside (it was preempted: by a deadline server
  // lending the CPU to a starved class, an interrupt storm, ...).
  absl::Duration longest_stall() const { return absl::Nanoseconds(longest_stall_ns_); }

  // The queue barrier read at the start of the last RunOnce.
  uint64_t barrier() const { return barrier_; }
  int cpu() const { return opts_.cpu; }
  QueueId queue() const { return opts_.queue; }
  bool global() const { return opts_.global; }
  KernelSide& kernel() { return kernel_; }
  Channel& channel() { return channel_; }
  Scheduler& scheduler() { return sched_; }
  // Totals since construction.
  uint64_t rounds() const { return rounds_; }
  uint64_t messages() const { return messages_; }
  // Messages read, by type, and how many of them were class-held (did not
  // wake the agent); "TASK_PREEMPT=120 (held 100) ..." for --stats.
  std::string MessagesByType() const;
  // Times Run() blocked on its queue (a per-CPU agent with nothing to read);
  // each one ended by a wake-up or a timeout costs a context switch.
  uint64_t waits() const { return waits_; }

 private:
  KernelSide& kernel_;
  Scheduler& sched_;
  const AgentOptions opts_;
  Channel channel_;
  AgentWakeup wakeup_;
  // Run(): gives the CPU away for at most yield_for; `on_message` also ends
  // it early when the agent's queue receives something.
  void StepAside(bool on_message);
  // Run(): sleeps on the queue for up to `d`, its CPU given to threads.
  void SleepIdle(absl::Duration d);
  // Run(): the functions RunBetweenRounds posted.
  void RunPosted();

  uint64_t barrier_ = 0;
  uint64_t rounds_ = 0;
  uint64_t messages_ = 0;
  static constexpr size_t kTypeSlots = 128;  // above every GHOST_MSG_* type
  std::array<uint64_t, kTypeSlots> by_type_{};
  std::array<uint64_t, kTypeSlots> held_by_type_{};
  uint64_t waits_ = 0;
  bool yield_requested_ = false;
  uint64_t policy_yields_ = 0;
  uint64_t kernel_yields_ = 0;
  uint64_t idle_sleeps_ = 0;
  uint64_t longest_stall_ns_ = 0;
  uint64_t last_heartbeat_ns_ = 0;
  absl::Mutex posted_mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(posted_mu_);
  std::atomic<bool> has_posted_{false};  // checked every round without the lock
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_AGENT_H_
