#include "userspace/policies/fifo_per_cpu.h"

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/unit/policy_test_util.h"

namespace ghost {
namespace {

using testing::PolicyRig;

class FifoPerCpuTest : public ::testing::Test {
 protected:
  FifoPerCpuScheduler& sched() {
    return static_cast<FifoPerCpuPolicy*>(rig_->policy.get())->scheduler();
  }
  void Start(int ncpus, absl::Duration slice = absl::ZeroDuration()) {
    rig_ = std::make_unique<PolicyRig>(ncpus);
    ASSERT_TRUE(rig_->Start(CpuList::FirstN(ncpus),
                            {.name = "fifo-per-cpu", .slice = slice}));
    ASSERT_EQ(rig_->policy->agents().size(), static_cast<size_t>(ncpus));
  }
  // Threads started on `cpu`, in order.
  std::vector<Tid> StartsOn(int cpu) {
    std::vector<Tid> out;
    for (auto [c, t] : rig_->kernel.starts()) {
      if (c == cpu) out.push_back(t);
    }
    return out;
  }
  // A message about thread 4242 (a TASK_NEW says runnable), handed to the
  // scheduler's handlers directly to read them in an order of our choosing.
  static Message Msg(uint16_t type, uint64_t seq) {
    ghost_msg raw = {};
    raw.type = type;
    raw.size = sizeof(ghost_msg);
    raw.tid = 4242;
    raw.seqnum = seq;
    raw.task_new.runnable = 1;
    return Message(raw);
  }
  std::unique_ptr<PolicyRig> rig_;
};

TEST_F(FifoPerCpuTest, OneAgentPerCpuEachOnItsOwnQueue) {
  Start(4);
  std::set<QueueId> queues;
  for (Agent* a : rig_->policy->agents()) {
    EXPECT_FALSE(a->global());
    queues.insert(a->queue());
  }
  EXPECT_EQ(queues.size(), 4u);
  // The first CPU's agent reads the default queue, where new threads report.
  EXPECT_EQ(rig_->policy->agents()[0]->cpu(), 0);
  EXPECT_EQ(rig_->policy->agents()[0]->queue(), rig_->enclave->default_queue());
}

TEST_F(FifoPerCpuTest, NewThreadsAreSpreadOverCpus) {
  Start(4);
  std::vector<Tid> tids;
  for (int i = 0; i < 4; ++i) tids.push_back(rig_->kernel.NewThread());
  rig_->Settle();
  std::set<int> cpus;
  for (Tid t : tids) {
    const int cpu = rig_->kernel.thread(t).cpu;
    EXPECT_GE(cpu, 0) << "thread " << t << " not running";
    EXPECT_EQ(sched().OwnerOf(t), cpu);
    cpus.insert(cpu);
  }
  EXPECT_EQ(cpus.size(), 4u);
  // Three of them left the default queue (CPU 0's own).
  EXPECT_EQ(rig_->kernel.associations(), 3u);
  // Each agent committed to its own CPU only: the thread's messages go to
  // that CPU's queue.
  for (Agent* a : rig_->policy->agents()) {
    const Tid cur = rig_->kernel.CurrentOn(a->cpu());
    ASSERT_NE(cur, GHOST_TID_NONE);
    EXPECT_EQ(rig_->kernel.thread(cur).queue, a->queue());
  }
}

TEST_F(FifoPerCpuTest, FifoOrderOnOneCpu) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  Tid c = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
  // Wake-up order decides from now on: a, then b's successor c is ahead.
  rig_->kernel.Wake(a);
  rig_->kernel.Yield(b);  // b to the tail: c, a, b
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), c);
  rig_->kernel.Block(c);
  rig_->Settle();
  rig_->kernel.Block(a);
  rig_->Settle();
  rig_->kernel.Block(b);
  rig_->Settle();
  EXPECT_EQ(StartsOn(0), (std::vector<Tid>{a, b, c, a, b}));
}

TEST_F(FifoPerCpuTest, FifoOrderHoldsOnEveryCpu) {
  Start(4);
  std::vector<Tid> tids;
  for (int i = 0; i < 16; ++i) tids.push_back(rig_->kernel.NewThread());
  // Run to completion: whatever runs blocks for good.
  for (int step = 0; step < 100; ++step) {
    rig_->Settle();
    bool any = false;
    for (int cpu = 0; cpu < 4; ++cpu) {
      if (Tid t = rig_->kernel.CurrentOn(cpu)) {
        rig_->kernel.Block(t);
        any = true;
      }
    }
    if (!any) break;
  }
  EXPECT_EQ(rig_->kernel.starts().size(), 16u);
  for (int cpu = 0; cpu < 4; ++cpu) {
    std::vector<Tid> s = StartsOn(cpu);
    EXPECT_EQ(s.size(), 4u) << "cpu " << cpu;  // least loaded spreads evenly
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end())) << "cpu " << cpu;
  }
}

TEST_F(FifoPerCpuTest, StaleCommitIsDroppedAndRetried) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  Tid b = GHOST_TID_NONE;
  // A message lands while the agent drains: its barrier is old, the commit
  // of `a` fails AGENT_STALE and `a` must not be stranded.
  rig_->kernel.set_on_consume([&](QueueId, const ghost_msg&) {
    if (b == GHOST_TID_NONE) b = rig_->kernel.NewThread();
  });
  Agent* agent = rig_->policy->agents()[0];
  agent->RunOnce();
  EXPECT_EQ(sched().stats().stale, 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  rig_->kernel.set_on_consume(nullptr);
  agent->RunOnce();  // nothing new: the decision is made again
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);  // and keeps its FIFO place
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
}

