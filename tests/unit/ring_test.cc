// The fast path's ring protocol (kernel/ghost_ring_ops.h) and the agent's
// Ring: one thread step by step, then producers, consumers and a revoking
// reaper racing, with every push accounted for exactly once.
#include <linux/types.h>

#include <atomic>
#include <cstdint>
#include <functional>

// Stress tests widen the window between reading a slot word and the CAS on it
// in this file's copies of the operations (the consumers' and the second
// producer's; the Ring class keeps its own, unwidened). With the CASes intact
// nothing changes; with one replaced by a check and a store, the races these
// tests look for happen every run instead of now and then.
namespace {
std::atomic<uint32_t> race_window_spins{0};
void RaceWindow() {
  const uint32_t max = race_window_spins.load(std::memory_order_relaxed);
  if (max == 0) return;
  thread_local uint32_t x = 12345;
  x = x * 1103515245u + 12345u;
  for (uint32_t i = (x >> 8) % max; i > 0; --i) asm volatile("" ::: "memory");
}
}  // namespace
#define GHOST_RING_RACE_WINDOW() RaceWindow()
#include "tests/ring_push_pause.h"
#include "kernel/ghost_ring_ops.h"
#include "userspace/ring.h"

#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ghost {
namespace {

class RingTest : public ::testing::Test {
 protected:
  Ring Make(uint32_t size) {
    absl::StatusOr<Ring> r = Ring::Create(mem_.get(), size, /*node=*/1);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }
  ghost_ring* raw() { return mem_.get(); }
  // What a consumer (ops.dispatch) does first.
  std::optional<ghost_ring_entry> Claim(uint32_t cpu = 0) {
    ghost_ring_entry e;
    const int got = ghost_ring_claim(raw(), cpu, 0, &e);
    EXPECT_GE(got, 0);
    if (got != 1) return std::nullopt;
    return e;
  }

  RingMemory mem_ = AllocateRingMemory();
};

TEST_F(RingTest, SizesMustBePowersOfTwoWithinTheMaximum) {
  for (uint32_t bad : {0u, 1u, 3u, 6u, 1000u, GHOST_RING_MAX_SLOTS * 2u}) {
    EXPECT_FALSE(Ring::Create(raw(), bad, 0).ok()) << bad;
    EXPECT_FALSE(ValidateRingSize(bad).ok()) << bad;
  }
  for (uint32_t good : {2u, 4u, 1024u, uint32_t{GHOST_RING_MAX_SLOTS}}) {
    absl::StatusOr<Ring> r = Ring::Create(raw(), good, 0);
    ASSERT_TRUE(r.ok()) << good;
    EXPECT_EQ(r->size(), good);
  }
}

TEST_F(RingTest, AttachRefusesUninitialisedOrCorruptMemory) {
  EXPECT_FALSE(Ring::Attach(raw()).ok());  // zeroed: no layout version
  Make(8);
  raw()->info.size = 6;  // the agent's memory is not trusted
  EXPECT_FALSE(Ring::Attach(raw()).ok());
  ghost_ring_entry e;
  __u64 pos;
  EXPECT_EQ(ghost_ring_claim(raw(), 0, 0, &e), -1);
  EXPECT_EQ(ghost_ring_push(raw(), 1, 1, 0, 0, &pos), GHOST_RING_PUSH_BAD_RING);
  raw()->info.size = 8;
  raw()->info.layout_version = GHOST_RING_LAYOUT_VERSION + 1;
  EXPECT_FALSE(Ring::Attach(raw()).ok());
  EXPECT_EQ(ghost_ring_claim(raw(), 0, 0, &e), -1);
}

TEST_F(RingTest, PushClaimCompleteReapsRan) {
  Ring ring = Make(4);
  RingPush p = ring.Push(/*tid=*/42, /*seqnum=*/7, /*push_ns=*/100, /*slice_ns=*/5000);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.pos, 0u);
  EXPECT_FALSE(ring.ReapOne());  // READY has no outcome yet

  std::optional<ghost_ring_entry> e = Claim(/*cpu=*/3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->pos, p.pos);
  EXPECT_EQ(e->tid, 42u);
  EXPECT_EQ(e->seqnum, 7u);
  EXPECT_EQ(e->push_ns, 100u);
  EXPECT_EQ(e->slice_ns, 5000u);
  EXPECT_FALSE(Claim());         // nothing else is READY
  EXPECT_FALSE(ring.ReapOne());  // CLAIMED has no outcome yet
  EXPECT_EQ(ring.Revoke(p.pos), RingRevoke::kLost);

  EXPECT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  EXPECT_EQ(ghost_ring_complete(raw(), e->pos), -1);  // only once
  std::optional<RingOutcomeRecord> o = ring.ReapOne();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->outcome, RingOutcome::kRan);
  EXPECT_EQ(o->pos, p.pos);
  EXPECT_EQ(o->tid, 42u);
  EXPECT_EQ(o->seqnum, 7u);
  EXPECT_EQ(o->cpu, 3u);
  EXPECT_FALSE(ring.ReapOne());
  EXPECT_EQ(ring.unreaped(), 0u);
  EXPECT_EQ(ring.stats().pushes, 1u);
  EXPECT_EQ(ring.stats().ran, 1u);
  EXPECT_EQ(ring.stats().revokes_lost, 1u);
}

