// Agent wake-ups: how one agent wakes another. ghOSt's agents are woken when
// work is handed to them (a thread moved to their runqueue by another CPU's
// agent), not only by messages in their own queue. Here each Agent owns an
// eventfd that its wait watches next to its queue.
#ifndef GHOST_SCX_USERSPACE_AGENT_WAKEUP_H_
#define GHOST_SCX_USERSPACE_AGENT_WAKEUP_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ghost {

class AgentWakeup {
 public:
  // Without an eventfd (out of descriptors) valid() is false, Wake() does
  // nothing and waiters fall back to their queue's own wait.
  AgentWakeup();
  ~AgentWakeup();
  AgentWakeup(const AgentWakeup&) = delete;
  AgentWakeup& operator=(const AgentWakeup&) = delete;

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // From any thread. A wake-up that comes before the wait is not lost.
  void Wake();

  // Blocks until Wake() was called (consuming every wake-up so far),
  // `queue_fd` polls readable (-1: none), or `timeout` passes:
  // DeadlineExceeded then. EINTR counts as a wake-up.
  absl::Status Wait(int queue_fd, absl::Duration timeout);

 private:
  int fd_ = -1;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_AGENT_WAKEUP_H_
