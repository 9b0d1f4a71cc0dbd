#include "userspace/channel.h"

namespace ghost {

uint64_t Channel::barrier() const {
  return __atomic_load_n(&kernel_.QueueWord(queue_).barrier, __ATOMIC_ACQUIRE);
}

uint64_t Channel::dropped() const {
  return __atomic_load_n(&kernel_.QueueWord(queue_).dropped, __ATOMIC_ACQUIRE);
}

size_t Channel::Consume(absl::FunctionRef<void(const Message&)> fn) {
  return kernel_.ConsumeQueue(queue_, [&fn](const ghost_msg& raw) { fn(Message(raw)); });
}

}  // namespace ghost
