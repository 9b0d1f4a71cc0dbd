#include "userspace/policies/fifo_centralized.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/policy_test_util.h"

namespace ghost {
namespace {

using testing::PolicyRig;

class FifoCentralizedTest : public ::testing::Test {
 protected:
  FifoCentralizedScheduler& sched() {
    return static_cast<FifoCentralizedPolicy*>(rig_->policy.get())->scheduler();
  }
  // CPUs 0..ncpus-1; the agent sits on CPU 0.
  void Start(int ncpus, absl::Duration slice = absl::ZeroDuration()) {
    rig_ = std::make_unique<PolicyRig>(ncpus);
    ASSERT_TRUE(rig_->Start(CpuList::FirstN(ncpus),
                            {.name = "fifo-centralized", .slice = slice}));
    ASSERT_EQ(rig_->policy->agents().size(), 1u);
    agent_ = rig_->policy->agents()[0];
  }
  // A thread that may run on `cpu` only, woken while the class holds it
  // (pinned push: the fake's class holds it when told).
  Tid WakeClassHeldPinnedTo(int cpu) {
    Tid t = rig_->kernel.NewThread(0, /*runnable=*/false);
    rig_->kernel.SetAffinity(t, CpuList{cpu});
    rig_->Settle();
    rig_->kernel.set_class_held(t, true);
    rig_->kernel.Wake(t);
    rig_->Settle();
    return t;
  }
  std::vector<Tid> StartOrder() {
    std::vector<Tid> out;
    for (auto [c, t] : rig_->kernel.starts()) out.push_back(t);
    return out;
  }
  std::unique_ptr<PolicyRig> rig_;
  Agent* agent_ = nullptr;
};

// The runqueue tests' threads, by tid: task(tid, qos, order) sets one up.
class RunqueueTasks {
 public:
  FifoTask& operator()(Tid tid, uint32_t qos, uint64_t order = 0) {
    FifoTask& x = t_[tid];
    x.tid = tid;
    x.qos = qos;
    x.order_ns = order;
    return x;
  }
  FifoTask& operator[](Tid tid) { return t_.at(tid); }