TEST_F(RingTest, RevokedEntryIsNeverClaimed) {
  Ring ring = Make(4);
  RingPush p = ring.Push(5, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(ring.Revoke(p.pos), RingRevoke::kRevoked);
  EXPECT_EQ(ring.Revoke(p.pos), RingRevoke::kGone);  // the first call won
  EXPECT_FALSE(Claim());
  EXPECT_EQ(ghost_ring_complete(raw(), p.pos), -1);
  EXPECT_EQ(ghost_ring_fail(raw(), p.pos, GHOST_RING_STALE_SEQNUM), -1);
  std::optional<RingOutcomeRecord> o = ring.ReapOne();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->outcome, RingOutcome::kRevoked);
  EXPECT_EQ(o->tid, 5u);
  EXPECT_EQ(ring.Revoke(p.pos), RingRevoke::kGone);  // reaped
  EXPECT_EQ(ring.Revoke(p.pos + 1), RingRevoke::kGone);  // never pushed
  EXPECT_EQ(ring.Revoke(p.pos + 4), RingRevoke::kGone);  // a later lap, never pushed
  EXPECT_EQ(ring.stats().revokes_won, 1u);
}

TEST_F(RingTest, StaleDropCarriesItsReason) {
  Ring ring = Make(4);
  RingPush p = ring.Push(9, 3);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(ghost_ring_fail(raw(), p.pos, GHOST_RING_STALE_AFFINITY), -1);  // not claimed
  std::optional<ghost_ring_entry> e = Claim(2);
  ASSERT_TRUE(e);
  EXPECT_EQ(ghost_ring_fail(raw(), e->pos, GHOST_RING_STALE_AFFINITY), 0);
  EXPECT_EQ(ghost_ring_complete(raw(), e->pos), -1);  // an outcome is final
  std::optional<RingOutcomeRecord> o = ring.ReapOne();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->outcome, RingOutcome::kStale);
  EXPECT_EQ(o->stale_reason, uint32_t{GHOST_RING_STALE_AFFINITY});
  EXPECT_EQ(o->cpu, 2u);
  EXPECT_EQ(ring.stats().stale_by_reason[GHOST_RING_STALE_AFFINITY], 1u);
}

TEST_F(RingTest, ReapGoesInPushOrder) {
  Ring ring = Make(8);
  RingPush a = ring.Push(1, 1), b = ring.Push(2, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ring.Revoke(b.pos), RingRevoke::kRevoked);
  EXPECT_FALSE(ring.ReapOne());  // a is still READY: b waits behind it
  std::optional<ghost_ring_entry> e = Claim();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tid, 1u);  // b was revoked: only a is claimable
  ASSERT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  std::vector<RingOutcomeRecord> out;
  EXPECT_EQ(ring.Reap([&](const RingOutcomeRecord& o) { out.push_back(o); }), 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].tid, 1u);
  EXPECT_EQ(out[0].outcome, RingOutcome::kRan);
  EXPECT_EQ(out[1].tid, 2u);
  EXPECT_EQ(out[1].outcome, RingOutcome::kRevoked);
}

TEST_F(RingTest, FullRingIsAResultUntilTheOldestIsReaped) {
  Ring ring = Make(4);
  std::vector<uint64_t> pos;
  for (int i = 0; i < 4; ++i) {
    RingPush p = ring.Push(100 + i, 1);
    ASSERT_TRUE(p.ok()) << i;
    pos.push_back(p.pos);
  }
  RingPush full = ring.Push(200, 1);
  EXPECT_EQ(full.status, RingPushStatus::kFull);
  // An outcome alone does not free the slot: the agent has not read it.
  std::optional<ghost_ring_entry> e = Claim();
  ASSERT_TRUE(e);
  ASSERT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  EXPECT_EQ(ring.Push(200, 1).status, RingPushStatus::kFull);
  EXPECT_EQ(ring.stats().full, 2u);
  ASSERT_TRUE(ring.ReapOne());
  RingPush p = ring.Push(200, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.pos, 4u);
  EXPECT_EQ(ring.unreaped(), 4u);
  // The other entries are all still there, in order.
  for (uint64_t want : {101u, 102u, 103u, 200u}) {
    std::optional<ghost_ring_entry> c = Claim();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->tid, want);
    ASSERT_EQ(ghost_ring_complete(raw(), c->pos), 0);
  }
  EXPECT_EQ(ring.Reap([](const RingOutcomeRecord&) {}), 4);
}

