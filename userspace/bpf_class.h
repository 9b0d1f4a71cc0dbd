// Loading, attaching and detaching the ghost sched_ext class (bpf/progs/ghost.bpf.c)
// through its generated skeleton, and reading why the kernel ended it.
#ifndef GHOST_SCX_USERSPACE_BPF_CLASS_H_
#define GHOST_SCX_USERSPACE_BPF_CLASS_H_

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kernel/ghost_abi.h"
#include "userspace/class_pins.h"

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

// The shortest stall timeout the class accepts: the kernel's ext deadline
// server lends a CPU held by a higher class to a waiting thread after up to
// ~1 s (its default period less its runtime), and the class must outlast it.
inline constexpr absl::Duration kMinKernelTimeout = absl::Seconds(2);

struct ClassOptions {
  absl::Duration slice = absl::Milliseconds(5);  // default time slice
  // The kernel's own stall watchdog (sched_ext_ops.timeout_ms): the last
  // resort that ejects the class; fixed at load, at most 30 s.
  absl::Duration kernel_timeout = absl::Seconds(5);
  // Tests only: bpf_loop iterations between a commit's affinity check and its
  // move, to widen that race window (TOOLCHAIN.md). 0 in production.
  uint32_t race_window_iters = 0;
  // Where the loader reads the NUMA topology for the fast path's consumers.
  std::string sysfs_root = "/sys";
};

// The fast path's CPU -> NUMA node table, as the class is loaded with it
// (fast_path.bpf.h) and publishes it (class_info.cpu_node).
struct NodeTable {
  uint32_t nr_nodes = 1;
  std::array<uint8_t, GHOST_MAX_CPUS> cpu_node = {};
};
// From sysfs: dense node ids, folded modulo GHOST_RING_MAX_NODES; one node if
// the topology cannot be read.
NodeTable ReadNodeTable(const std::string& sysfs_root = "/sys");

// Modes of the pins (Pin sets them explicitly): root's alone.
inline constexpr unsigned kPinDirMode = 0700;
inline constexpr unsigned kPinFileMode = 0600;

// OK if `dir` is a real directory of ours that no one else may write: the
// only kind the class is pinned in or re-attached from.
absl::Status CheckPinDir(const std::string& dir);

// Looks at PIN_DIR and sched_ext's sysfs: is a pinned ghost class running?
ClassProbe ProbeClass(const ClassPins& pins, const SchedExtPaths& paths = {});

class BpfClass {
 public:
  // Opens and loads the skeleton (verifier runs here) without attaching.
  static absl::StatusOr<std::unique_ptr<BpfClass>> Load(const ClassOptions& opts);
  // Re-attaches to the class an earlier agent pinned under `pins` (which
  // ProbeClass found running): refuses pins in a directory that is not
  // safely ours (PermissionDenied, CheckPinDir), checks the ABI version from
  // the pinned class_info (mismatch: FailedPrecondition naming both; every
  // other failure has another code), reuses every pinned map and loads only
  // the syscall programs against them. The struct_ops is neither loaded nor
  // attached again: the running class stays. Only reads the class; drop the
  // result with Release(), never by destroying it (that unloads the class).
  static absl::StatusOr<std::unique_ptr<BpfClass>> Reattach(const ClassPins& pins);
  // Removes what a class that is gone left pinned (Classify said kStale).
  static void RemoveStalePins(const ClassPins& pins);
  // Unloads (Detach) unless Release() was called.
  ~BpfClass();
  BpfClass(const BpfClass&) = delete;
  BpfClass& operator=(const BpfClass&) = delete;

  // Registers the struct_ops: from here on SCHED_EXT threads are ours.
  absl::Status Attach();
  // Pins the link and every map under `pins`, so the class outlives this
  // process: if it dies, the class keeps running (the BPF fallback runs the
  // enclave's threads) until a new agent re-attaches.
  absl::Status Pin(const ClassPins& pins);
  // Unpins everything and unregisters; the kernel moves every thread back to
  // the fair class (sched_ext state becomes 'disabled').
  void Detach();
  // Lets go without unloading: the pinned class keeps running for a
  // successor (live upgrade). Only meaningful once pinned.
  void Release();
  bool attached() const { return link_fd_ >= 0; }
  bool reattached() const { return reattached_; }

  // OK while the class runs; Aborted with the kernel's reason once the
  // kernel ended it (BPF error, stall, sysrq, ...).
  absl::Status Health() const;
  // Once Health() failed for an error or a stall: sched_ext's debug dump of
  // that moment (every CPU and runnable thread, with the class's own lines:
  // bpf/progs/dump.bpf.h). Empty for an orderly end (unregistered, SysRq-S).
  std::string ExitDump() const;

  struct ghost_bpf* skel() { return skel_; }

 private:
  explicit BpfClass(struct ghost_bpf* skel) : skel_(skel) {}
  void Unpin();

  struct ghost_bpf* skel_;
  struct bpf_link* link_ = nullptr;  // ours, if this object attached the class
  int link_fd_ = -1;                 // the class's link (ours or the pinned one)
  bool reattached_ = false;
  bool released_ = false;
  ClassPins pins_;                   // dir empty: not pinned
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_BPF_CLASS_H_