 private:
  std::map<Tid, FifoTask> t_;
};

TEST(FifoRunqueueTest, ClassesInOrderFirstComeFirstServedWithin) {
  RunqueueTasks task;
  FifoRunqueue q;
  q.PushBack(task(1, 0));
  q.PushBack(task(2, 5));
  q.PushBack(task(3, 1));
  q.PushBack(task(4, 5));
  q.PushBack(task(5, 0));
  q.PushFront(task(6, 1));  // keeps its turn: the head of class 1
  q.PushFront(task(7, 9));
  EXPECT_EQ(std::vector<Tid>(q.tids().begin(), q.tids().end()),
            (std::vector<Tid>{7, 2, 4, 6, 3, 1, 5}));
  EXPECT_EQ(q.HeadQos(), 9u);
  q.Remove(task[7]);
  q.RemoveTid(4);
  q.PushBack(task(8, 5));
  EXPECT_EQ(std::vector<Tid>(q.tids().begin(), q.tids().end()),
            (std::vector<Tid>{2, 8, 6, 3, 1, 5}));
  EXPECT_EQ(q.HeadQos(), 5u);
  // One class (the FIFOs): plain first come, first served.
  FifoRunqueue fifo;
  for (Tid tid : {11, 12, 13}) fifo.PushBack(task(tid, 0));
  fifo.PushFront(task(14, 0));
  EXPECT_EQ(std::vector<Tid>(fifo.tids().begin(), fifo.tids().end()),
            (std::vector<Tid>{14, 11, 12, 13}));
}

// Aged threads (search's wait bound) go ahead of all others, first aged
// first; a thread going back to the head (PushFront) does not overtake them.
TEST(FifoRunqueueTest, AgedThreadsGoFirstInTheOrderTheyAged) {
  RunqueueTasks task;
  FifoRunqueue q;
  q.PushBack(task(1, 0, 10));
  q.PushBack(task(2, 0, 900));
  q.PushBack(task(3, 0, 500));
  q.Remove(task[2]);
  q.PushAged(task[2]);
  q.Remove(task[3]);
  q.PushAged(task[3]);
  q.PushFront(task(4, 0, 0));  // left its CPU: back to the head of the rest
  q.PushBack(task(5, 0, 0));
  EXPECT_EQ(std::vector<Tid>(q.tids().begin(), q.tids().end()),
            (std::vector<Tid>{2, 3, 4, 5, 1}));
  EXPECT_TRUE(q.Aged(0));
  EXPECT_TRUE(q.Aged(1));
  EXPECT_FALSE(q.Aged(2));
  q.Remove(task[2]);
  EXPECT_TRUE(q.Aged(0));
  EXPECT_FALSE(q.Aged(1));
}

TEST(FifoRunqueueTest, DeadlinesEarliestFirstWithinAClass) {
  RunqueueTasks task;  // task(tid, class, deadline)
  constexpr uint64_t kNone = ThreadRank::kNoDeadline;
  FifoRunqueue q;
  q.PushBack(task(1, 1, kNone));
  q.PushBack(task(2, 1, 300));
  q.PushBack(task(3, 1, 100));
  q.PushBack(task(4, 1, 300));  // behind the other 300
  q.PushBack(task(5, 0, 50));   // an earlier deadline of a lower class: after
  q.PushBack(task(6, 2, kNone));
  q.PushFront(task(7, 1, 300));  // keeps its turn: ahead of the other 300s
  q.PushBack(task(8, 1, kNone));  // no deadline: after every deadline, FIFO
  EXPECT_EQ(std::vector<Tid>(q.tids().begin(), q.tids().end()),
            (std::vector<Tid>{6, 3, 7, 2, 4, 1, 8, 5}));
}

TEST_F(FifoCentralizedTest, OneGlobalAgentOnTheDefaultQueue) {
  Start(4);
  EXPECT_TRUE(agent_->global());
  EXPECT_EQ(agent_->cpu(), 0);
  EXPECT_EQ(agent_->queue(), rig_->enclave->default_queue());
}

TEST_F(FifoCentralizedTest, GroupCommitStartsAllTargetsInOneCall) {
  Start(4);
  std::vector<Tid> tids;
  for (int i = 0; i < 3; ++i) tids.push_back(rig_->kernel.NewThread());
  agent_->RunOnce();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_EQ(rig_->kernel.last_commit_cpus(), (std::vector<int>{1, 2, 3}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rig_->kernel.CurrentOn(i + 1), tids[i]);
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);  // the agent's CPU
  EXPECT_EQ(sched().stats().commits, 3u);
}

// A WAKEUP proves the thread left its CPU: believing it still runs there (its
// BLOCKED was missed) would leave it parked until the class's watchdog.
TEST_F(FifoCentralizedTest, WakeupOfAThreadBelievedOnACpuRunsIt) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), a);
  rig_->kernel.Block(a);
  rig_->kernel.ConsumeQueue(rig_->enclave->default_queue(),
                            [](const ghost_msg&) {});  // the BLOCKED, missed
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 2u);
  EXPECT_EQ(sched().stats().wakeups_on_cpu, 1u);
}

TEST_F(FifoCentralizedTest, AgentCpuNeverRunsThreads) {
  Start(3);
  for (int i = 0; i < 10; ++i) rig_->kernel.NewThread();
  for (int step = 0; step < 20; ++step) {
    rig_->Settle();
    for (int cpu = 1; cpu < 3; ++cpu) {
      if (Tid t = rig_->kernel.CurrentOn(cpu)) rig_->kernel.Exit(t);
    }
  }
  EXPECT_EQ(rig_->kernel.starts().size(), 10u);
  for (auto [cpu, t] : rig_->kernel.starts()) EXPECT_NE(cpu, 0);
}