TEST_F(RingTest, WrapsAroundManyLaps) {
  Ring ring = Make(2);
  absl::BitGen rng;
  for (uint64_t i = 0; i < 10000; ++i) {
    RingPush p = ring.Push(i + 1, i);
    ASSERT_TRUE(p.ok()) << i;
    ASSERT_EQ(p.pos, i);
    const int what = absl::Uniform(rng, 0, 3);
    if (what == 0) {
      ASSERT_EQ(ring.Revoke(p.pos), RingRevoke::kRevoked);
    } else {
      std::optional<ghost_ring_entry> e = Claim();
      ASSERT_TRUE(e);
      ASSERT_EQ(e->tid, i + 1);
      ASSERT_EQ(what == 1 ? ghost_ring_complete(raw(), e->pos)
                          : ghost_ring_fail(raw(), e->pos, GHOST_RING_STALE_SEQNUM),
                0);
    }
    std::optional<RingOutcomeRecord> o = ring.ReapOne();
    ASSERT_TRUE(o);
    ASSERT_EQ(o->pos, i);
    ASSERT_EQ(o->outcome, what == 0   ? RingOutcome::kRevoked
                          : what == 1 ? RingOutcome::kRan
                                      : RingOutcome::kStale);
  }
  EXPECT_EQ(raw()->head.pos, 10000u);
  EXPECT_EQ(raw()->reaped.pos, 10000u);
  EXPECT_LE(raw()->tail.pos, 10000u);
}

TEST_F(RingTest, AttachContinuesWhereTheOldAgentStopped) {
  {
    Ring old = Make(4);
    ASSERT_TRUE(old.Push(1, 1).ok());
    ASSERT_TRUE(old.Push(2, 1).ok());
    ASSERT_TRUE(old.ReapOne() == std::nullopt);
  }
  absl::StatusOr<Ring> ring = Ring::Attach(raw());
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->size(), 4u);
  EXPECT_EQ(ring->node(), 1u);
  EXPECT_EQ(ring->unreaped(), 2u);
  EXPECT_EQ(ring->Revoke(0), RingRevoke::kRevoked);
  std::optional<RingOutcomeRecord> o = ring->ReapOne();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->tid, 1u);
  EXPECT_EQ(ring->Push(3, 1).pos, 2u);
}

// A producer that took a position and stopped before publishing it (preempted
// between the head CAS and the READY store): the entries behind it stay
// claimable within GHOST_RING_SCAN, the consumer index waits at the gap, and
// the gap's own entry is claimable once published.
TEST_F(RingTest, UnpublishedEntryDoesNotBlockTheOnesBehindIt) {
  Ring ring = Make(64);
  // Position 0: reserved the way ghost_ring_push does, never published.
  raw()->head.pos = 1;
  // (The word stays EMPTY(0): position taken, nothing published.)
  EXPECT_EQ(ring.Revoke(0), RingRevoke::kUnpublished);
  for (int i = 1; i < GHOST_RING_SCAN + 4; ++i) ASSERT_TRUE(ring.Push(i, 1).ok());
  for (int i = 1; i < GHOST_RING_SCAN; ++i) {
    std::optional<ghost_ring_entry> e = Claim();
    ASSERT_TRUE(e) << i;
    EXPECT_EQ(e->tid, static_cast<uint64_t>(i));
    ASSERT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  }
  // The bound: nothing further than GHOST_RING_SCAN past the gap is seen.
  EXPECT_FALSE(Claim());
  EXPECT_EQ(raw()->tail.pos, 0u);
  EXPECT_FALSE(ring.ReapOne());  // the reaper waits at the gap too
  // The producer resumes.
  raw()->slots[0].tid = 77;
  raw()->slots[0].seqnum = 1;
  raw()->slots[0].state = GHOST_RING_WORD(0, GHOST_RING_READY);
  std::optional<ghost_ring_entry> e = Claim();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tid, 77u);
  ASSERT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  e = Claim();  // the consumer index moved past everything finished
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tid, static_cast<uint64_t>(GHOST_RING_SCAN));
  EXPECT_GE(raw()->tail.pos, static_cast<uint64_t>(GHOST_RING_SCAN));
  ASSERT_EQ(ghost_ring_complete(raw(), e->pos), 0);
  EXPECT_EQ(ring.Reap([](const RingOutcomeRecord&) {}), GHOST_RING_SCAN + 1);
}

