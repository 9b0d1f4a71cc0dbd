// The centralized FIFO's fast path (bpf-first mode, issue 9) over the fake
// kernel side's rings: pushes, consumptions, outcomes, revocations, full
// rings, re-attach, and a randomized interleaving checking that every
// runnable thread runs and no push runs twice.
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/policy_test_util.h"
#include "userspace/policies/registry.h"
#include "userspace/discovery.h"
#include "userspace/policies/fifo_centralized.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;
using testing::PolicyRig;
using Consumed = FakeKernelSide::Consumed;

class FifoFastPathTest : public ::testing::Test {
 protected:
  FifoCentralizedScheduler& sched() {
    return static_cast<FifoCentralizedPolicy*>(rig_->policy.get())->scheduler();
  }
  // CPUs 0..ncpus-1 (the agent on 0); `nodes[c]` is CPU c's node.
  void Start(int ncpus, std::vector<int> nodes = {}, uint32_t ring_size = kDefaultRingSize,
             PolicyOptions::FastPath fp = PolicyOptions::FastPath::kAuto,
             absl::Duration slice = absl::ZeroDuration(), bool wakeup_push = true) {
    rig_ = std::make_unique<PolicyRig>(ncpus);
    rig_->kernel.set_rings(true);
    rig_->kernel.set_node_of_cpu(std::move(nodes));
    PolicyOptions opts{.name = "fifo-centralized", .slice = slice};
    opts.fast_path = fp;
    opts.ring_sizes.default_size = ring_size;
    opts.wakeup_push = wakeup_push;
    opts.deep_rings = deep_rings_;
    ASSERT_TRUE(rig_->Start(CpuList::FirstN(ncpus), opts));
    agent_ = rig_->policy->agents()[0];
  }
  FakeKernelSide& k() { return rig_->kernel; }
  // The agent goes; a new one made with `opts` takes over the same enclave
  // and rings (its threads: TakeOverThreads, once the caller has looked).
  void ReplaceAgent(PolicyOptions opts) {
    rig_->policy.reset();
    opts.clock = [this] { return k().NowNs(); };
    auto p = MakePolicy(opts, *rig_->enclave);
    ASSERT_TRUE(p.ok()) << p.status();
    rig_->policy = std::move(*p);
    agent_ = rig_->policy->agents()[0];
  }
  // Three wide threads run from the ring on CPUs 1-3 (CPU 0 is the agent's),
  // their outcomes reaped: every CPU busy with a thread the agent knows of.
  // A thread pinned to the global agent's CPU (0), committed there.
  Tid RunPinnedOnTheAgentsCpu() {
    const Tid t = k().NewThread();
    k().SetAffinity(t, CpuList({0}));
    agent_->RunOnce();
    agent_->RunOnce();
    return t;
  }
  void RunWideThreadsFromTheRing(std::vector<Tid>* wide = nullptr) {
    for (int i = 0; i < 3; ++i) {
      const Tid t = k().NewThread();
      if (wide != nullptr) wide->push_back(t);
    }
    agent_->RunOnce();
    for (int cpu = 1; cpu <= 3; ++cpu) ASSERT_EQ(k().ConsumeRing(cpu), Consumed::kRan);
    agent_->RunOnce();
  }
  // Runs of `tid` through the rings.
  int RingRuns(Tid tid) {
    int n = 0;
    for (const auto& r : k().ring_runs()) n += r.tid == tid;
    return n;
  }
  bool WakeupFlag(int node = 0) {
    return (k().RingRegion(0, node)->info.flags & GHOST_RING_F_WAKEUP) != 0;
  }
  // A thread that ran on CPU 1 through the ring and blocked; the agent has
  // read all of it (its FIFO is empty: wake-up pushes are on).
  Tid RanAndBlocked() {
    const Tid t = k().NewThread();
    agent_->RunOnce();
    EXPECT_EQ(k().ConsumeRing(1), Consumed::kRan);
    agent_->RunOnce();
    k().Block(t);
    agent_->RunOnce();
    return t;
  }
  // `rounds` times: what runs on CPUs 1..last_cpu blocks, each of them takes
  // the next ring entry, the agent runs a round. Returns the threads the
  // rings ran, in order.
  std::vector<Tid> Drain(int last_cpu, int rounds) {
    std::vector<Tid> order;
    for (int round = 0; round < rounds; ++round) {
      for (int cpu = 1; cpu <= last_cpu; ++cpu) {
        if (Tid cur = k().CurrentOn(cpu)) k().Block(cur);
        if (k().ConsumeRing(cpu) == Consumed::kRan) order.push_back(k().CurrentOn(cpu));
      }
      agent_->RunOnce();
    }
    return order;
  }
  std::unique_ptr<PolicyRig> rig_;
  Agent* agent_ = nullptr;
  // Most tests look at the agent's own decisions: rings as deep as the idle
  // CPUs need (--ring-depth=idle). The shipped default (all) has its tests.
  bool deep_rings_ = false;
};

