// A channel (ghOSt's Channel): the agent's end of one kernel->agent message
// queue. It reads the queue's barrier and messages from shared memory, blocks
// for new ones, and moves threads' messages to itself (ASSOCIATE_QUEUE).
// Creating and destroying queues belongs to the Enclave that owns them.
#ifndef GHOST_SCX_USERSPACE_CHANNEL_H_
#define GHOST_SCX_USERSPACE_CHANNEL_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "userspace/kernel_side.h"
#include "userspace/message.h"

namespace ghost {

class Channel {
 public:
  Channel(KernelSide& kernel, QueueId queue) : kernel_(kernel), queue_(queue) {}

  QueueId id() const { return queue_; }
  bool valid() const { return queue_ != GHOST_QUEUE_NONE; }

  // The agent barrier: messages produced so far. Read it BEFORE Consume():
  // a commit carrying it fails AGENT_STALE if anything arrived after it.
  uint64_t barrier() const;
  // Messages the kernel side could not queue (full ring): never silent.
  uint64_t dropped() const;

  // Hands every waiting message to `fn`, oldest first; never blocks.
  size_t Consume(absl::FunctionRef<void(const Message&)> fn);
  // Blocks until a message arrives or `timeout` passes.
  absl::Status Wait(absl::Duration timeout) { return kernel_.WaitQueue(queue_, timeout); }
  // Polls readable while messages wait; -1 if the kernel side has no such fd.
  int fd() const { return kernel_.QueueFd(queue_); }
  // Sends `tid`'s future messages here (FailedPrecondition while its old
  // queue still holds unread messages about it: retry after that is drained).
  absl::Status Associate(Tid tid) { return kernel_.AssociateQueue(tid, queue_); }
  absl::Status ConfigWakeup(int wake_cpu, bool wake_agent) {
    return kernel_.ConfigQueueWakeup(queue_, wake_cpu, wake_agent);
  }

 private:
  KernelSide& kernel_;
  const QueueId queue_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_CHANNEL_H_