TEST_F(FifoPerCpuTest, TargetStaleIsRetried) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  bool once = false;
  // A message about `a` itself after the agent read its seqnum.
  rig_->kernel.set_on_consume([&](QueueId, const ghost_msg&) {
    if (!once) {
      once = true;
      rig_->kernel.SetAffinity(a, CpuList{0});
    }
  });
  rig_->Settle();
  EXPECT_GE(sched().stats().stale, 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
}

TEST_F(FifoPerCpuTest, NotAllowedMovesTheThreadToAnAllowedCpu) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  const int bcpu = rig_->kernel.thread(b).cpu;
  ASSERT_GE(bcpu, 0);
  const int other = 1 - bcpu;
  rig_->kernel.Block(a);
  rig_->kernel.Block(b);
  rig_->Settle();
  // The agent of b's CPU only finds out by committing.
  rig_->kernel.SetAffinitySilently(b, CpuList{other});
  rig_->kernel.Wake(b);
  rig_->Settle();
  EXPECT_GE(sched().stats().failed_commits, 1u);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, other);
  EXPECT_EQ(sched().OwnerOf(b), other);
}

// NOT_ALLOWED on the one CPU a thread may use as its agent knows it, with no
// newer message: the kernel refused for a moment. The thread stays on that
// CPU's runqueue and is committed there again after a back-off, with no
// message in between (refusing the CPU left it to the class's watchdog).
TEST_F(FifoPerCpuTest, NotAllowedOnTheLastUsableCpuIsRetried) {
  Start(2);
  Tid a = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(a, CpuList{1});
  rig_->Settle();
  rig_->kernel.SetAffinitySilently(a, CpuList{0});
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_GE(sched().stats().failed_commits, 1u);
  EXPECT_EQ(sched().stats().not_allowed_retries, 1u);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, -1);
  rig_->kernel.SetAffinitySilently(a, CpuList{1});
  rig_->kernel.AdvanceTime(kNotAllowedBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), a);
}

TEST_F(FifoPerCpuTest, AffinityMessageMigratesAWaitingThread) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  Tid c = rig_->kernel.NewThread();  // waits behind a or b
  rig_->Settle();
  const int ccpu = sched().OwnerOf(c);
  ASSERT_GE(ccpu, 0);
  EXPECT_EQ(rig_->kernel.thread(c).cpu, -1);
  const int other = 1 - ccpu;
  rig_->kernel.SetAffinity(c, CpuList{other});
  rig_->Settle();
  EXPECT_EQ(sched().OwnerOf(c), other);
  EXPECT_EQ(sched().RunqueueSize(ccpu), 0u);
  // It runs there once that CPU frees up.
  rig_->kernel.Block(rig_->kernel.CurrentOn(other));
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(other), c);
  (void)a;
  (void)b;
}

// A message about the thread lands in its old queue just before the move:
// AssociateQueue refuses (FailedPrecondition) and the move is retried after
// that message was read.
TEST_F(FifoPerCpuTest, RefusedAssociationIsRetried) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  Tid b = GHOST_TID_NONE;
  bool once = false;
  rig_->kernel.set_before_associate([&](Tid tid) {
    if (!once && tid == b) {
      once = true;
      rig_->kernel.SetAffinity(b, CpuList{0, 1});
    }
  });
  b = rig_->kernel.NewThread();  // CPU 0 is busy with a: b goes to CPU 1
  rig_->Settle();
  EXPECT_TRUE(once);
  EXPECT_GE(sched().stats().associate_retries, 1u);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, 0);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, 1);
  EXPECT_EQ(rig_->kernel.thread(b).queue, rig_->policy->agents()[1]->queue());
}

// NotFound from AssociateQueue means the thread is gone (the class finds
// every thread it has reported until DEAD/DEPARTED): it is not retried, and
// nothing is placed for it; its DEAD message (still to be read) forgets it.
TEST_F(FifoPerCpuTest, AssociationNotFoundMeansGone) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  Tid b = GHOST_TID_NONE;
  int tries = 0;
  rig_->kernel.set_before_associate([&](Tid tid) { tries += tid == b; });
  b = rig_->kernel.NewThread();  // CPU 0 is busy with a: b goes to CPU 1
  rig_->kernel.set_unfindable(b, 1000);
  rig_->Settle();
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(tries, 1);
  EXPECT_EQ(sched().stats().associate_retries, 0u);
  EXPECT_EQ(sched().OwnerOf(b), -1);
  EXPECT_EQ(rig_->kernel.thread(b).cpu, -1);
  rig_->kernel.Exit(b);
  rig_->Settle();
  EXPECT_EQ(sched().RunqueueSize(1), 0u);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, 0);
}

// The same for a commit: NOT_FOUND is not retried, and the CPU goes to the
// next thread.
TEST_F(FifoPerCpuTest, CommitNotFoundMeansGone) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.set_unfindable(a, 1000);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);  // not tried again
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
}

// A thread that is gone is forgotten at its DEAD message.
TEST_F(FifoPerCpuTest, NotFoundThreadIsForgottenAtItsDeadMessage) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.set_unfindable(a, 1000);
  rig_->Settle();
  rig_->kernel.Exit(a);
  rig_->Settle();
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(sched().OwnerOf(a), -1);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  EXPECT_EQ(sched().stats().failed_commits, 1u);
}

