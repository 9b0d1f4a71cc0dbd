#include "userspace/ring.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "kernel/ghost_ring_ops.h"

namespace ghost {

absl::Status ValidateRingSize(uint64_t size) {
  if (size < 2 || size > GHOST_RING_MAX_SLOTS || (size & (size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ring size ", size, " is not a power of two between 2 and ",
                     GHOST_RING_MAX_SLOTS));
  }
  return absl::OkStatus();
}

absl::StatusOr<Ring> Ring::Create(ghost_ring* region, uint32_t size, uint32_t node) {
  if (region == nullptr) return absl::InvalidArgumentError("no ring memory");
  if (absl::Status s = ValidateRingSize(size); !s.ok()) return s;
  if (ghost_ring_init(region, size, node) != 0) {
    return absl::InternalError("ghost_ring_init refused a valid size");
  }
  return Ring(region, size);
}

absl::StatusOr<Ring> Ring::Attach(ghost_ring* region) {
  if (region == nullptr) return absl::InvalidArgumentError("no ring memory");
  const uint64_t mask = ghost_ring_mask(region);
  if (mask == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "not an initialised ring (layout version ", region->info.layout_version,
        ", want ", GHOST_RING_LAYOUT_VERSION, "; size ", region->info.size, ")"));
  }
  return Ring(region, static_cast<uint32_t>(mask + 1));
}

bool Ring::InUse(const ghost_ring* region) {
  return region != nullptr && ghost_ring_mask(region) != 0;
}

int Ring::RevokeAll() {
  int won = 0;
  const uint64_t head = GHOST_RING_LOAD(&ring_->head.pos);
  for (uint64_t pos = GHOST_RING_LOAD(&ring_->reaped.pos); pos < head; ++pos) {
    if (Revoke(pos) == RingRevoke::kRevoked) ++won;
  }
  return won;
}

