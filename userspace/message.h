// A decoded kernel->agent message: a copy of one ghost_msg record taken out of
// a queue (ghOSt's Message). Task messages carry the thread's seqnum after the
// event; CPU messages a per-CPU sequence number.
#ifndef GHOST_SCX_USERSPACE_MESSAGE_H_
#define GHOST_SCX_USERSPACE_MESSAGE_H_

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kernel/ghost_abi.h"
#include "userspace/kernel_side.h"

namespace ghost {

class Message {
 public:
  // Validates size and type; unknown type or short record -> InvalidArgument.
  static absl::StatusOr<Message> Decode(const void* data, size_t len);
  // Trusted source (already validated): the record is copied as is.
  explicit Message(const ghost_msg& raw) : raw_(raw) {}

  uint16_t type() const { return raw_.type; }
  bool is_task() const;
  bool is_cpu() const;
  Tid tid() const { return raw_.tid; }
  uint64_t seqnum() const { return raw_.seqnum; }
  // The class queued the thread on its one CPU itself at this event (pinned
  // push): not the agent's to queue or commit until a message without it.
  bool class_held() const { return (raw_.flags & GHOST_MSG_F_CLASS_HELD) != 0; }
  int cpu() const { return static_cast<int>(raw_.cpu); }
  uint64_t time_ns() const { return raw_.time_ns; }
  const ghost_msg& raw() const { return raw_; }

  // "TASK_WAKEUP tid=7 seq=3 cpu=1".
  std::string ToString() const;

 private:
  ghost_msg raw_;
};

// "TASK_NEW", ..., "CPU_TIMER_EXPIRED"; "UNKNOWN" for anything else.
const char* MessageTypeName(uint16_t type);

// True for the types of enum ghost_msg_type (GHOST_MSG_NONE excluded).
bool IsKnownMessageType(uint16_t type);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_MESSAGE_H_