TEST_F(FifoPerCpuTest, CpuUnavailableWaitsForCpuAvailable) {
  Start(1);
  rig_->kernel.TakeCpu(0, /*notify=*/false);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  const uint64_t failed = sched().stats().failed_commits;
  EXPECT_GE(failed, 1u);
  rig_->Settle();  // no retry storm before the CPU comes back
  EXPECT_EQ(sched().stats().failed_commits, failed);
  rig_->kernel.ReturnCpu(0);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
}

TEST_F(FifoPerCpuTest, CpuBusyMessageHoldsCommitsBack) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.TakeCpu(0);  // preempts a, sends CPU_BUSY
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  EXPECT_EQ(sched().stats().failed_commits, 0u);  // it did not even try
  rig_->kernel.ReturnCpu(0);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
}

// On a real kernel the result comes when the thread runs; it may even have
// blocked again before the agent reads it.
TEST_F(FifoPerCpuTest, PendingResultAndThreadThatAlreadyLeft) {
  Start(1);
  rig_->kernel.set_defer_results(true);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);  // waits for the pending one
  rig_->kernel.Block(a);
  rig_->Settle();  // still pending: nothing new committed
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.CompleteDeferred();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
}

// A WAKEUP proves the thread left its CPU: believing it still runs there (its
// BLOCKED was missed) would leave it parked until the class's watchdog.
TEST_F(FifoPerCpuTest, WakeupOfAThreadBelievedOnItsCpuRunsIt) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.Block(a);
  rig_->kernel.ConsumeQueue(rig_->enclave->default_queue(),
                            [](const ghost_msg&) {});  // the BLOCKED, missed
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 2u);
  EXPECT_EQ(sched().stats().wakeups_on_cpu, 1u);
  EXPECT_NE(sched().stats().last_wakeup_on_cpu.find("history:"), std::string::npos);
}

// An agent that starts late never sees TASK_NEW: a thread it first hears of
// through another message is placed like a new one.
TEST_F(FifoPerCpuTest, ThreadFirstSeenLateIsPlaced) {
  Start(2);
  Tid a = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.ConsumeQueue(rig_->enclave->default_queue(),
                            [](const ghost_msg&) {});  // lost TASK_NEW
  Tid b = rig_->kernel.NewThread();  // keeps CPU 0's agent busy
  rig_->Settle();
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_GE(rig_->kernel.thread(a).cpu, 0);
  EXPECT_NE(rig_->kernel.thread(a).cpu, rig_->kernel.thread(b).cpu);
}

// The thread ran, was preempted (e.g. by its agent waking up) and is runnable
// again before the agent reads the COMMITTED result: it must be queued again.
TEST_F(FifoPerCpuTest, ThreadThatLeftAndCameBackBeforeTheResultIsKept) {
  Start(1);
  rig_->kernel.set_defer_results(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.Preempt(a);
  rig_->Settle();  // PREEMPT read, result still pending
  rig_->kernel.set_defer_results(false);
  rig_->kernel.CompleteDeferred();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 2u);
}

// Started behind the policy's back (the fallback): the commit finds it
// RUNNING_ELSEWHERE; its status word says it runs, so the policy waits for
// its off-CPU message instead of retrying.
TEST_F(FifoPerCpuTest, RunningElsewhereWaitsForTheThreadToStop) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  RunRequest fallback(rig_->kernel, 1);
  ASSERT_TRUE(fallback.Open({.target = a, .target_barrier = 1}).ok());
  ASSERT_TRUE(fallback.Commit());
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
  rig_->kernel.Block(a);
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.starts().size(), 2u);
  EXPECT_EQ(rig_->kernel.thread(a).cpu, sched().OwnerOf(a));
}

// RUNNING_ELSEWHERE while the status word says it is on no CPU: the kernel
// side is moving it. The policy retries after a short back-off.
TEST_F(FifoPerCpuTest, RunningElsewhereInTransitIsRetried) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->kernel.set_in_transit(a, true);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, 1u);  // backs off, no spinning
  rig_->kernel.set_in_transit(a, false);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);  // still backing off
  rig_->kernel.AdvanceTime(kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
}

// Late failures: the kernel side settles a commit from the thread's own
// callbacks, so a failed result can arrive after newer messages about the
// thread (the fake holds the commit until FinishHeld). Whatever the order, the
// thread is neither lost, nor run twice, nor committed while it cannot run.

// It blocked and woke up while the commit was pending; NOT_RUNNABLE then
// describes a past state: the WAKEUP stands and the thread is queued again.
TEST_F(FifoPerCpuTest, LateNotRunnableAfterANewerWakeupQueuesItAgain) {
  Start(1);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);  // pending
  rig_->kernel.Block(a);
  rig_->kernel.Wake(a);
  rig_->Settle();  // both read; the result is not in
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(0, GHOST_TXN_NOT_RUNNABLE).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  EXPECT_EQ(sched().stats().failed_commits, 1u);
}

// NOT_RUNNABLE with nothing newer: its BLOCKED message is on its way. It is
// not committed again until a message says it can run (WAKEUP).
TEST_F(FifoPerCpuTest, LateNotRunnableWithNothingNewerWaitsForAWakeup) {
  Start(1);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(0, GHOST_TXN_NOT_RUNNABLE).ok());
  rig_->Settle();
  rig_->kernel.AdvanceTime(10 * kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_TRUE(rig_->kernel.starts().empty());
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
}