// --ring-depth=all (the default): every waiting thread goes into the rings,
// which then hold the backlog in FIFO order; the agent's FIFO stays empty,
// so the class pushes wake-ups, behind the backlog.
TEST_F(FifoFastPathTest, DeepRingsHoldTheBacklogInOrder) {
  deep_rings_ = true;
  Start(4);
  const Tid sleeper = RanAndBlocked();
  std::vector<Tid> tids;
  for (int i = 0; i < 10; ++i) tids.push_back(k().NewThread());
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 10u);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_TRUE(WakeupFlag());
  EXPECT_EQ(sched().IdleFor(*agent_), absl::InfiniteDuration());  // it may sleep
  k().Wake(sleeper);
  EXPECT_EQ(k().wakeup_pushes(), 1u);
  tids.push_back(sleeper);
  const std::vector<Tid> order = Drain(/*last_cpu=*/3, /*rounds=*/10);
  EXPECT_EQ(order, tids);  // FIFO order, the woken thread last
  EXPECT_EQ(k().commit_calls(), 0u);
}

// The class pushes a thread that wakes up (the fake does what ops.enqueue
// does when the agent set GHOST_RING_F_WAKEUP); the agent adopts the entry
// from the TASK_WAKEUP instead of placing the thread again.
TEST_F(FifoFastPathTest, WakeupsArePushedByTheClassAndAdopted) {
  Start(4);
  const Tid t = RanAndBlocked();
  EXPECT_TRUE(WakeupFlag());
  const uint64_t agent_pushes = sched().stats().pushes_per_node[0];
  k().Wake(t);
  ASSERT_EQ(k().wakeup_pushes(), 1u);
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().wakeup_entries[0], 1u);
  EXPECT_EQ(sched().stats().pushes_per_node[0], agent_pushes);  // not pushed again
  EXPECT_EQ(sched().RingDepth(0), 1u);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(k().ConsumeRing(2), Consumed::kRan);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kEmpty);  // one entry for one wake-up
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(2), t);
  EXPECT_EQ(RingRuns(t), 2);
  EXPECT_EQ(k().commit_calls(), 0u);
  // The adopted entry is the agent's to revoke: the thread blocks before a
  // CPU takes it.
  k().Block(t);
  agent_->RunOnce();
  k().Wake(t);
  agent_->RunOnce();
  ASSERT_EQ(sched().RingDepth(0), 1u);
  k().Block(t);  // (from no CPU: it never ran)
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_GE(sched().stats().revokes_won, 1u);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kEmpty);
}

// The agent reaps an entry's outcome before it reads the wake-up that named
// it (it reads the rings and its queue at different moments): the outcome is
// kept and applied when the message comes; nothing runs twice.
TEST_F(FifoFastPathTest, OutcomeBeforeItsWakeupIsKept) {
  Start(4);
  const Tid t = RanAndBlocked();
  k().Wake(t);
  ASSERT_EQ(k().ConsumeRing(2), Consumed::kRan);
  sched().Schedule(*agent_);  // reaps RAN; the WAKEUP is still unread
  EXPECT_EQ(sched().stats().early_outcomes, 1u);
  EXPECT_EQ(sched().CurrentOn(2), GHOST_TID_NONE);
  const uint64_t agent_pushes = sched().stats().pushes_per_node[0];
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(2), t);  // learnt from the kept RAN
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_EQ(sched().stats().pushes_per_node[0], agent_pushes);
  EXPECT_EQ(sched().stats().early_dropped, 0u);
  // A stale one: the thread changed (a newer seqnum) before a CPU took it.
  k().Block(t);
  agent_->RunOnce();
  k().Wake(t);
  k().SetAffinity(t, CpuList::FirstN(4));
  uint32_t reason = 0;
  ASSERT_EQ(k().ConsumeRing(3, &reason), Consumed::kStale);
  EXPECT_EQ(reason, GHOST_RING_STALE_SEQNUM);
  sched().Schedule(*agent_);
  EXPECT_EQ(sched().stats().early_outcomes, 2u);
  agent_->RunOnce();  // WAKEUP (applies STALE: ours again), AFFINITY; placed again
  EXPECT_EQ(sched().RingDepth(0), 1u);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kRan);
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(3), t);
  EXPECT_EQ(k().commit_calls(), 0u);
}

// Wake-ups do not overtake threads already waiting for the rings: while one
// waits in the FIFO, the agent keeps the class from pushing.
TEST_F(FifoFastPathTest, WakeupsQueueBehindWaitingThreads) {
  Start(3, {}, /*ring_size=*/2);  // CPUs 1-2 scheduled; a ring of 2
  const Tid t = RanAndBlocked();
  ASSERT_TRUE(WakeupFlag());
  std::vector<Tid> older;
  for (int i = 0; i < 4; ++i) older.push_back(k().NewThread());
  agent_->RunOnce();  // two in the ring (full), two wait in the FIFO
  ASSERT_EQ(sched().Waiting(), 2u);
  EXPECT_FALSE(WakeupFlag());
  k().Wake(t);
  EXPECT_EQ(k().wakeup_pushes(), 0u);
  agent_->RunOnce();
  EXPECT_EQ(sched().Waiting(), 3u);  // behind the older ones
  // Drain: everything runs once, in order, then the flag is back.
  const std::vector<Tid> order = Drain(/*last_cpu=*/2, /*rounds=*/10);
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.back(), t);
  EXPECT_TRUE(WakeupFlag());
}

