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
#include "userspace/cpu_list.h"
#include "userspace/kernel_side.h"

namespace ghost {

inline constexpr char kDefaultPinDir[] = "/sys/fs/bpf/ghost";
inline constexpr int kSchedExt = 7;  // SCHED_EXT

// The pinned enroll map of a running agent.
class Enrollment {
 public:
  // NotFound (one line, naming ghost-agent) if no agent pinned its map there;
  // PermissionDenied if the caller may not open it (only root may).
  static absl::StatusOr<Enrollment> Open(const std::string& pin_dir = kDefaultPinDir);
  Enrollment(Enrollment&& o) noexcept : fd_(o.fd_), enclaves_fd_(o.enclaves_fd_) {
    o.fd_ = o.enclaves_fd_ = -1;
  }
  Enrollment& operator=(Enrollment&&) = delete;
  ~Enrollment();

  // The CPUs of `enclave` if it exists (an agent made it; it stays while that
  // agent is dead and not yet replaced). NotFound, in one line, otherwise.
  absl::StatusOr<CpuList> EnclaveCpus(EnclaveId enclave) const;
  // Records that `pid` joins `enclave` when it next enters SCHED_EXT.
  absl::Status Enroll(pid_t pid, EnclaveId enclave);

 private:
  Enrollment(int fd, int enclaves_fd) : fd_(fd), enclaves_fd_(enclaves_fd) {}
  int fd_;
  int enclaves_fd_;  // the class's enclave words
};

// Keeps thread `tid` (0: the caller) on `cpus`: its affinity becomes its
// current one within `cpus`, so an enclave's threads run on the enclave's
// CPUs also when the class's fallback runs them (and never take another
// enclave's). A thread allowed none of `cpus` keeps its own affinity (the
// agent cannot place it; the fallback runs it). Best effort.
void ConfineToCpus(pid_t tid, const CpuList& cpus);

// OK if an agent runs enclave `enclave` of the class pinned at `pin_dir` (its
// enclave word is in use); NotFound in one line if not, or if no class is
// pinned there. A thread enrolled in an enclave nobody runs would silently
// run in the class's FIFO instead.
absl::Status CheckEnclaveInUse(const std::string& pin_dir, EnclaveId enclave);

// Moves every thread of process `pid` into SCHED_EXT (enrolling each first,
// confining it to `cpus`), re-scanning /proc/PID/task until no new thread
// appears, so threads cloned during the walk are not missed. Returns how many
// threads were moved.
absl::StatusOr<int> MoveProcess(Enrollment& enrollment, pid_t pid, EnclaveId enclave,
                                const CpuList& cpus);

// Threads of `pid` from /proc/PID/task.
absl::StatusOr<std::vector<pid_t>> ProcessThreads(pid_t pid);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_ENROLLMENT_H_