// A producer stalled inside its window (at 0: position taken; at 1: fields
// written, not published) for GHOST_RING_GAP_NS: consumers time the gap from
// their first sight of it, pass it then (not before), claim everything behind
// it, and the producer's push reports SKIPPED instead of publishing; the slot
// is freed as ABANDONED once the producer is done with it, never before.
TEST_F(RingTest, ConsumersPassAProducerStalledForTheGapTime) {
  for (int stall_at : {0, 1}) {
    SCOPED_TRACE(stall_at);
    mem_ = AllocateRingMemory();
    Ring ring = Make(64);
    constexpr uint64_t kT0 = 5'000'000;  // the consumers' clock (ns) at first sight
    constexpr int kBehind = GHOST_RING_SCAN + 8;
    std::vector<uint64_t> claimed;
    auto claim_at = [&](uint64_t now) {
      ghost_ring_entry e;
      if (ghost_ring_claim(raw(), 3, now, &e) != 1) return false;
      claimed.push_back(e.tid);
      EXPECT_EQ(ghost_ring_complete(raw(), e.pos), 0);
      return true;
    };
    bool paused = false;
    ghost_test::push_pause = [&](int at) {
      if (at != stall_at) return;
      paused = true;
      for (int i = 1; i <= kBehind; ++i) ASSERT_TRUE(ring.Push(i, 1).ok()) << i;
      ASSERT_TRUE(claim_at(kT0));                      // first sight: the clock starts
      ASSERT_TRUE(claim_at(kT0 + GHOST_RING_GAP_NS - 1));  // not yet
      EXPECT_EQ(raw()->tail.pos, 0u);
      EXPECT_EQ(ring.gaps_skipped(), 0u);
      while (claim_at(kT0 + GHOST_RING_GAP_NS - 1)) {
      }
      EXPECT_EQ(claimed.size(), static_cast<size_t>(GHOST_RING_SCAN - 1))
          << "only GHOST_RING_SCAN behind an unpassed gap";
      while (claim_at(kT0 + GHOST_RING_GAP_NS)) {
      }
      EXPECT_EQ(claimed.size(), static_cast<size_t>(kBehind)) << "passed: all behind it";
      EXPECT_EQ(ring.gaps_skipped(), 1u);
      EXPECT_EQ(raw()->slots[0].state, GHOST_RING_WORD(0, GHOST_RING_SKIPPED));
      EXPECT_EQ(ring.Revoke(0), RingRevoke::kGone);
      EXPECT_FALSE(ring.ReapOne()) << "freed while its producer may still write it";
    };
    __u64 pos = ~0ull;
    const int got = ghost_ring_push(raw(), 99, 1, 0, 0, &pos);
    ghost_test::push_pause = nullptr;
    ASSERT_TRUE(paused);
    EXPECT_EQ(got, GHOST_RING_PUSH_SKIPPED);
    EXPECT_EQ(pos, 0u);
    EXPECT_EQ(raw()->slots[0].state, GHOST_RING_WORD(0, GHOST_RING_ABANDONED));
    for (uint64_t tid : claimed) EXPECT_NE(tid, 99u) << "a skipped push ran";
    std::vector<uint64_t> reaped;
    ring.Reap([&](const RingOutcomeRecord& o) { reaped.push_back(o.tid); });
    EXPECT_EQ(reaped.size(), static_cast<size_t>(kBehind));
    EXPECT_EQ(ring.stats().abandoned, 1u);
    EXPECT_EQ(ring.unreaped(), 0u);
    // The slot serves its next lap.
    for (int i = 0; i < 64; ++i) ASSERT_TRUE(ring.Push(1000 + i, 1).ok()) << i;
  }
}

// A producer that publishes within the gap time keeps its position, however
// many consumers looked at the gap meanwhile.
TEST_F(RingTest, AGapShorterThanTheGapTimeIsNotPassed) {
  Ring ring = Make(64);
  ghost_test::push_pause = [&](int at) {
    if (at != 1) return;
    ghost_ring_entry e;
    for (uint64_t now = 1; now < GHOST_RING_GAP_NS; now += GHOST_RING_GAP_NS / 8) {
      EXPECT_EQ(ghost_ring_claim(raw(), 0, now, &e), 0);
    }
  };
  __u64 pos = ~0ull;
  const int got = ghost_ring_push(raw(), 7, 1, 0, 0, &pos);
  ghost_test::push_pause = nullptr;
  ASSERT_EQ(got, GHOST_RING_PUSH_OK);
  std::optional<ghost_ring_entry> e = Claim();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tid, 7u);
  EXPECT_EQ(ring.gaps_skipped(), 0u);
}

// An agent killed inside a push leaves its position unpublished for good
// (EMPTY, or SKIPPED once consumers pass it): the reaper would wait there for
// ever, and the ring would fill. The agent that takes the ring over marks it
// ABANDONED after the wait for BPF producers, and reaping goes on.
TEST_F(RingTest, AbandonDeadPushesFreesWhatAKilledAgentLeft) {
  for (bool passed : {false, true}) {
    SCOPED_TRACE(passed ? "passed by consumers" : "never passed");
    mem_ = AllocateRingMemory();
    Ring old = Make(8);
    ASSERT_TRUE(old.Push(1, 1).ok());  // position 0
    raw()->head.pos = 2;               // position 1: taken, then the agent was killed
    for (uint64_t tid = 2; tid <= 4; ++tid) {  // the class's wake-up pushes behind it
      __u64 pos;
      ASSERT_EQ(ghost_ring_push(raw(), tid, 1, 0, 0, &pos), GHOST_RING_PUSH_OK);
    }
    // Consumers run everything; with a clock (passed) they time the gap from
    // their first sight of it and pass it GHOST_RING_GAP_NS later.
    ghost_ring_entry e;
    const uint64_t first = passed ? 1 : 0, later = passed ? 1 + GHOST_RING_GAP_NS : 0;
    for (uint64_t now : {first, later}) {
      while (ghost_ring_claim(raw(), 0, now, &e) == 1) {
        ASSERT_EQ(ghost_ring_complete(raw(), e.pos), 0);
      }
    }
    EXPECT_EQ(raw()->slots[1].state,
              GHOST_RING_WORD(1, passed ? GHOST_RING_SKIPPED : GHOST_RING_EMPTY));

    absl::StatusOr<Ring> next = Ring::Attach(raw());
    ASSERT_TRUE(next.ok()) << next.status();
    std::vector<uint64_t> reaped;
    auto reap = [&] { next->Reap([&](const RingOutcomeRecord& o) { reaped.push_back(o.tid); }); };
    reap();
    EXPECT_EQ(reaped, std::vector<uint64_t>({1})) << "the reaper waits at the dead position";
    int waits = 0;
    absl::StatusOr<int> marked = next->AbandonDeadPushes([&] {
      ++waits;
      return absl::OkStatus();
    });
    ASSERT_TRUE(marked.ok()) << marked.status();
    EXPECT_EQ(*marked, 1);
    EXPECT_EQ(waits, 1);
    reap();
    EXPECT_EQ(reaped, std::vector<uint64_t>({1, 2, 3, 4}));
    EXPECT_EQ(next->stats().abandoned, 1u);
    EXPECT_EQ(next->unreaped(), 0u);
    // Consumers move over it too, and the ring serves laps again.
    for (int lap = 0; lap < 3; ++lap) {
      for (uint64_t i = 0; i < next->size(); ++i) ASSERT_TRUE(next->Push(100 + i, 1).ok()) << i;
      while (ghost_ring_claim(raw(), 0, 0, &e) == 1) ASSERT_EQ(ghost_ring_complete(raw(), e.pos), 0);
      EXPECT_EQ(next->Reap([](const RingOutcomeRecord&) {}), static_cast<int>(next->size()));
    }
    // Nothing left to abandon: no wait.
    EXPECT_EQ(*next->AbandonDeadPushes([&] {
      ++waits;
      return absl::OkStatus();
    }), 0);
    EXPECT_EQ(waits, 1);
  }
}

