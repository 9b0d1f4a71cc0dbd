// Reading the kernel-written status words (ghOSt's StatusWord): a seqlock, so
// the agent gets a consistent copy without a syscall.
#ifndef GHOST_SCX_USERSPACE_STATUS_WORD_H_
#define GHOST_SCX_USERSPACE_STATUS_WORD_H_

#include <linux/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "kernel/ghost_abi.h"
#include "userspace/kernel_side.h"

namespace ghost {

struct StatusWordSnapshot {
  Tid tid = GHOST_TID_NONE;
  uint64_t seqnum = 0;
  uint32_t flags = 0;
  uint64_t runtime_ns = 0;
  int cpu = -1;
  uint32_t enclave = GHOST_ENCLAVE_NONE;
  uint32_t queue = GHOST_QUEUE_NONE;
  uint32_t pid = 0;
  uint64_t switch_time_ns = 0;

  bool in_use() const { return flags & GHOST_SW_INUSE; }
  bool runnable() const { return flags & GHOST_SW_RUNNABLE; }
  bool on_cpu() const { return flags & GHOST_SW_ON_CPU; }
  bool dead() const { return flags & GHOST_SW_DEAD; }
};

// How many times a reader retries while a writer is inside before giving up.
inline constexpr int kStatusWordMaxRetries = 10000;

// Retries while a writer is inside; Unavailable if it never settles (bounded
// retries).
absl::StatusOr<StatusWordSnapshot> ReadStatusWord(const ghost_status_word& sw);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_STATUS_WORD_H_