// One RCU grace period: BPF programs run inside RCU read-side sections.
static absl::Status WaitRcuGracePeriod() {
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) {
    return absl::Status(absl::ErrnoToStatusCode(errno),
                        absl::StrCat("membarrier(MEMBARRIER_CMD_GLOBAL): ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Ring::AbandonDeadPushes() { return AbandonDeadPushes(WaitRcuGracePeriod); }

absl::StatusOr<int> Ring::AbandonDeadPushes(
    absl::FunctionRef<absl::Status()> wait_for_bpf_producers) {
  // Unpublished now: the dead agent's, or a BPF producer's still in its window.
  auto unpublished = [&](uint64_t pos) {
    return ghost_ring_word_unpublished(
        GHOST_RING_LOAD(&ghost_ring_slot_at(ring_, size_ - 1, pos)->state), pos);
  };
  const uint64_t head = GHOST_RING_LOAD(&ring_->head.pos);
  const uint64_t from = GHOST_RING_LOAD(&ring_->reaped.pos);
  bool any = false;
  for (uint64_t pos = from; pos < head && !any; ++pos) any = unpublished(pos);
  if (!any) return 0;  // the common case: no wait
  if (absl::Status s = wait_for_bpf_producers(); !s.ok()) return s;
  int marked = 0;
  for (uint64_t pos = from; pos < head; ++pos) marked += ghost_ring_abandon(ring_, pos);
  return marked;
}

uint32_t Ring::node() const { return ring_->info.node; }

void Ring::SetWakeupPush(bool on, uint64_t slice_ns) {
  // The slice first: a producer that sees the flag reads a current slice.
  __atomic_store_n(&ring_->info.wakeup_slice_ns, slice_ns, __ATOMIC_RELAXED);
  if (on) {
    __atomic_fetch_or(&ring_->info.flags, GHOST_RING_F_WAKEUP, __ATOMIC_SEQ_CST);
  } else {
    __atomic_fetch_and(&ring_->info.flags, ~GHOST_RING_F_WAKEUP, __ATOMIC_SEQ_CST);
  }
}

void Ring::SetSteal(bool on) {
  if (on) {
    __atomic_fetch_or(&ring_->info.flags, GHOST_RING_F_STEAL, __ATOMIC_SEQ_CST);
  } else {
    __atomic_fetch_and(&ring_->info.flags, ~GHOST_RING_F_STEAL, __ATOMIC_SEQ_CST);
  }
}

bool Ring::steal() const {
  return (__atomic_load_n(&ring_->info.flags, __ATOMIC_RELAXED) & GHOST_RING_F_STEAL) != 0;
}

bool Ring::wakeup_push() const {
  return (__atomic_load_n(&ring_->info.flags, __ATOMIC_RELAXED) & GHOST_RING_F_WAKEUP) != 0;
}

bool Ring::Unreaped(uint64_t pos) const {
  return pos >= GHOST_RING_LOAD(&ring_->reaped.pos) && pos < GHOST_RING_LOAD(&ring_->head.pos);
}

uint64_t Ring::gaps_skipped() const { return GHOST_RING_LOAD(&ring_->tail.skips); }

uint64_t Ring::unreaped() const {
  return GHOST_RING_LOAD(&ring_->head.pos) - GHOST_RING_LOAD(&ring_->reaped.pos);
}

RingPush Ring::Push(Tid tid, uint64_t seqnum, uint64_t push_ns, uint64_t slice_ns) {
  RingPush r;
  __u64 pos = 0;
  switch (ghost_ring_push(ring_, tid, seqnum, push_ns, slice_ns, &pos)) {
    case GHOST_RING_PUSH_OK:
      ++stats_.pushes;
      r.status = RingPushStatus::kPushed;
      r.pos = pos;
      return r;
    case GHOST_RING_PUSH_SKIPPED:
      ++stats_.skipped;
      r.status = RingPushStatus::kSkipped;
      r.pos = pos;
      return r;
    case GHOST_RING_PUSH_CONTENDED:
      ++stats_.contended;
      r.status = RingPushStatus::kContended;
      return r;
    case GHOST_RING_PUSH_FULL:
    default:  // BAD_RING cannot happen: Create/Attach checked the ring
      ++stats_.full;
      r.status = RingPushStatus::kFull;
      return r;
  }
}

RingRevoke Ring::Revoke(uint64_t pos) {
  switch (ghost_ring_revoke(ring_, pos)) {
    case GHOST_RING_REVOKE_WON:
      ++stats_.revokes_won;
      return RingRevoke::kRevoked;
    case GHOST_RING_REVOKE_LOST:
      ++stats_.revokes_lost;
      return RingRevoke::kLost;
    case GHOST_RING_REVOKE_UNPUBLISHED:
      return RingRevoke::kUnpublished;
    default:
      return RingRevoke::kGone;
  }
}

std::optional<RingOutcomeRecord> Ring::ReapOne() {
  ghost_ring_outcome o;
  for (;;) {
    if (ghost_ring_reap(ring_, &o) != 1) return std::nullopt;
    if (o.state != GHOST_RING_ABANDONED) break;
    ++stats_.abandoned;  // a skipped push: no entry, nothing to report
  }
  RingOutcomeRecord rec;
  rec.pos = o.pos;
  rec.tid = o.tid;
  rec.seqnum = o.seqnum;
  rec.cpu = o.cpu;
  switch (o.state) {
    case GHOST_RING_RAN:
      rec.outcome = RingOutcome::kRan;
      ++stats_.ran;
      break;
    case GHOST_RING_REVOKED:
      rec.outcome = RingOutcome::kRevoked;
      ++stats_.revoked;
      break;
    default:  // GHOST_RING_STALE: ghost_ring_reap returns outcomes only
      rec.outcome = RingOutcome::kStale;
      // A consumer's reason is shared memory: clamp it before indexing.
      rec.stale_reason =
          o.reason < kRingStaleReasons ? o.reason : uint32_t{GHOST_RING_STALE_NONE};
      ++stats_.stale;
      ++stats_.stale_by_reason[rec.stale_reason];
      break;
  }
  return rec;
}

int Ring::Reap(absl::FunctionRef<void(const RingOutcomeRecord&)> fn, int max) {
  int n = 0;
  while (n < max) {
    std::optional<RingOutcomeRecord> rec = ReapOne();
    if (!rec) break;
    fn(*rec);
    ++n;
  }
  return n;
}

// The layout is an ABI: every index and every slot on its own cache line.
static_assert(sizeof(ghost_ring_slot) == GHOST_RING_CACHELINE);
static_assert(sizeof(ghost_ring_info) == GHOST_RING_CACHELINE);
static_assert(sizeof(ghost_ring_index) == GHOST_RING_CACHELINE);
static_assert(sizeof(ghost_ring_tail) == GHOST_RING_CACHELINE);
static_assert(offsetof(ghost_ring, head) == 1 * GHOST_RING_CACHELINE);
static_assert(offsetof(ghost_ring, tail) == 2 * GHOST_RING_CACHELINE);
static_assert(offsetof(ghost_ring, reaped) == 3 * GHOST_RING_CACHELINE);
static_assert(offsetof(ghost_ring, slots) == 4 * GHOST_RING_CACHELINE);
static_assert((GHOST_RING_MAX_SLOTS & (GHOST_RING_MAX_SLOTS - 1)) == 0);

void RingMemoryDeleter::operator()(ghost_ring* r) const {
  ::operator delete(r, std::align_val_t{GHOST_RING_CACHELINE});
}

RingMemory AllocateRingMemory() {
  void* p = ::operator new(sizeof(ghost_ring), std::align_val_t{GHOST_RING_CACHELINE});
  std::memset(p, 0, sizeof(ghost_ring));
  return RingMemory(static_cast<ghost_ring*>(p));
}

}  // namespace ghost