// Two threads pinned to the global agent's CPU, transactions only (no
// rings): when it is free, the one that has waited longer gets it, though the
// other is ahead in the queue (it left that CPU and went back to the head).
// Taking the queue's first there kept a thread pinned to CPU 0 waiting 5 s
// for the watchdog under search (clients_search, stress-ng's affinity
// stressor), whose queue is ordered by runtime.
TEST_F(FifoCentralizedTest, AgentCpuGoesToTheThreadThatWaitedLongest) {
  Start(3);
  testing::FakeKernelSide& k = rig_->kernel;
  const Tid first = k.NewThread();
  k.SetAffinity(first, CpuList({0}));
  rig_->Settle();
  ASSERT_EQ(k.CurrentOn(0), first);
  const Tid patient = k.NewThread();
  k.SetAffinity(patient, CpuList({0}));
  rig_->Settle();
  k.AdvanceTime(1'000'000);
  // A mover ran on CPU 1, pinned itself to CPU 0 and was moved off CPU 1
  // (PREEMPT): back to the queue's head.
  const Tid mover = k.NewThread();
  rig_->Settle();
  ASSERT_EQ(k.CurrentOn(1), mover);
  k.SetAffinity(mover, CpuList({0}));
  k.Preempt(mover);
  rig_->Settle();
  k.AdvanceTime(1'000'000);
  k.Block(first);
  rig_->Settle();
  EXPECT_EQ(k.CurrentOn(0), patient);
}

// Without the rings too: a thread pinned to the global agent's CPU that has
// waited kNarrowWaitNs takes it from one that has had it as long (which
// runs only while the agent steps aside). Without this, under search, such
// threads waited 5 s for the watchdog (clients_search).
TEST_F(FifoCentralizedTest, NarrowThreadPreemptsOnTheAgentsCpu) {
  Start(3);
  testing::FakeKernelSide& k = rig_->kernel;
  const Tid first = k.NewThread();
  k.SetAffinity(first, CpuList({0}));
  rig_->Settle();
  ASSERT_EQ(k.CurrentOn(0), first);
  const Tid waiter = k.NewThread();
  k.SetAffinity(waiter, CpuList({0}));
  rig_->Settle();
  EXPECT_EQ(k.CurrentOn(0), first);  // not yet
  k.AdvanceTime(FifoCentralizedScheduler::kNarrowWaitNs + 1);
  rig_->Settle();
  EXPECT_EQ(sched().stats().narrow_preemptions, 1u);
  EXPECT_EQ(k.CurrentOn(0), waiter);
}

TEST_F(FifoCentralizedTest, FifoOrderHolds) {
  Start(3);  // two CPUs for threads
  std::vector<Tid> tids;
  for (int i = 0; i < 6; ++i) tids.push_back(rig_->kernel.NewThread());
  rig_->Settle();
  // Free one CPU at a time: threads start in arrival order.
  for (int i = 0; i < 6; ++i) {
    for (int cpu = 1; cpu < 3; ++cpu) {
      if (Tid t = rig_->kernel.CurrentOn(cpu)) {
        rig_->kernel.Block(t);
        break;
      }
    }
    rig_->Settle();
  }
  EXPECT_EQ(StartOrder(), tids);
  // Woken threads queue in wake-up order.
  rig_->kernel.Wake(tids[3]);
  rig_->kernel.Wake(tids[1]);
  rig_->kernel.Wake(tids[2]);
  rig_->Settle();
  const std::vector<Tid> s = StartOrder();
  ASSERT_EQ(s.size(), 8u);
  EXPECT_EQ(s[6], tids[3]);
  EXPECT_EQ(s[7], tids[1]);
  EXPECT_EQ(sched().Waiting(), 1u);
}

