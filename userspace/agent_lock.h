// Liveness of agents: open-file-description (OFD) locks on files outside
// bpffs. The kernel releases them when their holder dies (kill -9 too), so a
// successor never has to guess whether the previous agent is gone, and a
// lock can be tested without taking it (F_OFD_GETLK), so asking "does another
// agent live?" never makes a starting agent fail.
//
//   LOCK_DIR/enclave-N.lock  held by the agent of enclave N for its whole life;
//                            holds its pid (refusals name it, --upgrade signals it)
//   LOCK_DIR/class.lock      held briefly around what touches the class as a
//                            whole: load or re-attach, taking over an enclave,
//                            leaving (is this the last agent? then unload)
//
// Lock files are 0600 and the directory must belong to us and be writable by
// no one else: an unprivileged user who could open a lock file could hold it
// and keep every agent out.
#ifndef GHOST_SCX_USERSPACE_AGENT_LOCK_H_
#define GHOST_SCX_USERSPACE_AGENT_LOCK_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ghost {

inline constexpr char kDefaultLockDir[] = "/run/ghost-scx";

struct AgentLockPaths {
  std::string dir;  // e.g. kDefaultLockDir

  std::string Class() const { return dir + "/class.lock"; }
  std::string Enclave(uint32_t enclave) const;
};

class AgentLock {
 public:
  // Creates `path` (and its directory, 0755) if needed and locks it without
  // waiting. AlreadyExists (one line, naming the holder's pid) if another
  // live holder has it; FailedPrecondition if the directory or the file is
  // not safely ours (a symlink, or writable by others).
  static absl::StatusOr<AgentLock> Acquire(const std::string& path);
  // Like Acquire, but waits up to `timeout_ms` for the holder to let go.
  static absl::StatusOr<AgentLock> AcquireWithin(const std::string& path, int timeout_ms);
  // True if anyone holds `path` (a live agent, or one still leaving; this
  // process too, through another AgentLock). Takes nothing: a starting agent
  // is never refused because someone looked. A missing file: false.
  static bool Held(const std::string& path);
  // The pid the holder of `path` wrote into it, or 0.
  static pid_t Holder(const std::string& path);

  AgentLock(AgentLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  AgentLock& operator=(AgentLock&& o) noexcept;
  ~AgentLock();
  // Lets go now (before this object dies).
  void Unlock();

 private:
  explicit AgentLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_AGENT_LOCK_H_
