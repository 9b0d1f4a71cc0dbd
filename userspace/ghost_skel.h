// The generated skeleton of bpf/progs/ghost.bpf.c, with the ABI types its
// globals use declared first. Include this, never skel/ghost.skel.h directly.
#ifndef GHOST_SCX_USERSPACE_GHOST_SKEL_H_
#define GHOST_SCX_USERSPACE_GHOST_SKEL_H_

#include <linux/types.h>

#include "kernel/ghost_abi.h"
#include "skel/ghost.skel.h"

namespace ghost {

// Columns of the class's .bss enclave_runs[enclave][...]: who placed a run
// (enum run_placer in bpf/progs/run_stats.bpf.h).
inline constexpr int kRunCommitted = 0;
inline constexpr int kRunFallback = 1;
inline constexpr int kRunResumed = 2;
inline constexpr int kRunStarved = 3;  // a CPU a higher class held ran it
inline constexpr int kRunRing = 4;     // a fast-path ring entry of its agent
inline constexpr int kRunPinned = 5;   // queued on its one CPU by the class for its agent

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_GHOST_SKEL_H_