TEST_F(FifoCentralizedTest, AffinityIsRespected) {
  Start(4);
  Tid a = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(a, CpuList{3});
  Tid b = rig_->kernel.NewThread();
  Tid c = rig_->kernel.NewThread();
  Tid d = rig_->kernel.NewThread();
  rig_->Settle();
  // b, c, d took 1, 2, 3; a wakes and may only use 3.
  rig_->kernel.Wake(a);
  Tid e = rig_->kernel.NewThread();
  rig_->kernel.Block(b);  // frees CPU 1: e (not a) goes there
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), e);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, -1);
  rig_->kernel.Block(d);  // frees CPU 3
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(3), a);
  for (auto [cpu, t] : rig_->kernel.starts()) {
    if (t == a) {
      EXPECT_EQ(cpu, 3);
    }
  }
  (void)c;
}

TEST_F(FifoCentralizedTest, NotAllowedPutsTheThreadBackForAnotherCpu) {
  Start(3);
  Tid a = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->Settle();
  rig_->kernel.SetAffinitySilently(a, CpuList{2});
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_GE(sched().stats().failed_commits, 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(2), a);
}

// NOT_ALLOWED on the one CPU a thread may use as the agent knows it, with no
// newer message: the kernel refused for a moment (a stress-ng affinity
// thread so refused waited 5 s for the class's watchdog). The thread is
// tried there again after a back-off, with no message in between.
TEST_F(FifoCentralizedTest, NotAllowedOnTheLastUsableCpuIsRetried) {
  Start(3);
  Tid a = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(a, CpuList{2});
  rig_->Settle();
  rig_->kernel.SetAffinitySilently(a, CpuList{1});
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_GE(sched().stats().failed_commits, 1u);
  EXPECT_EQ(sched().stats().not_allowed_retries, 1u);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, -1);
  rig_->kernel.SetAffinitySilently(a, CpuList{2});
  rig_->kernel.AdvanceTime(kNotAllowedBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(2), a);
}

TEST_F(FifoCentralizedTest, StaleCommitIsRetried) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  Tid b = GHOST_TID_NONE;
  rig_->kernel.set_on_consume([&](QueueId, const ghost_msg&) {
    if (b == GHOST_TID_NONE) b = rig_->kernel.NewThread();
  });
  agent_->RunOnce();
  EXPECT_EQ(sched().stats().stale, 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  rig_->kernel.set_on_consume(nullptr);
  agent_->RunOnce();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);  // kept its place ahead of b
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
}

// NOT_FOUND means the thread is gone (the class finds every thread it has
// reported until DEAD/DEPARTED): it is not retried, and the CPU goes to the
// next thread; its DEAD message forgets it.
TEST_F(FifoCentralizedTest, CommitNotFoundMeansGone) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.set_unfindable(a, 1000);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);  // not tried again
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
  rig_->kernel.Exit(a);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);
}

TEST_F(FifoCentralizedTest, SlicePreemptsWhenOthersWait) {
  Start(3, absl::Milliseconds(10));
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.AdvanceTime(6'000'000);
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.AdvanceTime(6'000'000);  // a ran 12 ms, b 6 ms
  rig_->Settle();
  EXPECT_EQ(sched().stats().preemptions, 0u);  // nobody waits: keep running
  Tid c = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(sched().stats().preemptions, 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(1), c);  // a's slice was up, b's not
  EXPECT_EQ(rig_->kernel.CurrentOn(2), b);
  // a went to the tail; when b's slice is up, a takes its CPU.
  rig_->kernel.AdvanceTime(5'000'000);
  rig_->Settle();
  EXPECT_EQ(sched().stats().preemptions, 2u);
  EXPECT_EQ(rig_->kernel.CurrentOn(1), c);  // c's slice is not up
  EXPECT_EQ(rig_->kernel.CurrentOn(2), a);
  EXPECT_EQ(StartOrder(), (std::vector<Tid>{a, b, c, a}));
}

TEST_F(FifoCentralizedTest, NoSliceNoPreemption) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.AdvanceTime(1'000'000'000);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(sched().stats().preemptions, 0u);
}