// NOT_FOUND with nothing newer: the thread is gone and its DEAD message is
// on its way. It is not committed again, its CPU goes to the next thread,
// and DEAD forgets it.
TEST_F(FifoPerCpuTest, LateNotFoundWithNothingNewerIsNotRetried) {
  Start(1);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(0, GHOST_TXN_NOT_FOUND).ok());
  rig_->Settle();
  rig_->kernel.AdvanceTime(10 * kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  EXPECT_TRUE(rig_->kernel.starts().empty());
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
  rig_->kernel.Exit(a);
  rig_->kernel.Block(b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  EXPECT_EQ(rig_->kernel.starts().size(), 1u);
  EXPECT_EQ(sched().OwnerOf(a), -1);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  EXPECT_EQ(rig_->kernel.commit_calls(), 2u);
}

// The DEAD message was read first (the class settles NOT_FOUND as the thread
// goes, and the agent reads its queue before its results): the result is
// about a thread the policy forgot, and its CPU is free again.
TEST_F(FifoPerCpuTest, LateNotFoundAfterItsDeadMessageFreesTheCpu) {
  Start(1);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  rig_->kernel.Exit(a);
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();  // DEAD read, the result is not in: CPU 0 still pending
  EXPECT_EQ(rig_->kernel.commit_calls(), 1u);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(0, GHOST_TXN_NOT_FOUND).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
  EXPECT_EQ(rig_->kernel.starts(), (std::vector<std::pair<int, Tid>>{{0, b}}));
}

// PREEMPTED (it lost the CPU before it ran) after a newer AFFINITY_CHANGED
// that forbids that CPU: it moves to the allowed CPU's runqueue and runs
// there, once.
TEST_F(FifoPerCpuTest, LatePreemptedAfterANewerAffinityRunsItWhereAllowed) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int held = rig_->kernel.thread(a).held_cpu;
  ASSERT_GE(held, 0);
  const int other = 1 - held;
  rig_->kernel.SetAffinity(a, CpuList{other});
  rig_->Settle();
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(held, GHOST_TXN_PREEMPTED).ok());
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.starts(), (std::vector<std::pair<int, Tid>>{{other, a}}));
  EXPECT_EQ(sched().OwnerOf(a), other);
  EXPECT_EQ(rig_->kernel.thread(a).queue, rig_->policy->agents()[other]->queue());
}

// PREEMPTED because the kernel side ran it elsewhere (its fallback): it is
// not started a second time nor committed over and over while it runs
// there; once it stops, its own CPU runs it again.
TEST_F(FifoPerCpuTest, LatePreemptedWhileItRunsElsewhereIsNotRunTwice) {
  Start(2);
  rig_->kernel.set_hold_commits(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int held = rig_->kernel.thread(a).held_cpu;
  ASSERT_GE(held, 0);
  const int other = 1 - held;
  rig_->kernel.RunByFallback(a, other);
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(held, GHOST_TXN_PREEMPTED).ok());
  rig_->Settle();
  const uint64_t failed = sched().stats().failed_commits;
  rig_->kernel.AdvanceTime(10 * kElsewhereBackoffNs);
  rig_->Settle();
  EXPECT_EQ(sched().stats().failed_commits, failed);  // no retry storm
  EXPECT_EQ(rig_->kernel.starts(), (std::vector<std::pair<int, Tid>>{{other, a}}));
  rig_->kernel.Block(a);
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.starts(),
            (std::vector<std::pair<int, Tid>>{{other, a}, {held, a}}));
}

// A thread that left the class (DEPARTED, on its CPU's queue) and came back
// (TASK_NEW, on the default queue) may have the new life read first. The
// earlier life's DEPARTED, older by seqnum, must not make the agent forget
// the new one: it would wait unplaced until the class's watchdog.
TEST_F(FifoPerCpuTest, AnEarlierLifesDepartureReadLateKeepsTheNewLife) {
  Start(2);
  sched().TaskNew(Msg(GHOST_MSG_TASK_NEW, 1));  // first life
  auto known = [&] { return !absl::StartsWith(sched().Describe(4242), "unknown to the policy"); };
  EXPECT_EQ(sched().Describe(777), "unknown to the policy (no message about it read)");
  ASSERT_TRUE(known());
  sched().TaskNew(Msg(GHOST_MSG_TASK_NEW, 9));  // the new life, read first
  sched().TaskDeparted(Msg(GHOST_MSG_TASK_DEPARTED, 8));  // the first life's end, late
  EXPECT_TRUE(known());
  sched().TaskDeparted(Msg(GHOST_MSG_TASK_DEPARTED, 10));  // the new life's own end
  EXPECT_TRUE(absl::StartsWith(
      sched().Describe(4242),
      "unknown to the policy (forgotten at its DEAD/DEPARTED; then: tid=4242 seq=10 "))
      << sched().Describe(4242);
  EXPECT_TRUE(absl::StrContains(sched().Describe(4242), " history: msg "))
      << sched().Describe(4242);
}