// --agent-sleep-us: the agent may sleep only while nothing waits for it.
TEST_F(FifoFastPathTest, AgentMaySleepOnlyWhenIdle) {
  Start(3, {}, /*ring_size=*/2);
  EXPECT_EQ(sched().IdleFor(*agent_), absl::InfiniteDuration());
  std::vector<Tid> tids;
  for (int i = 0; i < 4; ++i) tids.push_back(k().NewThread());
  agent_->RunOnce();  // two in the ring, two wait in the FIFO
  EXPECT_EQ(sched().IdleFor(*agent_), absl::ZeroDuration());
  for (int round = 0; round < 6; ++round) {
    for (int cpu = 1; cpu <= 2; ++cpu) {
      if (Tid cur = k().CurrentOn(cpu)) k().Block(cur);
      k().ConsumeRing(cpu);
    }
    agent_->RunOnce();
  }
  ASSERT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(sched().IdleFor(*agent_), absl::InfiniteDuration());
  // Transactions only: never (nobody else would place wake-ups).
  Start(3, {}, kDefaultRingSize, PolicyOptions::FastPath::kOff);
  EXPECT_EQ(sched().IdleFor(*agent_), absl::ZeroDuration());
  // With a slice: at most one slice.
  Start(3, {}, kDefaultRingSize, PolicyOptions::FastPath::kAuto, absl::Milliseconds(2));
  EXPECT_EQ(sched().IdleFor(*agent_), absl::Milliseconds(2));
}

TEST_F(FifoFastPathTest, WakeupPushOffLeavesEveryPushToTheAgent) {
  Start(4, {}, kDefaultRingSize, PolicyOptions::FastPath::kAuto, absl::ZeroDuration(),
        /*wakeup_push=*/false);
  const Tid t = RanAndBlocked();
  EXPECT_FALSE(WakeupFlag());
  k().Wake(t);
  EXPECT_EQ(k().wakeup_pushes(), 0u);
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 1u);  // the agent pushed it
  EXPECT_EQ(sched().stats().wakeup_entries[0], 0u);
}

TEST_F(FifoFastPathTest, OnByDefaultWithRingsOffWithout) {
  Start(4);
  EXPECT_TRUE(sched().fast_path());
  Start(4, {}, kDefaultRingSize, PolicyOptions::FastPath::kOff);
  EXPECT_FALSE(sched().fast_path());
  rig_ = std::make_unique<PolicyRig>(4);  // a kernel side without rings
  ASSERT_TRUE(rig_->Start(CpuList::FirstN(4), {.name = "fifo-centralized"}));
  EXPECT_FALSE(sched().fast_path());
  rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);  // transactions
}

TEST_F(FifoFastPathTest, PushedConsumedRan) {
  Start(4);
  std::vector<Tid> tids;
  for (int i = 0; i < 3; ++i) tids.push_back(k().NewThread());
  agent_->RunOnce();
  EXPECT_EQ(k().commit_calls(), 0u);
  EXPECT_EQ(sched().RingDepth(0), 3u);
  ASSERT_EQ(k().doorbells().size(), 1u);
  EXPECT_EQ(k().doorbells()[0][0], 3u);  // one kick per idle CPU pushed for
  EXPECT_EQ(sched().stats().doorbell_errors, 0u);
  for (int cpu = 1; cpu <= 3; ++cpu) EXPECT_EQ(k().ConsumeRing(cpu), Consumed::kRan);
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().ring_ran, 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(k().CurrentOn(i + 1), tids[i]);  // FIFO order: oldest claimed first
    EXPECT_EQ(sched().CurrentOn(i + 1), tids[i]);
  }
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_EQ(sched().stats().ran_per_cpu.at(2), 1u);
  // The agent's CPU ran nothing.
  EXPECT_EQ(k().CurrentOn(0), GHOST_TID_NONE);
}

TEST_F(FifoFastPathTest, DepthFollowsIdleCpusPlusMargin) {
  Start(4);  // 3 scheduled CPUs
  for (int i = 0; i < 10; ++i) k().NewThread();
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 3u + FifoCentralizedScheduler::kRingMargin);
  EXPECT_EQ(sched().Waiting(), 10u - 3u - FifoCentralizedScheduler::kRingMargin);
}

