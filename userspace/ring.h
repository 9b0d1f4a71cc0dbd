// The agent's side of a fast-path ring (issue 9; docs/FAST_PATH.md): pushes
// runnable threads for a NUMA node's idle CPUs, revokes entries nobody claimed
// yet, and reaps every entry's outcome (ran, revoked or dropped as stale) in
// push order. The protocol is kernel/ghost_ring_ops.h, the same code the BPF
// consumers compile; this class adds the agent's bookkeeping and counters.
//
// One agent thread owns a Ring (it is the ring's only reaper). Other
// producers (BPF at wake-up) and consumers (ops.dispatch) work on the same
// memory concurrently through the C operations.
#ifndef GHOST_SCX_USERSPACE_RING_H_
#define GHOST_SCX_USERSPACE_RING_H_

#include <linux/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernel/ghost_ring.h"
#include "userspace/kernel_side.h"

namespace ghost {

// Checks a ring size: a power of two, at least 2, at most GHOST_RING_MAX_SLOTS.
absl::Status ValidateRingSize(uint64_t size);

// Stale reasons a consumer reports (enum ghost_ring_stale_reason).
inline constexpr uint32_t kRingStaleReasons = GHOST_RING_STALE_LAST + 1;

enum class RingPushStatus {
  kPushed,
  kFull,       // the oldest entry's outcome is not reaped yet: keep the thread
  kContended,  // other producers kept winning the position: try again
  kSkipped,    // this push stalled so long that consumers passed its position
               // (GHOST_RING_GAP_NS): not pushed, keep the thread
};

struct RingPush {
  RingPushStatus status = RingPushStatus::kFull;
  uint64_t pos = 0;  // kPushed: the entry's handle for Revoke and its outcome
  bool ok() const { return status == RingPushStatus::kPushed; }
};

enum class RingRevoke {
  kRevoked,      // taken back: no consumer will run it; its outcome is REVOKED
  kLost,         // a consumer claimed it first: RAN or STALE will be reaped
  kUnpublished,  // its producer has not published it yet
  kGone,         // not a live entry (already reaped or revoked, never pushed)
};

enum class RingOutcome { kRan, kRevoked, kStale };

struct RingOutcomeRecord {
  uint64_t pos = 0;
  Tid tid = 0;
  uint64_t seqnum = 0;
  RingOutcome outcome = RingOutcome::kRan;
  uint32_t stale_reason = GHOST_RING_STALE_NONE;  // enum ghost_ring_stale_reason
  uint32_t cpu = ~0u;                             // the consumer's CPU (ran/stale)
};

struct RingStats {
  uint64_t pushes = 0;
  uint64_t full = 0;
  uint64_t contended = 0;
  uint64_t skipped = 0;    // pushes of ours whose position consumers passed
  uint64_t abandoned = 0;  // positions reaped without an entry (anyone's skipped push)
  uint64_t revokes_won = 0;
  uint64_t revokes_lost = 0;
  uint64_t ran = 0;
  uint64_t revoked = 0;
  uint64_t stale = 0;
  std::array<uint64_t, kRingStaleReasons> stale_by_reason = {};
};

class Ring {
 public:
  // Makes `region` an empty ring of `size` slots for `node`. Nobody else may
  // use the region until this returns.
  static absl::StatusOr<Ring> Create(ghost_ring* region, uint32_t size, uint32_t node);
  // Takes over a ring another agent initialised (live upgrade): the layout
  // version and size must be valid; reaping continues where it stopped.
  static absl::StatusOr<Ring> Attach(ghost_ring* region);

  // True if `region` holds an initialised ring (an earlier agent's: Attach).
  static bool InUse(const ghost_ring* region);

  // No syscall: plain stores and atomics. A full ring is a result, never a
  // drop: the caller still owns the thread.
  RingPush Push(Tid tid, uint64_t seqnum, uint64_t push_ns = 0, uint64_t slice_ns = 0);
  RingRevoke Revoke(uint64_t pos);
  // Revokes every entry nobody claimed yet (an earlier agent's, at Attach);
  // returns how many were won.
  int RevokeAll();
  // An agent killed inside a push leaves its position unpublished (or
  // SKIPPED, once consumers pass it) for good, and the reaper would wait there
  // for ever. After Attach, once the earlier agent is gone (it released its
  // enclave lock by exiting): calls `wait_for_bpf_producers` (by default one
  // RCU grace period, membarrier(MEMBARRIER_CMD_GLOBAL): the class's producers
  // run with preemption off, so every one that took a position before has
  // published it or let go), then marks every position below the head read
  // before the wait that is still unpublished or skipped ABANDONED. Returns
  // how many; ReapOne then frees them (stats().abandoned).
  absl::StatusOr<int> AbandonDeadPushes();
  absl::StatusOr<int> AbandonDeadPushes(
      absl::FunctionRef<absl::Status()> wait_for_bpf_producers);
  // The oldest entry's outcome, if it has one; frees its slot. Positions
  // whose push was skipped have none: freed on the way, counted in abandoned.
  std::optional<RingOutcomeRecord> ReapOne();
  // Reaps up to `max` outcomes in push order; returns how many.
  int Reap(absl::FunctionRef<void(const RingOutcomeRecord&)> fn, int max = GHOST_RING_MAX_SLOTS);

  // Lets the class push threads that wake up on this node (or stops it):
  // GHOST_RING_F_WAKEUP, with the slice those entries run for (0: the
  // class's default).
  void SetWakeupPush(bool on, uint64_t slice_ns);
  bool wakeup_push() const;
  // Lets CPUs of the enclave's other nodes take entries from this ring when
  // their own has none (GHOST_RING_F_STEAL), or stops it.
  void SetSteal(bool on);
  bool steal() const;
  // Pushed (by anyone) and its outcome not reaped yet: a live entry's handle.
  bool Unreaped(uint64_t pos) const;

  uint32_t size() const { return size_; }
  uint32_t node() const;
  // Entries pushed and not reaped yet (includes ones with an outcome waiting).
  uint64_t unreaped() const;
  // Positions consumers passed because their producer had not published them
  // for GHOST_RING_GAP_NS (anyone's pushes, since the ring was made).
  uint64_t gaps_skipped() const;
  const RingStats& stats() const { return stats_; }
  ghost_ring* region() const { return ring_; }

 private:
  Ring(ghost_ring* ring, uint32_t size) : ring_(ring), size_(size) {}

  ghost_ring* ring_;
  uint32_t size_;
  RingStats stats_;
};

// A zeroed, cache-line aligned ghost_ring on the heap: the ring's memory for
// tests, benchmarks and the simulator (the real class maps a BPF map instead).
struct RingMemoryDeleter {
  void operator()(ghost_ring* r) const;
};
using RingMemory = std::unique_ptr<ghost_ring, RingMemoryDeleter>;
RingMemory AllocateRingMemory();

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_RING_H_
