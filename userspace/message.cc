#include "userspace/message.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ghost {

const char* MessageTypeName(uint16_t type) {
  switch (type) {
    case GHOST_MSG_TASK_NEW: return "TASK_NEW";
    case GHOST_MSG_TASK_WAKEUP: return "TASK_WAKEUP";
    case GHOST_MSG_TASK_BLOCKED: return "TASK_BLOCKED";
    case GHOST_MSG_TASK_PREEMPT: return "TASK_PREEMPT";
    case GHOST_MSG_TASK_YIELD: return "TASK_YIELD";
    case GHOST_MSG_TASK_DEAD: return "TASK_DEAD";
    case GHOST_MSG_TASK_DEPARTED: return "TASK_DEPARTED";
    case GHOST_MSG_TASK_AFFINITY_CHANGED: return "TASK_AFFINITY_CHANGED";
    case GHOST_MSG_TASK_PRIORITY_CHANGED: return "TASK_PRIORITY_CHANGED";
    case GHOST_MSG_TASK_ON_CPU: return "TASK_ON_CPU";
    case GHOST_MSG_CPU_TICK: return "CPU_TICK";
    case GHOST_MSG_CPU_AVAILABLE: return "CPU_AVAILABLE";
    case GHOST_MSG_CPU_BUSY: return "CPU_BUSY";
    case GHOST_MSG_CPU_NOT_IDLE: return "CPU_NOT_IDLE";
    case GHOST_MSG_CPU_TIMER_EXPIRED: return "CPU_TIMER_EXPIRED";
    default: return "UNKNOWN";
  }
}

bool IsKnownMessageType(uint16_t type) {
  return (type >= GHOST_MSG_TASK_NEW && type <= GHOST_MSG_TASK_LAST) ||
         (type >= GHOST_MSG_CPU_TICK && type <= GHOST_MSG_CPU_LAST);
}

absl::StatusOr<Message> Message::Decode(const void* data, size_t len) {
  if (data == nullptr || len < sizeof(ghost_msg)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "short message record: %u bytes, need %u", len, sizeof(ghost_msg)));
  }
  ghost_msg raw;
  std::memcpy(&raw, data, sizeof(raw));
  // A newer kernel side may send longer records; never one shorter than ours
  // or longer than what was delivered.
  if (raw.size < sizeof(ghost_msg) || raw.size > len) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad message size field %u (record %u bytes, need >= %u)", raw.size,
        len, sizeof(ghost_msg)));
  }
  if (!IsKnownMessageType(raw.type)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown message type %u", raw.type));
  }
  return Message(raw);
}

bool Message::is_task() const {
  return raw_.type >= GHOST_MSG_TASK_NEW && raw_.type <= GHOST_MSG_TASK_LAST;
}

bool Message::is_cpu() const {
  return raw_.type >= GHOST_MSG_CPU_TICK && raw_.type <= GHOST_MSG_CPU_LAST;
}

std::string Message::ToString() const {
  if (is_cpu()) {
    return absl::StrFormat("%s cpu=%d seq=%u", MessageTypeName(type()), cpu(),
                           seqnum());
  }
  return absl::StrFormat("%s tid=%u seq=%u cpu=%d", MessageTypeName(type()),
                         tid(), seqnum(), cpu());
}

}  // namespace ghost