TEST_F(FifoFastPathTest, BouncedThreadIsPlacedAgain) {
  Start(4);
  k().set_hold_ring_claims(true);
  const Tid t = k().NewThread();
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kClaimed);
  ASSERT_TRUE(k().BounceClaimed(1).ok());
  agent_->RunOnce();  // reaps STALE BOUNCED, pushes it again
  EXPECT_EQ(sched().stats().stale_by_reason[GHOST_RING_STALE_BOUNCED], 1u);
  EXPECT_EQ(sched().RingDepth(0), 1u);
  ASSERT_EQ(k().ConsumeRing(2), Consumed::kClaimed);
  ASSERT_TRUE(k().RunClaimed(2).ok());
  agent_->RunOnce();
  EXPECT_EQ(k().CurrentOn(2), t);
  EXPECT_EQ(sched().CurrentOn(2), t);
  EXPECT_EQ(RingRuns(t), 1);
}

TEST_F(FifoFastPathTest, StaleSeqnumIsPlacedAgain) {
  Start(4);
  const Tid t = k().NewThread();
  agent_->RunOnce();
  k().SetAffinity(t, CpuList::FirstN(4));  // a new seqnum the agent has not read
  uint32_t reason = 0;
  ASSERT_EQ(k().ConsumeRing(1, &reason), Consumed::kStale);
  EXPECT_EQ(reason, GHOST_RING_STALE_SEQNUM);
  agent_->RunOnce();  // the message, then the outcome: pushed with the new seqnum
  EXPECT_EQ(sched().stats().stale_by_reason[GHOST_RING_STALE_SEQNUM], 1u);
  EXPECT_EQ(k().ConsumeRing(1), Consumed::kRan);
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(1), t);
}

TEST_F(FifoFastPathTest, AffinityChangeRevokesAndPushesToTheAllowedNode) {
  Start(4, {0, 0, 1, 1});  // node 0: CPUs 0 (agent), 1; node 1: CPUs 2, 3
  const Tid t = k().NewThread();
  k().SetAffinity(t, CpuList::Parse("1").value());
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 1u);
  k().SetAffinity(t, CpuList::Parse("2-3").value());
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().revokes_won, 1u);
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_EQ(sched().RingDepth(1), 1u);
  EXPECT_EQ(k().ConsumeRing(1), Consumed::kEmpty);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kRan);
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(3), t);
  EXPECT_EQ(sched().stats().ring_revoked, 1u);
}

// A thread no ring may take (here: allowed CPU 1 only, on a node with CPUs
// 1-3) waits for CPU 1 by transaction, but ring-fed threads keep CPU 1 busy
// (a real idle CPU takes the next entry in its dispatch, before the agent can
// commit there). Once it has waited kNarrowWaitNs it preempts CPU 1's thread.
TEST_F(FifoFastPathTest, NarrowThreadPreemptsARingFedCpu) {
  Start(4);
  std::vector<Tid> wide;
  ASSERT_NO_FATAL_FAILURE(RunWideThreadsFromTheRing(&wide));
  ASSERT_EQ(sched().CurrentOn(1), wide[0]);
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList::Parse("1").value());
  agent_->RunOnce();
  EXPECT_EQ(k().CurrentOn(1), wide[0]);  // not yet: it has just started waiting
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  agent_->RunOnce();
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  EXPECT_EQ(k().CurrentOn(1), narrow);
}

// The same when the agent does not know what runs on CPU 1: a consumer's
// claim whose outcome it has not reaped (held here; in the guest, reaping in
// push order waits behind a slower claim). A plain commit there fails
// CPU_UNAVAILABLE and is retried after a backoff, so the narrow thread must
// preempt that CPU too, not only CPUs where the agent knows what runs.
// (It did not: under stress-ng with deep rings, threads pinned to one CPU
// waited 5 s for the watchdog.)
TEST_F(FifoFastPathTest, NarrowThreadPreemptsACpuBusyWithAnUnreapedEntry) {
  Start(4);
  k().set_hold_ring_claims(true);
  const Tid wide = k().NewThread();
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kClaimed);
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList::Parse("1").value());
  agent_->RunOnce();
  ASSERT_EQ(sched().CurrentOn(1), GHOST_TID_NONE);  // idle, as far as the agent knows
  // 1.1 ms steps: the backoff after CPU_UNAVAILABLE is 1 ms.
  for (int i = 0; i < 20 && k().CurrentOn(1) != narrow; ++i) {
    k().AdvanceTime(1'100'000);
    agent_->RunOnce();
  }
  EXPECT_EQ(k().CurrentOn(1), narrow);
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  // The claimed thread went back before it ran: pushed again, not lost.
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().stale_by_reason[GHOST_RING_STALE_BOUNCED], 1u);
  ASSERT_EQ(k().ConsumeRing(2), Consumed::kClaimed);
  ASSERT_TRUE(k().RunClaimed(2).ok());
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(2), wide);
}