// The thread leaves the class while it runs on CPU 1 and comes back: the new
// life's TASK_NEW (default queue, CPU 0's agent) is read before the earlier
// life's DEPARTED (CPU 1's queue). The new life must run, and CPU 1 must not
// stay reserved for the earlier one (a CI run: parked 5 s, then the watchdog).
TEST_F(FifoPerCpuTest, ANewLifeReadBeforeTheEarlierLifesEndRuns) {
  Start(2);
  rig_->kernel.NewThread();
  rig_->kernel.NewThread();
  rig_->Settle();
  const Tid on1 = rig_->kernel.CurrentOn(1);
  ASSERT_NE(on1, GHOST_TID_NONE);
  rig_->kernel.Rejoin(on1);
  rig_->Settle();
  EXPECT_GE(rig_->kernel.thread(on1).cpu, 0) << sched().Describe(on1);
  EXPECT_EQ(rig_->kernel.starts().size(), 3u);
}

// The same with the earlier life's commit still unread: its COMMITTED, read
// after the new life's TASK_NEW, says nothing about where the thread is now.
TEST_F(FifoPerCpuTest, AnEarlierLifesCommittedReadLateLeavesTheNewLifeQueued) {
  Start(2);
  rig_->kernel.set_defer_results(true);
  rig_->kernel.NewThread();
  rig_->kernel.NewThread();
  rig_->Settle();
  const Tid on1 = rig_->kernel.CurrentOn(1);
  ASSERT_NE(on1, GHOST_TID_NONE);
  rig_->kernel.Rejoin(on1);
  rig_->Settle();  // the new TASK_NEW and the old DEPARTED read; results pending
  rig_->kernel.set_defer_results(false);
  rig_->kernel.CompleteDeferred();
  rig_->Settle();
  // Queued behind whatever runs where it was placed: once that blocks, it runs.
  for (int cpu = 0; cpu < 2 && rig_->kernel.thread(on1).cpu < 0; ++cpu) {
    const Tid other = rig_->kernel.CurrentOn(cpu);
    if (other != GHOST_TID_NONE && other != on1) rig_->kernel.Block(other);
    rig_->Settle();
  }
  EXPECT_GE(rig_->kernel.thread(on1).cpu, 0) << sched().Describe(on1);
}

// Any message of an earlier life read after the new life's TASK_NEW is
// ignored: its BLOCKED would leave the runnable new life waiting for a WAKEUP.
TEST_F(FifoPerCpuTest, AnEarlierLifesBlockedReadLateIsIgnored) {
  Start(2);
  sched().TaskNew(Msg(GHOST_MSG_TASK_NEW, 1));   // first life
  sched().TaskNew(Msg(GHOST_MSG_TASK_NEW, 9));   // the new life, runnable, read first
  sched().TaskBlocked(Msg(GHOST_MSG_TASK_BLOCKED, 7));  // the first life's, late
  EXPECT_NE(sched().Describe(4242).find("runnable=1"), std::string::npos)
      << sched().Describe(4242);
  sched().TaskBlocked(Msg(GHOST_MSG_TASK_BLOCKED, 10));  // the new life's own
  EXPECT_NE(sched().Describe(4242).find("runnable=0"), std::string::npos)
      << sched().Describe(4242);
}

// A remote commit (an agent hands a thread to an idle CPU and commits it
// there itself, that CPU's agent sleeping on) that fails late sends no
// message: the agent that made it keeps looking for the result (Pending)
// until it is read, and the thread is placed again. Without that, it waited
// for whatever message came next, in the VM up to the watchdog.
TEST_F(FifoPerCpuTest, RemoteCommitThatFailsLateIsWatchedByItsMaker) {
  Start(2);
  Agent& a0 = *rig_->policy->agents()[0];
  Agent& a1 = *rig_->policy->agents()[1];
  a1.RunOnce();
  rig_->kernel.set_hold_commits(true);
  const Tid tid = rig_->kernel.NewThread(rig_->enclave->id());
  rig_->kernel.SetAffinity(tid, CpuList({1}));
  a0.RunOnce();  // TASK_NEW + AFFINITY_CHANGED: committed to CPU 1 by agent 0
  ASSERT_EQ(rig_->kernel.thread(tid).held_cpu, 1);
  ASSERT_EQ(sched().stats().remote_commits, 1u);
  EXPECT_TRUE(sched().Pending(a0));  // its commit, in flight
  EXPECT_FALSE(sched().Pending(a1));  // CPU 1's agent sleeps on
  rig_->kernel.set_hold_commits(false);
  ASSERT_TRUE(rig_->kernel.FinishHeld(1, GHOST_TXN_PREEMPTED).ok());
  EXPECT_TRUE(sched().Pending(a0));  // settled, not read yet: no message comes
  a0.RunOnce();  // reads the failure; commits the thread there again
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(1), tid);
  EXPECT_FALSE(sched().Pending(a0));
}

TEST_F(FifoPerCpuTest, SixtyFourThreadsAllComplete) {
  Start(4);
  std::map<Tid, int> runs;
  for (int i = 0; i < 64; ++i) runs[rig_->kernel.NewThread()] = 0;
  int exited = 0;
  for (int step = 0; step < 1000 && exited < 64; ++step) {
    rig_->Settle();
    for (int cpu = 0; cpu < 4; ++cpu) {
      Tid t = rig_->kernel.CurrentOn(cpu);
      if (t == GHOST_TID_NONE) continue;
      if (++runs[t] == 3) {
        rig_->kernel.Exit(t);
        ++exited;
      } else if (runs[t] == 1) {
        rig_->kernel.Yield(t);
      } else {
        rig_->kernel.Block(t);
        rig_->kernel.Wake(t);
      }
    }
  }
  EXPECT_EQ(exited, 64);
  for (auto [t, n] : runs) EXPECT_EQ(n, 3) << t;
  EXPECT_EQ(rig_->kernel.starts().size(), 64u * 3);
}