// A position whose producer is still in its window when the new agent looks
// (a BPF producer: it publishes before the wait ends) keeps its entry; a
// failed wait marks nothing.
TEST_F(RingTest, AbandonDeadPushesSparesAProducerThatPublishesDuringTheWait) {
  (void)Make(8);
  raw()->head.pos = 1;  // position 0: taken, being written
  absl::StatusOr<Ring> next = Ring::Attach(raw());
  ASSERT_TRUE(next.ok());
  absl::StatusOr<int> failed = next->AbandonDeadPushes([] {
    return absl::UnavailableError("no grace period");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(raw()->slots[0].state, GHOST_RING_WORD(0, GHOST_RING_EMPTY));
  absl::StatusOr<int> marked = next->AbandonDeadPushes([&] {
    raw()->slots[0].tid = 9;
    raw()->slots[0].seqnum = 1;
    GHOST_RING_PUBLISH(&raw()->slots[0].state, GHOST_RING_WORD(0, GHOST_RING_READY));
    return absl::OkStatus();
  });
  ASSERT_TRUE(marked.ok());
  EXPECT_EQ(*marked, 0);
  std::optional<ghost_ring_entry> e = Claim();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tid, 9u);
}

// The real wait (membarrier(MEMBARRIER_CMD_GLOBAL)) works on this kernel.
TEST_F(RingTest, AbandonDeadPushesWaitsForAGracePeriod) {
  (void)Make(8);
  raw()->head.pos = 1;
  absl::StatusOr<Ring> next = Ring::Attach(raw());
  ASSERT_TRUE(next.ok());
  absl::StatusOr<int> marked = next->AbandonDeadPushes();
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_EQ(*marked, 1);
  EXPECT_FALSE(next->ReapOne());
  EXPECT_EQ(next->stats().abandoned, 1u);
  EXPECT_EQ(next->unreaped(), 0u);
}

// The policy's stealing choice is one bit of info.flags that the class's
// consumers read (GHOST_RING_F_STEAL); the wake-up bit next to it stays as
// it was.
TEST_F(RingTest, StealFlagIsSetAndClearedAlone) {
  Ring ring = Make(8);
  ring.SetWakeupPush(true, 0);
  EXPECT_FALSE(ring.steal());
  ring.SetSteal(true);
  EXPECT_TRUE(ring.steal());
  EXPECT_EQ(raw()->info.flags, GHOST_RING_F_STEAL | GHOST_RING_F_WAKEUP);
  ring.SetSteal(false);
  EXPECT_FALSE(ring.steal());
  EXPECT_EQ(raw()->info.flags, GHOST_RING_F_WAKEUP);
}

// --- concurrency ---------------------------------------------------------

// Every push is a distinct "thread" (tid = push id + 1). A consumer runs it
// only if its seqnum is still the pushed one; the agent makes some stale
// after pushing them and revokes others. Checked at the end, for every push:
// exactly one outcome was reaped; RAN iff a consumer ran it, exactly once;
// REVOKED iff the agent's revoke won; STALE only if it was made stale.
struct Accounting {
  explicit Accounting(size_t n)
      : runs(n), drops(n), cur_seq(n), outcomes(n), revoke(n, -1), kind(n) {}
  std::vector<std::atomic<uint32_t>> runs, drops;
  std::vector<std::atomic<uint64_t>> cur_seq;
  std::vector<uint32_t> outcomes;  // reaper-only from here on
  std::vector<int> revoke;         // -1 none, else RingRevoke
  std::vector<RingOutcome> kind;
};

void Consume(ghost_ring* r, uint32_t cpu, Accounting& acc, const std::atomic<bool>& stop,
             std::atomic<uint64_t>& errors) {
  while (!stop.load(std::memory_order_relaxed)) {
    ghost_ring_entry e;
    const int got = ghost_ring_claim(r, cpu, 0, &e);
    if (got < 0) {
      errors++;
      return;
    }
    if (got == 0) {
      std::this_thread::yield();
      continue;
    }
    const uint64_t id = e.tid - 1;
    if (id >= acc.runs.size()) {
      errors++;
      continue;
    }
    if (acc.cur_seq[id].load() != e.seqnum) {
      acc.drops[id]++;
      if (ghost_ring_fail(r, e.pos, GHOST_RING_STALE_SEQNUM) != 0) errors++;
      continue;
    }
    acc.runs[id]++;
    if (ghost_ring_complete(r, e.pos) != 0) errors++;
  }
}

struct StressParams {
  uint32_t size;
  int consumers;
  bool second_producer;  // a BPF-like producer pushing its own range
  uint64_t pushes;       // per producer
};

// Sets the race window for one test.
struct RaceWindowScope {
  explicit RaceWindowScope(uint32_t spins) { race_window_spins = spins; }
  ~RaceWindowScope() { race_window_spins = 0; }
};

// The agent's revoke through this file's (widened) copy of the operation;
// Ring::Revoke wraps the same function (single-thread tests cover it).
RingRevoke RevokeRacing(ghost_ring* r, uint64_t pos) {
  switch (ghost_ring_revoke(r, pos)) {
    case GHOST_RING_REVOKE_WON:
      return RingRevoke::kRevoked;
    case GHOST_RING_REVOKE_LOST:
      return RingRevoke::kLost;
    case GHOST_RING_REVOKE_UNPUBLISHED:
      return RingRevoke::kUnpublished;
    default:
      return RingRevoke::kGone;
  }
}

void RunStress(const StressParams& sp) {
  RaceWindowScope window(200);
  RingMemory mem = AllocateRingMemory();
  absl::StatusOr<Ring> made = Ring::Create(mem.get(), sp.size, 0);
  ASSERT_TRUE(made.ok());
  Ring& ring = *made;
  const uint64_t total = sp.pushes * (sp.second_producer ? 2 : 1);
  Accounting acc(total);
  for (uint64_t i = 0; i < total; ++i) acc.cur_seq[i] = 1;
  std::vector<uint64_t> pos_of(total, ~0ull);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  // Generous: a healthy run takes about a second on a loaded 2-core box.
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  bool stuck = false;  // a push never found room: slots leaked
  std::vector<std::thread> threads;
  for (int c = 0; c < sp.consumers; ++c) {
    threads.emplace_back(Consume, mem.get(), c, std::ref(acc), std::cref(stop), std::ref(errors));
  }
  // The other producer: ids [pushes, 2*pushes). Its positions are read back
  // from the outcomes; it never revokes.
  std::atomic<uint64_t> other_full{0};
  if (sp.second_producer) {
    threads.emplace_back([&] {
      for (uint64_t i = sp.pushes; i < 2 * sp.pushes && !stop.load();) {
        __u64 pos;
        const int r = ghost_ring_push(mem.get(), i + 1, 1, 0, 0, &pos);
        if (r == GHOST_RING_PUSH_OK) {
          ++i;
        } else if (r == GHOST_RING_PUSH_FULL || r == GHOST_RING_PUSH_CONTENDED) {
          other_full++;
          std::this_thread::yield();
        } else {
          errors++;
          return;
        }
      }
    });
  }

  absl::BitGen rng;
  uint64_t reaped = 0;
  bool bad_outcome = false;
  auto reap = [&] {
    ring.Reap([&](const RingOutcomeRecord& o) {
      const uint64_t id = o.tid - 1;
      if (id >= total) {
        bad_outcome = true;
        return;
      }
      acc.outcomes[id]++;
      acc.kind[id] = o.outcome;
      if (id < sp.pushes && o.pos != pos_of[id]) bad_outcome = true;
      ++reaped;
    });
  };
  std::vector<uint64_t> recent;  // our own pushes that may still be READY
  for (uint64_t id = 0; id < sp.pushes;) {
    RingPush p = ring.Push(id + 1, 1);
    if (!p.ok()) {  // full or contended: reap and try again
      if (absl::Now() > deadline) {
        stuck = true;
        break;
      }
      reap();
      std::this_thread::yield();
      continue;
    }
    pos_of[id] = p.pos;
    recent.push_back(id);
    const uint32_t dice = absl::Uniform(rng, 0u, 8u);
    if (dice == 0) {
      // Revoke at once: the race with a consumer that just saw it READY.
      acc.revoke[id] = static_cast<int>(RevokeRacing(mem.get(), p.pos));
    } else if (dice == 1) {
      acc.cur_seq[id].store(2);  // it blocked: the pushed seqnum is stale now
    } else if (dice == 2 && recent.size() > 1) {
      const uint64_t old = recent[absl::Uniform<size_t>(rng, 0, recent.size())];
      if (acc.revoke[old] < 0) {
        acc.revoke[old] = static_cast<int>(RevokeRacing(mem.get(), pos_of[old]));
      }
    }
    if (recent.size() > 64) recent.erase(recent.begin(), recent.begin() + 32);
    ++id;
    if ((id & 7) == 0) reap();
  }
  while (!stuck && reaped < total && absl::Now() < deadline && errors.load() == 0) {
    reap();
    std::this_thread::yield();
  }
  stop = true;
  for (std::thread& t : threads) t.join();

  ASSERT_EQ(errors.load(), 0u);
  ASSERT_FALSE(stuck) << "the ring stayed full: a slot was never freed";
  ASSERT_FALSE(bad_outcome);
  ASSERT_EQ(reaped, total) << "entries never reaped: lost";
  uint64_t ran = 0, revoked = 0, stale = 0, revokes_won = 0;
  for (uint64_t id = 0; id < total; ++id) {
    SCOPED_TRACE(::testing::Message() << "push " << id);
    ASSERT_EQ(acc.outcomes[id], 1u);
    ASSERT_LE(acc.runs[id].load(), 1u) << "ran twice for one push";
    const int rv = acc.revoke[id];
    switch (acc.kind[id]) {
      case RingOutcome::kRan:
        ++ran;
        ASSERT_EQ(acc.runs[id].load(), 1u);
        ASSERT_EQ(acc.drops[id].load(), 0u);
        ASSERT_NE(rv, static_cast<int>(RingRevoke::kRevoked));
        break;
      case RingOutcome::kRevoked:
        ++revoked;
        ASSERT_EQ(acc.runs[id].load(), 0u) << "revoked, yet a consumer ran it";
        ASSERT_EQ(acc.drops[id].load(), 0u);
        ASSERT_EQ(rv, static_cast<int>(RingRevoke::kRevoked));
        break;
      case RingOutcome::kStale:
        ++stale;
        ASSERT_EQ(acc.runs[id].load(), 0u);
        ASSERT_EQ(acc.drops[id].load(), 1u);
        ASSERT_EQ(acc.cur_seq[id].load(), 2u);
        ASSERT_NE(rv, static_cast<int>(RingRevoke::kRevoked));
        break;
    }
    if (rv == static_cast<int>(RingRevoke::kRevoked)) ++revokes_won;
    if (rv == static_cast<int>(RingRevoke::kLost)) {
      ASSERT_NE(acc.kind[id], RingOutcome::kRevoked);
    }
  }
  EXPECT_EQ(ran + revoked + stale, total);
  EXPECT_EQ(ring.stats().ran, ran);
  EXPECT_EQ(ring.stats().revoked, revoked);
  EXPECT_EQ(ring.stats().stale, stale);
  EXPECT_GT(revokes_won, 0u);
  // Every kind of end happened (else the test proves little).
  EXPECT_GT(ran, 0u);
  EXPECT_GT(revoked, 0u);
  EXPECT_GT(stale, 0u);
  EXPECT_EQ(mem->reaped.pos, total);
  EXPECT_EQ(mem->head.pos, total);
}

TEST(RingStressTest, ConsumersRaceOneRevokingAgentOnATinyRing) {
  RunStress({.size = 2, .consumers = 3, .second_producer = false, .pushes = 50000});
}

TEST(RingStressTest, TwoProducersThreeConsumers) {
  RunStress({.size = 8, .consumers = 3, .second_producer = true, .pushes = 50000});
}

TEST(RingStressTest, LargerRingManyLaps) {
  RunStress({.size = 64, .consumers = 2, .second_producer = true, .pushes = 100000});
}

// The narrowest race, many times: one entry, one consumer spinning to claim
// it, the agent revoking it after a random short delay, so that each side
// wins often. Exactly one of them wins, every time.
TEST(RingStressTest, RevokeAgainstClaimHasOneWinner) {
  RaceWindowScope window(200);
  RingMemory mem = AllocateRingMemory();
  absl::StatusOr<Ring> made = Ring::Create(mem.get(), 4, 0);
  ASSERT_TRUE(made.ok());
  Ring& ring = *made;
  constexpr uint64_t kMinRounds = 30000, kMinWinsEach = 100;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumer_wins{0}, errors{0};
  std::thread consumer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      ghost_ring_entry e;
      if (ghost_ring_claim(mem.get(), 1, 0, &e) == 1) {
        consumer_wins++;
        if (ghost_ring_complete(mem.get(), e.pos) != 0) errors++;
      }
    }
  });
  absl::Cleanup join = [&] {
    stop = true;
    consumer.join();
  };
  absl::BitGen rng;
  uint64_t rounds = 0, agent_wins = 0, lost = 0, both = 0;
  // Runs until both sides won often enough (a condition, not a time).
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while ((rounds < kMinRounds || agent_wins < kMinWinsEach || lost < kMinWinsEach) &&
         absl::Now() < deadline) {
    RingPush p = ring.Push(++rounds, 1);
    ASSERT_TRUE(p.ok()) << rounds;
    for (uint32_t spin = absl::Uniform(rng, 0u, 5000u); spin > 0; --spin) {
      asm volatile("" ::: "memory");
    }
    const RingRevoke rv = RevokeRacing(mem.get(), p.pos);
    std::optional<RingOutcomeRecord> o;
    while (!(o = ring.ReapOne()) && absl::Now() < deadline) std::this_thread::yield();
    ASSERT_TRUE(o) << "no outcome for round " << rounds;
    if (rv == RingRevoke::kRevoked) {
      ++agent_wins;
      if (o->outcome != RingOutcome::kRevoked) ++both;
    } else {
      ASSERT_EQ(rv, RingRevoke::kLost);
      ++lost;
      if (o->outcome != RingOutcome::kRan) ++both;
    }
  }
  std::move(join).Invoke();
  EXPECT_EQ(both, 0u);
  EXPECT_EQ(errors.load(), 0u) << "a consumer's claimed slot was taken from it";
  EXPECT_EQ(consumer_wins.load(), lost) << "a thread ran although its revoke won";
  EXPECT_EQ(agent_wins + lost, rounds);
  EXPECT_GE(agent_wins, kMinWinsEach);
  EXPECT_GE(lost, kMinWinsEach) << "the consumer never got to race";
}