// A plain commit that the kernel side fails after the call (sched_ext hands
// the thread back when it finds the CPU busy: CPU_UNAVAILABLE, settled
// later) keeps the thread in flight across the agent's rounds; its narrow
// wait goes on meanwhile, so it does come to preempt.
TEST_F(FifoFastPathTest, NarrowWaitCountsAcrossCommitsInFlight) {
  Start(4);
  k().set_hold_commits(true);
  // Another thread keeps waiting meanwhile (its CPU is a higher class's), so
  // the agent's rounds look at its FIFO.
  k().TakeCpu(2);
  const Tid other = k().NewThread();
  k().SetAffinity(other, CpuList({2}));
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList({1}));
  for (int i = 0; i < 20 && sched().stats().narrow_preemptions == 0; ++i) {
    agent_->RunOnce();  // a plain commit to CPU 1 (held), or a wait
    k().AdvanceTime(600'000);
    agent_->RunOnce();  // the rounds go on while it is in flight
    if (sched().stats().narrow_preemptions == 0) {
      (void)k().FinishHeld(1, GHOST_TXN_CPU_UNAVAILABLE);
    }
    k().AdvanceTime(600'000);
  }
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  ASSERT_TRUE(k().FinishHeld(1, GHOST_TXN_COMMITTED).ok());
  EXPECT_EQ(k().CurrentOn(1), narrow);
  EXPECT_EQ(k().CurrentOn(2), GHOST_TID_NONE);
  EXPECT_NE(k().CurrentOn(1), other);
}

// Several narrow threads, each pinned to its own ring-fed CPU: all of them
// preempt in the same round (one per CPU). One per round left most of them
// waiting behind each other under deep rings, where no CPU ever goes idle.
TEST_F(FifoFastPathTest, NarrowThreadsPreemptTheirCpusInOneRound) {
  Start(4);
  ASSERT_NO_FATAL_FAILURE(RunWideThreadsFromTheRing());
  std::vector<Tid> narrow;
  for (int cpu = 1; cpu <= 3; ++cpu) {
    narrow.push_back(k().NewThread());
    k().SetAffinity(narrow.back(), CpuList({cpu}));
  }
  agent_->RunOnce();
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().narrow_preemptions, 3u);
  for (int cpu = 1; cpu <= 3; ++cpu) EXPECT_EQ(k().CurrentOn(cpu), narrow[cpu - 1]);
}

// Two narrow threads due for the same CPU: the one that has waited longer
// preempts first, though the other is ahead in the FIFO (a thread displaced
// from its CPU goes back to the head). In FIFO order, movers that pinned
// themselves to one CPU after another (stress-ng's affinity stressor) kept a
// patient thread pinned to that CPU waiting 5 s.
TEST_F(FifoFastPathTest, NarrowThreadThatWaitedLongestPreemptsFirst) {
  Start(4);
  std::vector<Tid> wide;
  ASSERT_NO_FATAL_FAILURE(RunWideThreadsFromTheRing(&wide));
  const Tid patient = k().NewThread();
  k().SetAffinity(patient, CpuList({1}));
  agent_->RunOnce();  // its wait starts
  k().AdvanceTime(1'000'000);
  const Tid mover = wide[1];  // pins itself to CPU 1 and leaves CPU 2
  k().SetAffinity(mover, CpuList({1}));
  k().Preempt(mover);
  agent_->RunOnce();  // back to the FIFO's head; its wait starts 1 ms later
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs);
  agent_->RunOnce();  // both are due; CPU 1 takes one
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  EXPECT_EQ(k().CurrentOn(1), patient);
}

// A preempting commit that fails keeps the thread's wait: it preempts again
// at once, not kNarrowWaitNs later. (Its clock restarted at each failed
// preemption, and a thread pinned to a CPU that kept failing them waited 5 s.)
TEST_F(FifoFastPathTest, NarrowWaitSurvivesAFailedPreemption) {
  Start(4);
  ASSERT_NO_FATAL_FAILURE(RunWideThreadsFromTheRing());
  k().set_hold_commits(true);
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList({1}));
  agent_->RunOnce();
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  agent_->RunOnce();  // the preempting commit, held
  ASSERT_EQ(sched().stats().narrow_preemptions, 1u);
  ASSERT_TRUE(k().FinishHeld(1, GHOST_TXN_AGENT_STALE).ok());
  k().AdvanceTime(100'000);
  agent_->RunOnce();  // the failure read: preempts again in this round or the next
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().narrow_preemptions, 2u);
  ASSERT_TRUE(k().FinishHeld(1, GHOST_TXN_COMMITTED).ok());
  EXPECT_EQ(k().CurrentOn(1), narrow);
}

// A narrow preemption does not carry the agent barrier: messages that arrive
// during the round (under churn, nearly every round) do not fail it.
TEST_F(FifoFastPathTest, NarrowPreemptionIgnoresMessagesOfTheRound) {
  Start(4);
  ASSERT_NO_FATAL_FAILURE(RunWideThreadsFromTheRing());
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList({1}));
  agent_->RunOnce();
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  const Tid other = k().NewThread(/*e=*/0, /*runnable=*/false);
  bool sent = false;
  k().set_on_consume([&](QueueId, const ghost_msg&) {
    if (!sent) {
      sent = true;
      k().Wake(other);  // after the round read its barrier
    }
  });
  agent_->RunOnce();
  k().set_on_consume(nullptr);
  EXPECT_TRUE(sent);
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  EXPECT_EQ(k().CurrentOn(1), narrow);
}