// Pinned push (bpf/progs/pinned.bpf.h): each CPU's agent lets the class
// queue threads pinned to its CPU exactly while nothing of its own waits for
// that CPU, so such a thread never overtakes an older one.
TEST_F(FifoPerCpuTest, PinnedPushIsOnExactlyWhileNothingWaits) {
  Start(2);
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.pinned_push(0));
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
  std::vector<Tid> tids;
  for (int i = 0; i < 4; ++i) tids.push_back(rig_->kernel.NewThread());
  rig_->Settle();
  // Two run, two wait: one behind each CPU's current thread.
  EXPECT_EQ(sched().RunqueueSize(0) + sched().RunqueueSize(1), 2u);
  for (int cpu : {0, 1}) {
    EXPECT_EQ(rig_->kernel.pinned_push(cpu), sched().RunqueueSize(cpu) == 0) << "cpu " << cpu;
  }
  for (Tid t : tids) rig_->kernel.Exit(t);
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.pinned_push(0));
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
}

TEST_F(FifoPerCpuTest, PinnedPushOffCommitsEverything) {
  rig_ = std::make_unique<PolicyRig>(2);
  ASSERT_TRUE(rig_->Start(CpuList::FirstN(2), {.name = "fifo-per-cpu", .pinned_push = false}));
  rig_->Settle();
  EXPECT_FALSE(rig_->kernel.pinned_push(0));
  EXPECT_FALSE(rig_->kernel.pinned_push(1));
}

// A thread whose message says the class holds it (GHOST_SW_CLASS_HELD at
// that seqnum) is neither queued nor committed; when the class gives it back
// (a PREEMPT without the flag), the policy takes it back and places it.
TEST_F(FifoPerCpuTest, ClassHeldThreadIsLeftToTheClassUntilGivenBack) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.Block(b);
  rig_->Settle();
  rig_->kernel.set_class_held(b, true);
  rig_->kernel.Wake(b);
  rig_->kernel.Block(a);  // CPU 0 is free: only the class may start b now
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  EXPECT_GE(sched().stats().class_held, 1u);
  EXPECT_EQ(sched().stats().failed_commits, 0u) << "a class-held thread was committed";
  rig_->kernel.GiveBack(b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
}

// Its next message without the flag (here the class preempted it after it
// ran) makes it the agent's again, whatever CPU owned it before.
TEST_F(FifoPerCpuTest, ClassHeldThreadIsTheAgentsAgainAtItsNextPlainMessage) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int acpu = rig_->kernel.thread(a).cpu;
  ASSERT_GE(acpu, 0);
  const int other = 1 - acpu;
  rig_->kernel.Block(a);
  rig_->Settle();
  rig_->kernel.set_class_held(a, true);
  rig_->kernel.SetAffinity(a, CpuList{other});
  rig_->kernel.Wake(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.thread(a).cpu, -1) << "committed although the class held it";
  rig_->kernel.set_class_held(a, false);
  rig_->kernel.Preempt(a);  // a message that no longer says class-held
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.thread(a).cpu, other);
  EXPECT_EQ(sched().OwnerOf(a), other);
}

// A message that does not queue a thread (AFFINITY_CHANGED widening a
// class-held thread's mask: the class parks it for its agent) still makes it
// the agent's again: it is queued and run.
TEST_F(FifoPerCpuTest, ClassHeldThreadWhoseMaskWidensIsQueuedAgain) {
  Start(2);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int acpu = rig_->kernel.thread(a).cpu;
  ASSERT_GE(acpu, 0);
  rig_->kernel.Block(a);
  rig_->Settle();
  rig_->kernel.set_class_held(a, true);
  rig_->kernel.SetAffinity(a, CpuList{acpu});
  rig_->kernel.Wake(a);
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.thread(a).cpu, -1);
  rig_->kernel.set_class_held(a, false);
  rig_->kernel.SetAffinity(a, CpuList{0, 1});
  rig_->Settle();
  EXPECT_GE(rig_->kernel.thread(a).cpu, 0) << "left in no runqueue";
  EXPECT_EQ(sched().stats().class_returned, 1u);
}

// Hand-over (KernelSide::HandOver): threads waiting at the head of a CPU's
// runqueue that may run only there go to the class in one call, in order,
// so the runqueue drains and pinned push is on again; none is committed.
TEST_F(FifoPerCpuTest, HandOverGivesWaitingPinnedThreadsToTheClassInOrder) {
  Start(2);
  rig_->kernel.set_hand_over(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  const int cpu = rig_->kernel.thread(a).cpu;
  ASSERT_GE(cpu, 0);
  rig_->kernel.SetAffinity(a, CpuList{cpu});
  rig_->Settle();
  std::vector<Tid> pinned;
  for (int i = 0; i < 3; ++i) {
    Tid t = rig_->kernel.NewThread(0, /*runnable=*/false);
    rig_->kernel.SetAffinity(t, CpuList{cpu});
    pinned.push_back(t);
  }
  rig_->Settle();
  for (Tid t : pinned) rig_->kernel.Wake(t);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.handed(), pinned);
  EXPECT_EQ(rig_->kernel.hand_over_calls(), 1);
  EXPECT_EQ(sched().RunqueueSize(cpu), 0u);
  EXPECT_TRUE(rig_->kernel.pinned_push(cpu));
  EXPECT_EQ(sched().stats().handed_over, 3u);
  for (auto [c, t] : rig_->kernel.starts()) {
    EXPECT_TRUE(std::find(pinned.begin(), pinned.end(), t) == pinned.end())
        << "handed-over thread " << t << " was committed";
  }
  // Its next plain message (its mask widens) makes a handed-over thread the
  // agent's again: it is queued and committed.
  rig_->kernel.set_class_held(pinned[0], false);
  rig_->kernel.Block(a);
  rig_->kernel.SetAffinity(pinned[0], CpuList{0, 1});
  rig_->Settle();
  EXPECT_GE(rig_->kernel.thread(pinned[0]).cpu, 0) << "left in no runqueue";
}