TEST_F(FifoCentralizedTest, CpuTakenByHigherClass) {
  Start(3);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), a);
  Tid c = rig_->kernel.NewThread();  // waits: CPUs 1 and 2 are busy
  rig_->kernel.TakeCpu(1);  // a preempted; CPU 1 gone for now
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  rig_->kernel.Block(b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(2), a);  // preempted a kept its turn
  rig_->kernel.ReturnCpu(1);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), c);
  // Without a CPU_BUSY message the commit itself tells: CPU_UNAVAILABLE.
  rig_->kernel.Block(c);
  rig_->kernel.TakeCpu(1, /*notify=*/false);
  rig_->kernel.Wake(c);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  EXPECT_GE(sched().stats().failed_commits, 1u);
  rig_->kernel.ReturnCpu(1);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), c);
}

TEST_F(FifoCentralizedTest, PendingResultAndThreadThatAlreadyLeft) {
  Start(2);
  rig_->kernel.set_defer_results(true);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);  // CPU 1's result is not in
  rig_->kernel.CompleteDeferred();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
}

// The thread ran, blocked and woke up before the agent read the COMMITTED
// result: it must be queued again, not forgotten.
TEST_F(FifoCentralizedTest, ThreadThatLeftAndCameBackBeforeTheResultIsKept) {
  Start(2);
  rig_->kernel.set_defer_results(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), a);
  rig_->kernel.Block(a);
  rig_->kernel.Wake(a);
  rig_->Settle();  // both read, result still pending
  rig_->kernel.set_defer_results(false);
  rig_->kernel.CompleteDeferred();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 2u);
  EXPECT_EQ(sched().Waiting(), 0u);
}

// Started behind the policy's back (the fallback) on CPU 2: the commit finds
// it RUNNING_ELSEWHERE and the policy learns from its status word that CPU 2
// is taken, so it puts no one else there until it stops.
TEST_F(FifoCentralizedTest, RunningElsewhereMarksItsCpuBusy) {
  Start(4);
  Tid a = rig_->kernel.NewThread();
  RunRequest fallback(rig_->kernel, 2);
  ASSERT_TRUE(fallback.Open({.target = a, .target_barrier = 1}).ok());
  ASSERT_TRUE(fallback.Commit());
  rig_->Settle();
  EXPECT_EQ(sched().CurrentOn(2), a);
  Tid b = rig_->kernel.NewThread();
  Tid c = rig_->kernel.NewThread();
  Tid d = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
  EXPECT_EQ(rig_->kernel.CurrentOn(3), c);
  EXPECT_EQ(sched().stats().failed_commits, 1u);  // only a's
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(2), d);
}

TEST_F(FifoCentralizedTest, RunningElsewhereInTransitIsRetried) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.set_in_transit(a, true);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);
  rig_->kernel.set_in_transit(a, false);
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
}

// Late failures: the kernel side settles a commit from the thread's own
// callbacks, so a failed result can arrive after newer messages about the
// thread (the fake holds the commit until FinishHeld). Whatever the order, the
// thread is neither lost, nor run twice, nor committed while it cannot run.

// It blocked and woke up while the commit was pending; NOT_RUNNABLE then
// describes a past state: the WAKEUP stands and the thread is queued again.
TEST_F(FifoCentralizedTest, LateNotRunnableAfterANewerWakeupQueuesItAgain) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);  // pending
  rig_->kernel.Block(a);
  rig_->kernel.Wake(a);
  rig_->Settle();  // both read; the result is not in
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_NOT_RUNNABLE).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(sched().stats().failed_commits, 1u);
}

// NOT_RUNNABLE with nothing newer: its BLOCKED message is on its way. It is
// not committed again until a message says it can run (WAKEUP).
TEST_F(FifoCentralizedTest, LateNotRunnableWithNothingNewerWaitsForAWakeup) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_NOT_RUNNABLE).ok());
  rig_->Settle();
  rig_->kernel.AdvanceTime(10 * kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_EQ(sched().Waiting(), 0u);
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_TRUE(rig_->kernel.starts().empty());
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
}