// A thread pinned to the global agent's CPU, where a thread the agent
// committed has run for kNarrowWaitNs: it takes the CPU by a preempting
// commit (it waited for the watchdog behind such a thread).
TEST_F(FifoFastPathTest, NarrowThreadPreemptsOnTheAgentsCpu) {
  Start(4);
  const Tid first = RunPinnedOnTheAgentsCpu();
  ASSERT_EQ(k().CurrentOn(0), first);
  const Tid waiter = k().NewThread();
  k().SetAffinity(waiter, CpuList({0}));
  agent_->RunOnce();
  EXPECT_EQ(k().CurrentOn(0), first);  // not yet
  k().AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  agent_->RunOnce();
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  EXPECT_EQ(k().CurrentOn(0), waiter);
}

// Two threads pinned to the global agent's CPU: when it is free, the one
// that has waited longer gets it, though the other is ahead in the FIFO (it
// left the CPU and went back to the head). In FIFO order, stress-ng's movers
// coming back kept a thread pinned there waiting 5 s (clients_centralized).
TEST_F(FifoFastPathTest, AgentCpuGoesToTheThreadThatWaitedLongest) {
  Start(4);
  const Tid first = RunPinnedOnTheAgentsCpu();
  ASSERT_EQ(k().CurrentOn(0), first);
  const Tid patient = k().NewThread();
  k().SetAffinity(patient, CpuList({0}));
  agent_->RunOnce();  // its wait starts
  k().AdvanceTime(1'000'000);
  const Tid mover = k().NewThread(/*e=*/0, /*runnable=*/false);
  k().SetAffinity(mover, CpuList({0}));
  k().Wake(mover);
  k().Preempt(mover);  // as a thread that left CPU 0: back to the FIFO's head
  agent_->RunOnce();
  k().AdvanceTime(1'000'000);
  k().Block(first);
  agent_->RunOnce();
  agent_->RunOnce();
  EXPECT_EQ(k().CurrentOn(0), patient);
}

// With the rings and a slice, the ring's entries are older than the FIFO's
// threads: a CPU past its slice gets the oldest entry of its node's ring
// (taken back and committed) before any CPU gets a FIFO thread. (Giving it
// the FIFO's head ran younger threads first while an entry waited for a CPU
// that never went through dispatch.)
TEST_F(FifoFastPathTest, SlicesServeTheRingsOlderEntriesFirst) {
  Start(4, {}, kDefaultRingSize, PolicyOptions::FastPath::kAuto, absl::Milliseconds(2));
  const Tid narrow = k().NewThread();
  k().SetAffinity(narrow, CpuList::Parse("1").value());
  agent_->RunOnce();
  agent_->RunOnce();
  ASSERT_EQ(k().CurrentOn(1), narrow);  // no ring may take it: committed
  const Tid a = k().NewThread(), b = k().NewThread();
  agent_->RunOnce();
  EXPECT_EQ(k().ConsumeRing(2), Consumed::kRan);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kRan);
  agent_->RunOnce();
  ASSERT_EQ(k().CurrentOn(2), a);
  ASSERT_EQ(k().CurrentOn(3), b);
  const Tid older = k().NewThread();
  agent_->RunOnce();  // into the ring: no CPU is idle, depth 0 + margin 1
  const Tid younger = k().NewThread();
  agent_->RunOnce();  // stays in the FIFO behind it
  k().AdvanceTime(3'000'000);
  agent_->RunOnce();  // every CPU is past its slice
  EXPECT_EQ(sched().stats().ring_slice_takes, 1u);
  EXPECT_EQ(k().CurrentOn(1), older);    // the first CPU past its slice: the ring's entry
  EXPECT_EQ(k().CurrentOn(2), younger);  // the next one: the FIFO's head
  EXPECT_EQ(RingRuns(older), 0);         // committed, not consumed
  // Every thread still runs exactly once more or waits; none is lost.
  for (int i = 0; i < 4; ++i) agent_->RunOnce();
  EXPECT_EQ(k().CurrentOn(1), older);
}

// The same with nothing else waiting: every CPU runs a committed thread (each
// pinned to its CPU), one wide thread waits in the ring, the FIFO is empty.
// Past the slice, a CPU is still given the entry.
TEST_F(FifoFastPathTest, SlicesServeTheRingWithAnEmptyFifo) {
  Start(4, {}, kDefaultRingSize, PolicyOptions::FastPath::kAuto, absl::Milliseconds(2));
  for (int cpu = 1; cpu <= 3; ++cpu) {
    const Tid pinned = k().NewThread();
    k().SetAffinity(pinned, CpuList({cpu}));
  }
  agent_->RunOnce();
  agent_->RunOnce();
  for (int cpu = 1; cpu <= 3; ++cpu) ASSERT_NE(k().CurrentOn(cpu), GHOST_TID_NONE);
  const Tid wide = k().NewThread();
  agent_->RunOnce();  // into the ring: no CPU is idle
  ASSERT_EQ(sched().Waiting(), 0u);
  k().AdvanceTime(3'000'000);
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().ring_slice_takes, 1u);
  EXPECT_EQ(k().CurrentOn(1), wide);
}