// Only the head: a pinned thread behind one that may run elsewhere waits
// for it (handed over, it would overtake it).
TEST_F(FifoPerCpuTest, HandOverStopsAtAThreadThatMayRunElsewhere) {
  Start(1);
  rig_->kernel.set_hand_over(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  Tid first = rig_->kernel.NewThread(0, false), free = rig_->kernel.NewThread(0, false),
      last = rig_->kernel.NewThread(0, false);
  rig_->kernel.SetAffinity(first, CpuList{0});
  rig_->kernel.SetAffinity(last, CpuList{0});
  rig_->Settle();
  for (Tid t : {first, free, last}) rig_->kernel.Wake(t);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.handed(), std::vector<Tid>{first});
  EXPECT_EQ(sched().RunqueueSize(0), 2u);
  EXPECT_FALSE(rig_->kernel.pinned_push(0));
  rig_->kernel.Block(a);  // free runs next; then last is at the head
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), free);
  EXPECT_EQ(rig_->kernel.handed(), (std::vector<Tid>{first, last}));
  EXPECT_TRUE(rig_->kernel.pinned_push(0));
}

// A refused entry (here the thread is being moved) stays queued and is
// committed as before; a kernel side without hand-over is not asked again.
TEST_F(FifoPerCpuTest, HandOverRefusalsStayQueued) {
  Start(1);
  rig_->kernel.set_hand_over(true);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  Tid b = rig_->kernel.NewThread(0, false);
  rig_->kernel.SetAffinity(b, CpuList{0});
  rig_->Settle();
  rig_->kernel.set_in_transit(b, true);
  rig_->kernel.Wake(b);
  rig_->Settle();
  EXPECT_TRUE(rig_->kernel.handed().empty());
  EXPECT_GE(sched().stats().hand_over_refused, 1u);
  EXPECT_EQ(sched().RunqueueSize(0), 1u);
  rig_->kernel.set_in_transit(b, false);
  rig_->kernel.set_hand_over(false);  // Unimplemented from now on
  const int calls = rig_->kernel.hand_over_calls();
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
  EXPECT_EQ(rig_->kernel.hand_over_calls(), calls + 1);
  rig_->kernel.Preempt(b);  // waits again at the head: not offered again
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), b);
  EXPECT_EQ(rig_->kernel.hand_over_calls(), calls + 1);
}

// A thread the class started changes its own mask while it runs: it is
// queued when its move off that CPU says so, not at AFFINITY_CHANGED (queued
// then, it could be neither committed nor handed over, and pinned push would
// stay off on its new CPU meanwhile).
TEST_F(FifoPerCpuTest, ThreadRunningAtItsAffinityChangeIsQueuedWhenItLeaves) {
  Start(2);
  rig_->kernel.set_hand_over(true);
  Tid t = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(t, CpuList{0});
  rig_->Settle();
  rig_->kernel.set_class_held(t, true);
  rig_->kernel.Wake(t);
  rig_->Settle();
  rig_->kernel.RunClassHeld(t, 0);
  rig_->kernel.SetAffinityWhileRunning(t, CpuList{1});
  rig_->Settle();
  EXPECT_EQ(sched().RunqueueSize(1), 0u) << "queued while it still ran on CPU 0";
  EXPECT_TRUE(rig_->kernel.pinned_push(1));
  EXPECT_EQ(sched().stats().running_at_affinity, 1u);
  EXPECT_EQ(sched().stats().hand_over_refused, 0u);
  rig_->kernel.Preempt(t);  // the kernel moves it to CPU 1: now it waits
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.handed(), std::vector<Tid>{t});
  EXPECT_EQ(sched().RunqueueSize(1), 0u);
}

// Whether the class holds a thread is read from each message, not from the
// status word: the word says it only while it is at that seqnum, and a
// thread that moved on meanwhile (here: a second class-held event before the
// agent read the first) would make the first look like the agent's.
TEST_F(FifoPerCpuTest, ClassHeldIsReadFromTheMessageHoweverLate) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  Tid b = rig_->kernel.NewThread(0, /*runnable=*/false);
  rig_->kernel.SetAffinity(b, CpuList{0});
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  const uint64_t held0 = sched().stats().class_held;
  rig_->kernel.set_class_held(b, true);
  rig_->kernel.Wake(b);                       // held at seqnum s
  rig_->kernel.SetAffinity(b, CpuList{0});    // held at s + 1: the word moved on
  rig_->Settle();
  EXPECT_EQ(sched().stats().class_held - held0, 2u);
  EXPECT_EQ(sched().RunqueueSize(0), 0u);
  rig_->kernel.Block(a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE) << "a class-held thread was committed";
  EXPECT_EQ(sched().stats().failed_commits, 0u);
}

