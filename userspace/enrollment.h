// Enrolment: how threads join an enclave from outside the agent (ghost-run).
//
// A running ghost-agent pins the class's `enroll` map (pid -> enclave) in bpffs.
// A thread whose pid is in that map when it switches to SCHED_EXT joins that
// enclave; threads it forks inherit the enclave. Threads of no enclave run in
// the class's fallback FIFO.
#ifndef GHOST_SCX_USERSPACE_ENROLLMENT_H_
#define GHOST_SCX_USERSPACE_ENROLLMENT_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "userspace/kernel_side.h"

namespace ghost {

inline constexpr char kDefaultPinDir[] = "/sys/fs/bpf/ghost";
inline constexpr int kSchedExt = 7;  // SCHED_EXT

// The pinned enroll map of a running agent.
class Enrollment {
 public:
  // NotFound (one line, naming ghost-agent) if no agent pinned its map there.
  static absl::StatusOr<Enrollment> Open(const std::string& pin_dir = kDefaultPinDir);
  Enrollment(Enrollment&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Enrollment& operator=(Enrollment&&) = delete;
  ~Enrollment();

  // Records that `pid` joins `enclave` when it next enters SCHED_EXT.
  absl::Status Enroll(pid_t pid, EnclaveId enclave);

 private:
  explicit Enrollment(int fd) : fd_(fd) {}
  int fd_;
};

// OK if an agent runs enclave `enclave` of the class pinned at `pin_dir` (its
// enclave word is in use); NotFound in one line if not, or if no class is
// pinned there. A thread enrolled in an enclave nobody runs would silently
// run in the class's FIFO instead.
absl::Status CheckEnclaveInUse(const std::string& pin_dir, EnclaveId enclave);

// Moves every thread of process `pid` into SCHED_EXT (enrolling each first),
// re-scanning /proc/PID/task until no new thread appears, so threads cloned
// during the walk are not missed. Returns how many threads were moved.
absl::StatusOr<int> MoveProcess(Enrollment& enrollment, pid_t pid, EnclaveId enclave);

// Threads of `pid` from /proc/PID/task.
absl::StatusOr<std::vector<pid_t>> ProcessThreads(pid_t pid);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_ENROLLMENT_H_