// NOT_FOUND with nothing newer: the thread is gone and its DEAD message is
// on its way. It is not committed again, its CPU goes to the next thread,
// and DEAD forgets it.
TEST_F(FifoCentralizedTest, LateNotFoundWithNothingNewerIsNotRetried) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_NOT_FOUND).ok());
  rig_->Settle();
  rig_->kernel.AdvanceTime(10 * kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_TRUE(rig_->kernel.starts().empty());
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
  rig_->kernel.Exit(a);
  rig_->kernel.Block(b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(rig_->kernel.commit_calls(), 2u);
}

// The DEAD message was read first (the class settles NOT_FOUND as the thread
// goes, and the agent reads its queue before its results): the result is
// about a thread the policy forgot, and its CPU is free again.
TEST_F(FifoCentralizedTest, LateNotFoundAfterItsDeadMessageFreesTheCpu) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.Exit(a);
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();  // DEAD read, the result is not in: CPU 1 still pending
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_NOT_FOUND).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
  EXPECT_EQ(rig_->kernel.starts(), (std::vector<std::pair<int, Tid>>{{1, b}}));
}

// PREEMPTED (it lost the CPU before it ran) after a newer AFFINITY_CHANGED
// that forbids that CPU: it is queued again, and runs once, where it may.
TEST_F(FifoCentralizedTest, LatePreemptedAfterANewerAffinityRunsItWhereAllowed) {
  Start(3);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.thread(a).held_cpu, 1);
  rig_->kernel.SetAffinity(a, CpuList{2});
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_PREEMPTED).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.starts(), (std::vector<std::pair<int, Tid>>{{2, a}}));
  EXPECT_EQ(sched().CurrentOn(2), a);
  EXPECT_EQ(sched().Waiting(), 0u);
}

// PREEMPTED because the kernel side ran it elsewhere (its fallback, on CPU
// 2): the policy finds out where it runs and keeps that CPU for it; it is
// not started a second time, and nobody else is put on CPU 2 meanwhile.
TEST_F(FifoCentralizedTest, LatePreemptedWhileItRunsElsewhereIsNotRunTwice) {
  Start(3);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.thread(a).held_cpu, 1);
  rig_->kernel.RunByFallback(a, 2);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_PREEMPTED).ok());
  rig_->Settle();
  EXPECT_EQ(sched().CurrentOn(2), a);
  Tid b = rig_->kernel.NewThread();
  Tid c = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
  EXPECT_EQ(rig_->kernel.CurrentOn(2), a);  // c waits
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(2), c);
  EXPECT_EQ(rig_->kernel.starts(),
            (std::vector<std::pair<int, Tid>>{{2, a}, {1, b}, {2, c}}));
}

TEST_F(FifoCentralizedTest, SixtyFourThreadsAllComplete) {
  Start(5, absl::Milliseconds(1));
  std::map<Tid, int> runs;
  for (int i = 0; i < 64; ++i) runs[rig_->kernel.NewThread()] = 0;
  int exited = 0;
  for (int step = 0; step < 2000 && exited < 64; ++step) {
    rig_->Settle();
    rig_->kernel.AdvanceTime(400'000);
    for (int cpu = 1; cpu < 5; ++cpu) {
      Tid t = rig_->kernel.CurrentOn(cpu);
      if (t == GHOST_TID_NONE) continue;
      if (step % 4 != 0) continue;  // let them run past their slice
      if (++runs[t] == 3) {
        rig_->kernel.Exit(t);
        ++exited;
      } else {
        rig_->kernel.Block(t);
        rig_->kernel.Wake(t);
      }
    }
  }
  EXPECT_EQ(exited, 64);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_GT(sched().stats().preemptions, 0u);
}

// A CPU_AVAILABLE lost (a queue that overflowed) must not keep a CPU from
// the agent for good: the kernel side's CpuBusy says it is free again.
TEST_F(FifoCentralizedTest, LostCpuAvailableDoesNotKeepTheCpuBusy) {
  Start(3);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), a);
  ASSERT_EQ(rig_->kernel.CurrentOn(2), b);
  rig_->kernel.TakeCpu(1);  // CPU_BUSY; a waits (CPU 2 is ours: not the agent's CPU)
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  ASSERT_NE(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.ReturnCpuSilently(1);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a) << "the CPU stayed busy for the agent";
  EXPECT_EQ(sched().stats().busy_cleared, 1u);
}

