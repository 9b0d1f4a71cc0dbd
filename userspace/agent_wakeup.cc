#include "userspace/agent_wakeup.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "absl/strings/str_format.h"

namespace ghost {

AgentWakeup::AgentWakeup() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

AgentWakeup::~AgentWakeup() {
  if (fd_ >= 0) close(fd_);
}

void AgentWakeup::Wake() {
  if (fd_ < 0) return;
  const uint64_t one = 1;
  // EAGAIN only when the counter is saturated: the waiter is woken anyway.
  (void)!write(fd_, &one, sizeof(one));
}

absl::Status AgentWakeup::Wait(int queue_fd, absl::Duration timeout) {
  pollfd fds[2] = {{.fd = fd_, .events = POLLIN, .revents = 0},
                   {.fd = queue_fd, .events = POLLIN, .revents = 0}};
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  const int n = poll(fds, 2, ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms));
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::InternalError(absl::StrFormat("waiting for a wake-up: %s", strerror(errno)));
  }
  if (fds[0].revents & POLLIN) {
    uint64_t count;
    (void)!read(fd_, &count, sizeof(count));  // resets the counter
  }
  if (n == 0) return absl::DeadlineExceededError("no message and no wake-up");
  return absl::OkStatus();
}

}  // namespace ghost
