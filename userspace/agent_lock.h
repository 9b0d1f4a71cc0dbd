// Liveness: at most one agent drives the class at a time. An flock on a file
// outside bpffs: the kernel releases it when its holder dies (kill -9 too),
// so a successor never has to guess whether the previous agent is gone.
#ifndef GHOST_SCX_USERSPACE_AGENT_LOCK_H_
#define GHOST_SCX_USERSPACE_AGENT_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace ghost {

inline constexpr char kDefaultAgentLock[] = "/run/ghost-scx/agent.lock";

class AgentLock {
 public:
  // Creates `path` (and its directory) if needed and locks it without
  // waiting. AlreadyExists (one line, naming the holder's pid) if another
  // live agent holds it.
  static absl::StatusOr<AgentLock> Acquire(const std::string& path);
  // Like Acquire, but waits up to `timeout_ms` for the holder to let go.
  static absl::StatusOr<AgentLock> AcquireWithin(const std::string& path, int timeout_ms);
  AgentLock(AgentLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  AgentLock& operator=(AgentLock&& o) noexcept;
  ~AgentLock();

 private:
  explicit AgentLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_AGENT_LOCK_H_