// A CPU_AVAILABLE lost (a queue overflowed) must not keep the CPU busy for
// the agent for good: the kernel side's own view (KernelSide::CpuBusy) says
// it is free, and the waiting thread is committed.
TEST_F(FifoPerCpuTest, LostCpuAvailableDoesNotKeepTheCpuBusy) {
  Start(1);
  Tid a = rig_->kernel.NewThread();
  rig_->Settle();
  ASSERT_EQ(rig_->kernel.CurrentOn(0), a);
  rig_->kernel.TakeCpu(0);  // CPU_BUSY; a goes back to the agent
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), GHOST_TID_NONE);
  rig_->kernel.ReturnCpuSilently(0);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(0), a) << "the CPU stayed busy for the agent";
  EXPECT_EQ(sched().stats().busy_cleared, 1u);
}

// Two CPUs: `a` blocked, owned by CPU x, where `hog` now runs (it runs
// until it blocks); `b` runs on the other CPU, y.
struct BehindAHog {
  Tid a = 0, b = 0, hog = 0;
  int x = -1, y = -1;
};
static void SetUpBehindAHog(PolicyRig& rig, BehindAHog* s) {
  s->a = rig.kernel.NewThread();
  s->b = rig.kernel.NewThread();
  rig.Settle();
  s->x = rig.kernel.thread(s->a).cpu;
  s->y = rig.kernel.thread(s->b).cpu;
  ASSERT_GE(s->x, 0);
  ASSERT_GE(s->y, 0);
  ASSERT_NE(s->x, s->y);
  rig.kernel.Block(s->a);
  rig.Settle();
  s->hog = rig.kernel.NewThread();
  rig.Settle();
  ASSERT_EQ(rig.kernel.CurrentOn(s->x), s->hog);
}

// A thread that wakes onto its CPU while a thread of ours runs there (one
// that runs until it blocks: a CPU hog) and another CPU it may use idles is
// placed anew, there: queued behind the hog it waited for the class's
// watchdog (stress-ng's switch stressor beside a shell loop: 450 fallback
// runs in 20 s).
TEST_F(FifoPerCpuTest, WokenOntoATakenCpuWhileAnotherIdlesMovesThere) {
  Start(2);
  BehindAHog s;
  ASSERT_NO_FATAL_FAILURE(SetUpBehindAHog(*rig_, &s));
  rig_->kernel.Block(s.b);
  rig_->Settle();
  rig_->kernel.Wake(s.a);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(s.y), s.a);
  EXPECT_EQ(sched().OwnerOf(s.a), s.y);
  EXPECT_EQ(sched().stats().wake_moves, 1u);
}

// With no CPU idle it waits for its own CPU, as before.
TEST_F(FifoPerCpuTest, WokenOntoATakenCpuWaitsThereWhenNoneIdles) {
  Start(2);
  BehindAHog s;
  ASSERT_NO_FATAL_FAILURE(SetUpBehindAHog(*rig_, &s));
  rig_->kernel.Wake(s.a);
  rig_->Settle();
  EXPECT_EQ(sched().OwnerOf(s.a), s.x);
  EXPECT_EQ(sched().RunqueueSize(s.x), 1u);
  EXPECT_EQ(sched().stats().wake_moves, 0u);
}

// A thread queued behind a hog while no CPU idled: when another CPU goes
// idle later, its agent takes the thread (StealFor) rather than leave it to
// the class's watchdog; but only once the hog has held its CPU for 2 ms (a
// thread that has just started is likely to block soon, and a move costs an
// AssociateQueue).
TEST_F(FifoPerCpuTest, CpuGoingIdleTakesAThreadQueuedBehindAHog) {
  Start(2);
  BehindAHog s;
  ASSERT_NO_FATAL_FAILURE(SetUpBehindAHog(*rig_, &s));
  rig_->kernel.Wake(s.a);
  rig_->Settle();
  ASSERT_EQ(sched().OwnerOf(s.a), s.x);
  rig_->kernel.Block(s.b);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(s.y), GHOST_TID_NONE) << "taken before the hog held 2 ms";
  EXPECT_EQ(sched().OwnerOf(s.a), s.x);
  rig_->kernel.AdvanceTime(2'000'000);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(s.y), s.a);
  EXPECT_EQ(sched().OwnerOf(s.a), s.y);
  EXPECT_EQ(rig_->kernel.CurrentOn(s.x), s.hog);
  EXPECT_EQ(sched().stats().steals, 1u);
}

// It takes only a thread it may run.
TEST_F(FifoPerCpuTest, CpuGoingIdleLeavesAThreadItMayNotRun) {
  Start(2);
  BehindAHog s;
  ASSERT_NO_FATAL_FAILURE(SetUpBehindAHog(*rig_, &s));
  rig_->kernel.SetAffinity(s.a, CpuList{s.x});
  rig_->Settle();
  rig_->kernel.Wake(s.a);
  rig_->Settle();
  rig_->kernel.Block(s.b);
  rig_->kernel.AdvanceTime(2'000'000);
  rig_->Settle();
  EXPECT_EQ(rig_->kernel.CurrentOn(s.y), GHOST_TID_NONE);
  EXPECT_NE(sched().OwnerOf(s.a), s.y);
  EXPECT_EQ(sched().stats().steals, 0u);
}

}  // namespace
}  // namespace ghost