TEST_F(FifoFastPathTest, BlockAndExitRevoke) {
  Start(4);
  const Tid a = k().NewThread(), b = k().NewThread();
  agent_->RunOnce();
  // The fallback runs them without the agent; then they block and exit.
  k().RunByFallback(a, 1);
  k().RunByFallback(b, 2);
  k().Block(a);
  k().Exit(b);
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().revokes_won, 2u);
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_EQ(k().ConsumeRing(3), Consumed::kEmpty);  // nothing left to run
  EXPECT_EQ(k().ring_runs().size(), 0u);
}

TEST_F(FifoFastPathTest, FullRingKeepsTheThread) {
  Start(8, {}, /*ring_size=*/2);
  std::vector<Tid> tids;
  for (int i = 0; i < 5; ++i) tids.push_back(k().NewThread());
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 2u);
  EXPECT_GE(sched().stats().ring_full, 1u);
  EXPECT_EQ(sched().Waiting(), 3u);  // kept, in order
  for (int round = 0; round < 10; ++round) {
    for (int cpu = 1; cpu < 8; ++cpu) k().ConsumeRing(cpu);
    agent_->RunOnce();
  }
  for (Tid t : tids) EXPECT_EQ(RingRuns(t), 1) << t;
  EXPECT_EQ(sched().Waiting(), 0u);
}

TEST_F(FifoFastPathTest, RanReapedAfterPreemptDoesNotPlaceIt) {
  Start(4);
  const Tid t = k().NewThread();
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kRan);
  k().Preempt(t);  // read before the RAN outcome
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(1), GHOST_TID_NONE);
  EXPECT_EQ(sched().RingDepth(0), 1u);  // runnable: pushed again
  EXPECT_EQ(k().ConsumeRing(2), Consumed::kRan);
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(2), t);
  EXPECT_EQ(RingRuns(t), 2);
}

TEST_F(FifoFastPathTest, RanReapedAfterBlockedLeavesItBlocked) {
  Start(4);
  const Tid t = k().NewThread();
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kRan);
  k().Block(t);
  agent_->RunOnce();
  EXPECT_EQ(sched().CurrentOn(1), GHOST_TID_NONE);
  EXPECT_EQ(sched().RingDepth(0), 0u);
  EXPECT_EQ(sched().Waiting(), 0u);
  k().Wake(t);
  agent_->RunOnce();
  EXPECT_EQ(sched().RingDepth(0), 1u);
}

TEST_F(FifoFastPathTest, ReattachReapsOldEntriesWithoutLossOrDuplicates) {
  Start(4);
  k().set_hold_ring_claims(true);
  std::vector<Tid> tids;
  for (int i = 0; i < 3; ++i) tids.push_back(k().NewThread());
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kClaimed);  // tids[0], claimed, not run
  ASSERT_NO_FATAL_FAILURE(ReplaceAgent({.name = "fifo-centralized"}));
  EXPECT_EQ(sched().stats().attached_entries, 3u);
  TakeOverThreads(k(), *rig_->enclave, *rig_->policy);
  ASSERT_TRUE(k().RunClaimed(1).ok());  // the old agent's claimed entry runs
  for (int round = 0; round < 5; ++round) {
    agent_->RunOnce();
    for (int cpu = 1; cpu < 4; ++cpu) {
      if (k().ConsumeRing(cpu) == Consumed::kClaimed) {
        ASSERT_TRUE(k().RunClaimed(cpu).ok());
      }
    }
  }
  agent_->RunOnce();
  for (Tid t : tids) EXPECT_EQ(RingRuns(t), 1) << t;
  EXPECT_EQ(sched().CurrentOn(1), tids[0]);  // learnt from the old entry's RAN
  std::set<Tid> on;
  for (int cpu = 1; cpu < 4; ++cpu) on.insert(sched().CurrentOn(cpu));
  EXPECT_EQ(on, std::set<Tid>(tids.begin(), tids.end()));
  EXPECT_EQ(sched().Waiting(), 0u);
}

