// Loading, attaching and detaching the ghost sched_ext class (bpf/progs/ghost.bpf.c)
// through its generated skeleton, and reading why the kernel ended it.
#ifndef GHOST_SCX_USERSPACE_BPF_CLASS_H_
#define GHOST_SCX_USERSPACE_BPF_CLASS_H_

#include <linux/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct ghost_bpf;  // the skeleton (skel/ghost.skel.h)
struct bpf_link;

namespace ghost {

// Where sched_ext publishes its state.
struct SchedExtPaths {
  std::string root = "/sys/kernel/sched_ext";
};

// OK if this host can load a sched_ext class: the kernel has sched_ext and we
// are root. Otherwise FailedPrecondition with a one-line, user-facing reason.
absl::Status CheckSchedExtHost(const SchedExtPaths& paths = {});

// "enabled", "disabled", ... from /sys/kernel/sched_ext/state.
absl::StatusOr<std::string> SchedExtState(const SchedExtPaths& paths = {});

struct ClassOptions {
  absl::Duration slice = absl::Milliseconds(5);  // default time slice
  // The kernel's own stall watchdog (sched_ext_ops.timeout_ms): the last
  // resort that ejects the class; fixed at load, at most 30 s.
  absl::Duration kernel_timeout = absl::Seconds(5);
  // Tests only: bpf_loop iterations between a commit's affinity check and its
  // move, to widen that race window (TOOLCHAIN.md). 0 in production.
  uint32_t race_window_iters = 0;
};

class BpfClass {
 public:
  // Opens and loads the skeleton (verifier runs here) without attaching.
  static absl::StatusOr<std::unique_ptr<BpfClass>> Load(const ClassOptions& opts);
  ~BpfClass();
  BpfClass(const BpfClass&) = delete;
  BpfClass& operator=(const BpfClass&) = delete;

  // Registers the struct_ops: from here on SCHED_EXT threads are ours.
  absl::Status Attach();
  // Unregisters; the kernel moves every thread back to the fair class.
  void Detach();
  bool attached() const { return link_ != nullptr; }

  // OK while the class runs; Aborted with the kernel's reason once the
  // kernel ended it (BPF error, stall, sysrq, ...).
  absl::Status Health() const;

  struct ghost_bpf* skel() { return skel_; }

 private:
  explicit BpfClass(struct ghost_bpf* skel) : skel_(skel) {}
  struct ghost_bpf* skel_;
  struct bpf_link* link_ = nullptr;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_BPF_CLASS_H_