// Pinned push (bpf/progs/pinned.bpf.h): the global agent lets the class queue
// threads pinned to a CPU exactly while nothing of its own waits that could
// run there; its own CPU included (the class honours it there only while the
// agent sleeps on its queue).
TEST_F(FifoCentralizedTest, PinnedPushIsOnExactlyWhereNothingWaits) {
  Start(3);  // the agent on CPU 0, CPUs 1 and 2 scheduled
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.pinned_push(0)) << "the agent's own CPU";
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
  EXPECT_TRUE(rig_->kernel.pinned_push(2));
  std::vector<Tid> tids;
  for (int i = 0; i < 2; ++i) tids.push_back(rig_->kernel.NewThread());
  rig_->Settle();
  ASSERT_EQ(sched().Waiting(), 0u);
  // One waits that may run only on CPU 2: CPU 1 keeps pinned push.
  Tid narrow = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(narrow, CpuList{2});
  rig_->kernel.Wake(narrow);
  rig_->Settle();
  ASSERT_EQ(sched().Waiting(), 1u);
  EXPECT_TRUE(rig_->kernel.pinned_push(0));
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
  EXPECT_FALSE(rig_->kernel.pinned_push(2)) << "a pinned thread would overtake it";
  // One that may run anywhere: no CPU may be overtaken.
  tids.push_back(rig_->kernel.NewThread());
  rig_->Settle();
  EXPECT_FALSE(rig_->kernel.pinned_push(0));
  EXPECT_FALSE(rig_->kernel.pinned_push(1));
  EXPECT_FALSE(rig_->kernel.pinned_push(2));
  tids.push_back(narrow);
  for (Tid t : tids) rig_->kernel.Exit(t);
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.pinned_push(0));
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
  EXPECT_TRUE(rig_->kernel.pinned_push(2));
}

TEST_F(FifoCentralizedTest, PinnedPushOffLeavesEveryCpuToTheAgent) {
  rig_ = std::make_unique<PolicyRig>(3);
  ASSERT_TRUE(rig_->Start(CpuList::FirstN(3), {.name = "fifo-centralized", .pinned_push = false}));
  rig_->Settle();
  for (int cpu = 0; cpu < 3; ++cpu) EXPECT_FALSE(rig_->kernel.pinned_push(cpu)) << cpu;
}

// A thread whose messages say the class holds it is neither queued nor
// committed, and costs the agent nothing; a message without the flag that
// queues nothing itself (its mask widens: the class parks it for the agent)
// makes it the agent's again, and it runs.
TEST_F(FifoCentralizedTest, ClassHeldThreadIsLeftToTheClassUntilGivenBack) {
  Start(3);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int acpu = rig_->kernel.thread(a).cpu;
  ASSERT_GE(acpu, 1);
  const int other = acpu == 1 ? 2 : 1;
  Tid b = WakeClassHeldPinnedTo(other);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, -1) << "committed although the class held it";
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_GE(sched().stats().class_held, 1u);
  EXPECT_EQ(sched().stats().failed_commits, 0u) << "a class-held thread was committed";
  EXPECT_TRUE(rig_->kernel.pinned_push(other));
  rig_->kernel.set_class_held(b, false);
  rig_->kernel.SetAffinity(b, CpuList{1, 2});
  rig_->Settle();
  EXPECT_EQ(sched().stats().class_returned, 1u);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, other) << "left in no runqueue";
}

