// A scheduling policy's message handlers, ghOSt style: one callback per
// message type, then Schedule() to make and commit decisions.
#ifndef GHOST_SCX_USERSPACE_SCHEDULER_H_
#define GHOST_SCX_USERSPACE_SCHEDULER_H_

#include <atomic>
#include <cstdint>

#include "userspace/message.h"

namespace ghost {

class Agent;

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  virtual void TaskNew(const Message& m) {}
  virtual void TaskWakeup(const Message& m) {}
  virtual void TaskBlocked(const Message& m) {}
  virtual void TaskPreempt(const Message& m) {}
  virtual void TaskYield(const Message& m) {}
  virtual void TaskDead(const Message& m) {}
  virtual void TaskDeparted(const Message& m) {}
  virtual void TaskAffinityChanged(const Message& m) {}
  virtual void TaskPriorityChanged(const Message& m) {}
  virtual void TaskOnCpu(const Message& m) {}
  virtual void CpuTick(const Message& m) {}
  virtual void CpuAvailable(const Message& m) {}
  virtual void CpuBusy(const Message& m) {}
  virtual void CpuNotIdle(const Message& m) {}
  virtual void CpuTimerExpired(const Message& m) {}

  // Routes one message; unknown types are counted, never fatal.
  void DispatchMessage(const Message& m);
  uint64_t unknown_messages() const {
    return unknown_.load(std::memory_order_relaxed);
  }

  // Called by `agent` after it drained its queue: make and commit decisions.
  virtual void Schedule(Agent& agent) = 0;

  // Whether `agent` has something to look at again soon without a message:
  // a result it has not read, a back-off to end, threads to place. A blocking
  // agent that has none waits for a message or a wake-up (Agent::Run), so it
  // does not preempt the thread on its CPU every poll period for nothing.
  virtual bool Pending(const Agent& agent) { return true; }

  // A global agent with AgentOptions::idle_sleep: how long it may sleep on
  // its queue after this round (a message wakes it sooner); zero: it must go
  // on polling (work waits, results are due).
  virtual absl::Duration IdleFor(const Agent& agent) { return absl::ZeroDuration(); }

 private:
  // Atomic: per-CPU agents of one policy may dispatch concurrently.
  std::atomic<uint64_t> unknown_{0};
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SCHEDULER_H_