// Consumers racing each other for one entry at a time: each entry is claimed,
// and run, by exactly one of them.
TEST(RingStressTest, ClaimersRaceForEachEntry) {
  RaceWindowScope window(200);
  RingMemory mem = AllocateRingMemory();
  absl::StatusOr<Ring> made = Ring::Create(mem.get(), 2, 0);
  ASSERT_TRUE(made.ok());
  Ring& ring = *made;
  constexpr uint64_t kRounds = 10000;
  std::vector<std::atomic<uint32_t>> runs(kRounds + 1);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> consumers;
  for (uint32_t cpu = 0; cpu < 2; ++cpu) {
    consumers.emplace_back([&, cpu] {
      while (!stop.load(std::memory_order_relaxed)) {
        ghost_ring_entry e;
        if (ghost_ring_claim(mem.get(), cpu, 0, &e) != 1) continue;
        if (e.tid == 0 || e.tid > kRounds) {
          errors++;
          continue;
        }
        runs[e.tid]++;
        if (ghost_ring_complete(mem.get(), e.pos) != 0) errors++;
      }
    });
  }
  absl::Cleanup join = [&] {
    stop = true;
    for (std::thread& t : consumers) t.join();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  for (uint64_t i = 1; i <= kRounds; ++i) {
    ASSERT_TRUE(ring.Push(i, 1).ok()) << i;
    std::optional<RingOutcomeRecord> o;
    while (!(o = ring.ReapOne()) && absl::Now() < deadline) {
    }
    ASSERT_TRUE(o) << "no outcome for " << i;
    ASSERT_EQ(o->outcome, RingOutcome::kRan);
  }
  std::move(join).Invoke();
  EXPECT_EQ(errors.load(), 0u) << "a claimed slot was claimed again";
  for (uint64_t i = 1; i <= kRounds; ++i) ASSERT_EQ(runs[i].load(), 1u) << "entry " << i;
}

// Producers racing each other for positions (the agent and BPF at wake-up,
// later): every push gets a position of its own, and every entry comes out
// exactly once.
TEST(RingStressTest, ProducersRaceForPositions) {
  RaceWindowScope window(2000);
  RingMemory mem = AllocateRingMemory();
  absl::StatusOr<Ring> made = Ring::Create(mem.get(), 64, 0);
  ASSERT_TRUE(made.ok());
  Ring& ring = *made;
  constexpr uint64_t kPerProducer = 20000;
  std::atomic<uint64_t> pushed{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> producers;
  for (uint64_t p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      const absl::Time deadline = absl::Now() + absl::Seconds(120);
      // Start together: on a loaded host one producer could otherwise finish
      // before the other runs at all.
      ready++;
      while (ready.load() < 2 && absl::Now() < deadline) std::this_thread::yield();
      for (uint64_t i = 0; i < kPerProducer && absl::Now() < deadline;) {
        __u64 pos;
        if (ghost_ring_push(mem.get(), 1 + p * kPerProducer + i, 1, 0, 0, &pos) ==
            GHOST_RING_PUSH_OK) {
          ++i;
          pushed++;
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  std::vector<uint32_t> seen(2 * kPerProducer + 1, 0);
  uint64_t reaped = 0;
  auto drain = [&] {
    ghost_ring_entry e;
    while (ghost_ring_claim(mem.get(), 0, 0, &e) == 1) ghost_ring_complete(mem.get(), e.pos);
    ring.Reap([&](const RingOutcomeRecord& o) {
      if (o.tid >= 1 && o.tid <= 2 * kPerProducer) seen[o.tid]++;
      ++reaped;
    });
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (pushed.load() < 2 * kPerProducer && absl::Now() < deadline) {
    drain();
    std::this_thread::yield();
  }
  for (std::thread& t : producers) t.join();
  drain();
  drain();
  ASSERT_EQ(pushed.load(), 2 * kPerProducer);
  EXPECT_EQ(mem->head.pos, 2 * kPerProducer) << "two pushes shared a position";
  EXPECT_EQ(reaped, 2 * kPerProducer);
  for (uint64_t t = 1; t <= 2 * kPerProducer; ++t) ASSERT_EQ(seen[t], 1u) << "tid " << t;
}

}  // namespace
}  // namespace ghost