// Given back by a PREEMPT (the class could no longer queue it on its CPU):
// queued and committed as any preempted thread.
TEST_F(FifoCentralizedTest, ClassHeldThreadGivenBackByAPreemptRuns) {
  Start(2);
  Tid b = WakeClassHeldPinnedTo(1);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, -1);
  rig_->kernel.GiveBack(b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), b);
}

// Hand-over: threads waiting for a scheduled CPU they alone may run on go to
// the class in one call, in order, and pinned push is on there again; none
// is committed.
TEST_F(FifoCentralizedTest, HandOverGivesWaitingPinnedThreadsToTheClassInOrder) {
  Start(3);
  rig_->kernel.set_hand_over(true);
  Tid a = rig_->kernel.NewThread(), b = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_NE(rig_->kernel.CurrentOn(1), GHOST_TID_NONE);
  ASSERT_NE(rig_->kernel.CurrentOn(2), GHOST_TID_NONE);
  std::vector<Tid> pinned;
  for (int i = 0; i < 3; ++i) {
    Tid t = rig_->kernel.NewThread(0, /*runnable=*/false);
    rig_->kernel.SetAffinity(t, CpuList{2});
    pinned.push_back(t);
  }
  rig_->Settle();
  for (Tid t : pinned) rig_->kernel.Wake(t);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.handed(), pinned);
  EXPECT_EQ(rig_->kernel.hand_over_calls(), 1);
  EXPECT_EQ(sched().Waiting(), 0u);
  EXPECT_EQ(sched().stats().handed_over, 3u);
  EXPECT_TRUE(rig_->kernel.pinned_push(2));
  for (auto [c, t] : rig_->kernel.starts()) {
    EXPECT_TRUE(std::find(pinned.begin(), pinned.end(), t) == pinned.end())
        << "handed-over thread " << t << " was committed";
  }
  (void)a;
  (void)b;
}

// Not past an older thread that may run there too: handed over, the pinned
// thread would overtake it. Once that one runs, it goes.
TEST_F(FifoCentralizedTest, HandOverStopsAtAnOlderThreadThatMayRunThere) {
  Start(2);  // one scheduled CPU: 1
  rig_->kernel.set_hand_over(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(1), a);
  Tid free = rig_->kernel.NewThread(0, false), last = rig_->kernel.NewThread(0, false);
  rig_->kernel.SetAffinity(last, CpuList{1});
  rig_->Settle();
  rig_->kernel.Wake(free);
  rig_->kernel.Wake(last);
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.handed().empty());
  EXPECT_FALSE(rig_->kernel.pinned_push(1));
  rig_->kernel.Block(a);  // free runs next; then nothing older waits for CPU 1
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), free);
  EXPECT_EQ(rig_->kernel.handed(), std::vector<Tid>{last});
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
}

// A thread the class runs (a pinned run: the agent does not know it runs)
// changes its own mask: its AFFINITY_CHANGED has no flag, but its status
// word at that seqnum says it runs, so it is not queued (a commit would only
// fail RUNNING_ELSEWHERE); the off-CPU message that follows queues it.
TEST_F(FifoCentralizedTest, ClassHeldThreadRunningAtItsAffinityChangeIsNotQueued) {
  Start(3);
  Tid b = WakeClassHeldPinnedTo(1);
  rig_->kernel.RunClassHeld(b, 1);
  rig_->kernel.SetAffinityWhileRunning(b, CpuList{2});
  rig_->Settle();
  EXPECT_EQ(sched().Waiting(), 0u) << "queued while it runs";
  EXPECT_EQ(sched().stats().failed_commits, 0u);
  rig_->kernel.Preempt(b);  // the kernel's move off CPU 1: a plain PREEMPT
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(2), b);
}

}  // namespace
}  // namespace ghost