// The old agent was killed inside a push: its position is taken and never
// published. The new agent frees it at take-over; without that its reaper
// would stop there, and after a ring's worth of pushes every thread would go
// through transactions (ring_full).
TEST_F(FifoFastPathTest, TakeOverFreesAPositionTheKilledAgentNeverPublished) {
  Start(4, {}, /*ring_size=*/4);
  const Tid first = k().NewThread();
  agent_->RunOnce();
  ASSERT_EQ(k().ConsumeRing(1), Consumed::kRan);
  k().Block(first);
  agent_->RunOnce();
  ghost_ring* region = k().RingRegion(0, 0);
  __atomic_fetch_add(&region->head.pos, 1, __ATOMIC_SEQ_CST);  // taken; the agent dies
  PolicyOptions opts{.name = "fifo-centralized"};
  opts.ring_sizes.default_size = 4;
  ASSERT_NO_FATAL_FAILURE(ReplaceAgent(opts));
  EXPECT_EQ(sched().stats().attached_abandoned, 1u);
  TakeOverThreads(k(), *rig_->enclave, *rig_->policy);
  std::vector<Tid> later;
  for (int i = 0; i < 12; ++i) {  // three laps of the ring
    const Tid t = k().NewThread();
    later.push_back(t);
    agent_->RunOnce();
    ASSERT_EQ(k().ConsumeRing(1), Consumed::kRan) << i;
    k().Block(t);
    agent_->RunOnce();
  }
  for (Tid t : later) EXPECT_EQ(RingRuns(t), 1) << t;
  EXPECT_EQ(sched().stats().ring_full, 0u);
  EXPECT_EQ(sched().Waiting(), 0u);
}

// Random messages, consumptions, bounces and agent rounds over two nodes;
// then a drain in which every runnable thread must run (and then block).
// Checked throughout: no ring entry runs twice, no thread is on two CPUs.
TEST_F(FifoFastPathTest, RandomInterleavingLosesNothing) {
  uint64_t wakeup_pushes = 0, early = 0;
  for (int seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    deep_rings_ = seed % 4 >= 2;  // both depths, both thread counts
    Start(6, {0, 0, 0, 1, 1, 1}, /*ring_size=*/4);
    k().set_hold_ring_claims(true);
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    std::vector<Tid> tids;
    // Odd seeds: more threads than CPUs (the FIFO rarely empties); even
    // seeds: fewer (the class pushes most wake-ups).
    for (int i = 0; i < (seed % 2 ? 12 : 4); ++i) tids.push_back(k().NewThread());
    const std::vector<CpuList> masks = {CpuList::FirstN(6), CpuList::Parse("1-2").value(),
                                        CpuList::Parse("3-5").value(),
                                        CpuList::Parse("2,4").value()};
    for (int step = 0; step < 400; ++step) {
      const Tid t = tids[pick(tids.size())];
      const int cpu = 1 + pick(5);
      switch (pick(10)) {
        case 0:
        case 1:
          k().ConsumeRing(cpu);
          break;
        case 2:
          if (k().HasRingClaim(cpu)) {
            ASSERT_TRUE(k().RunClaimed(cpu).ok());
          }
          break;
        case 3:
          if (k().HasRingClaim(cpu)) {
            ASSERT_TRUE(k().BounceClaimed(cpu).ok());
          }
          break;
        case 4:
          if (k().thread(t).cpu >= 0) k().Block(t);
          break;
        case 5:
          if (!k().thread(t).runnable) k().Wake(t);
          break;
        case 6:
          if (k().thread(t).cpu >= 0) k().Preempt(t);
          break;
        case 7:
          k().SetAffinity(t, masks[pick(masks.size())]);
          break;
        case 8:
          sched().Schedule(*agent_);  // a round that reads the rings, not the queue
          break;
        default:
          k().AdvanceTime(100'000);
          agent_->RunOnce();
          break;
      }
    }
    // Drain: whatever runs blocks; every runnable thread must get to run.
    for (int round = 0; round < 200; ++round) {
      k().AdvanceTime(2'000'000);  // past every back-off
      agent_->RunOnce();
      for (int c = 1; c < 6; ++c) {
        if (Tid cur = k().CurrentOn(c)) k().Block(cur);
        if (k().HasRingClaim(c) || k().ConsumeRing(c) == Consumed::kClaimed) {
          ASSERT_TRUE(k().RunClaimed(c).ok());
        }
      }
    }
    for (Tid t : tids) {
      EXPECT_FALSE(k().thread(t).runnable) << "never ran: " << sched().Describe(t);
    }
    std::set<std::pair<int, uint64_t>> runs;  // (node, pos): each push ran at most once
    for (const auto& r : k().ring_runs()) {
      EXPECT_TRUE(runs.insert({k().NodeOfCpu(r.cpu), r.pos}).second) << "pos " << r.pos;
    }
    EXPECT_GT(k().ring_runs().size(), 0u);
    EXPECT_GE(k().starts().size(), tids.size());
    wakeup_pushes += k().wakeup_pushes();
    early += sched().stats().early_outcomes;
  }
  // The class's wake-up pushes and outcomes read before their message both
  // happened (else this test would not cover them).
  EXPECT_GT(wakeup_pushes, 0u);
  EXPECT_GT(early, 0u) << wakeup_pushes;
}

}  // namespace
}  // namespace ghost
