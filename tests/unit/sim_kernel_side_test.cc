// The simulated kernel side's ABI semantics, driven by hand-written
// transactions (no policy): result codes, group commit, sync groups refused, CPU
// messages from CFS load, the watchdog fallback, a global agent that sleeps.
#include <algorithm>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/ring.h"
#include "userspace/run_request.h"
#include "userspace/sim/machine.h"
#include "userspace/sim/sim_kernel_side.h"
#include "userspace/topology.h"

namespace ghost {
namespace sim {
namespace {

// Threads that compute `burst_ns` and then block (or keep computing).
class ScriptWorkload : public Workload {
 public:
  void Start(Machine& m) override {}
  void OnEvent(Machine& m, const Event& e) override {}
  Next OnBurstEnd(Machine& m, int t) override {
    if (forever) {
      m.SetBurst(t, 1'000'000);
      return Next::kContinue;
    }
    return Next::kBlock;
  }
  void OnRun(Machine& m, int t) override { runs.push_back(t); }
  bool forever = false;
  std::vector<int> runs;
};

class SimKernelSideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    machine_ = std::make_unique<Machine>(*Topology::Preset("flat4"), 1);
    ks_ = std::make_unique<SimKernelSide>(*machine_, CostModel::Paper());
    machine_->SetWorkload(&wl_);
    absl::StatusOr<EnclaveId> e = ks_->CreateEnclave({.cpus = CpuList{0, 1, 2, 3},
                                                       .watchdog_ms = 10});
    ASSERT_TRUE(e.ok()) << e.status();
    enclave_ = *e;
    absl::StatusOr<QueueId> q = ks_->CreateQueue({.enclave = enclave_});
    ASSERT_TRUE(q.ok());
    queue_ = *q;
    ASSERT_TRUE(ks_->SetDefaultQueue(enclave_, queue_).ok());
  }
  std::vector<ghost_msg> Drain() {
    std::vector<ghost_msg> out;
    ks_->ConsumeQueue(queue_, [&](const ghost_msg& m) { out.push_back(m); });
    return out;
  }
  const ghost_status_word& Sw(int t) { return ks_->StatusWords()[t]; }
  // Fills `cpu`'s slot for thread t with its current seqnum and our barrier.
  void Fill(int cpu, int t, uint32_t flags = 0, uint32_t group = 0) {
    ghost_txn* s = ks_->TxnSlot(cpu);
    s->tid = ks_->TidOf(t);
    s->task_seqnum = Sw(t).seqnum;
    s->agent_barrier = ks_->QueueWord(queue_).barrier;
    s->queue = queue_;
    s->flags = flags;
    s->group = group;
    s->cpu = static_cast<uint32_t>(cpu);
    s->slice_ns = 0;
    s->state = GHOST_TXN_READY;
  }
  void RunFor(uint64_t ns) { machine_->RunUntil(machine_->now() + ns); }
  // A thread that computes for good, committed to `cpu` with `slice_ns` and
  // started there.
  int HogOn(int cpu, uint64_t slice_ns = 0) {
    wl_.forever = true;
    const int t = ks_->SpawnThread(enclave_, 0, 0, true, 1'000'000);
    RunFor(1'000);
    Drain();
    Fill(cpu, t);
    ks_->TxnSlot(cpu)->slice_ns = slice_ns;
    EXPECT_TRUE(ks_->Commit(CpuList{cpu}).ok());
    RunFor(2'000);
    EXPECT_EQ(machine_->cpu(cpu).thread, t);
    return t;
  }

  ScriptWorkload wl_;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<SimKernelSide> ks_;
  EnclaveId enclave_ = 0;
  QueueId queue_ = 0;
};

TEST_F(SimKernelSideTest, MessagesCarrySeqnumsAndBumpTheBarrier) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, false, 5'000);
  RunFor(1'000);  // past the delivery cost
  machine_->Wake(t, -1);
  RunFor(1'000);
  std::vector<ghost_msg> msgs = Drain();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, GHOST_MSG_TASK_NEW);
  EXPECT_EQ(msgs[1].type, GHOST_MSG_TASK_WAKEUP);
  EXPECT_EQ(msgs[1].seqnum, msgs[0].seqnum + 1);
  EXPECT_EQ(Sw(t).seqnum, msgs[1].seqnum);
  EXPECT_TRUE(Sw(t).flags & GHOST_SW_RUNNABLE);
  EXPECT_EQ(ks_->QueueWord(queue_).barrier, 2u);
}

TEST_F(SimKernelSideTest, MessagesBecomeVisibleAfterTheDeliveryCost) {
  ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  EXPECT_EQ(ks_->QueueWord(queue_).barrier, 0u);  // produced, not yet delivered
  EXPECT_TRUE(Drain().empty());
  RunFor(CostModel::Paper().msg_global_ns);
  EXPECT_EQ(Drain().size(), 1u);
}

TEST_F(SimKernelSideTest, StaleTransactionGetsStaleResult) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  RunFor(1'000);
  Drain();
  Fill(1, t);
  ks_->TxnSlot(1)->task_seqnum -= 1;  // acted on an older message
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->state, GHOST_TXN_DONE);
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_TARGET_STALE);

  Fill(1, t);
  ks_->TxnSlot(1)->agent_barrier -= 1;  // missed a message in the queue
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_AGENT_STALE);

  Fill(1, t);
  ks_->TxnSlot(1)->tid = 999;
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_NOT_FOUND);

  Fill(1, t);
  ks_->TxnSlot(1)->cpu = 2;  // slot/CPU mismatch
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_INVALID);
  EXPECT_TRUE(wl_.runs.empty());

  // Current state: committed once it really starts, after the target cost.
  Fill(1, t);
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->state, GHOST_TXN_CLAIMED);
  RunFor(CostModel::Paper().commit_remote_target_ns);
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_COMMITTED);
  EXPECT_EQ(machine_->cpu(1).thread, t);
  EXPECT_TRUE(Sw(t).flags & GHOST_SW_ON_CPU);
}

TEST_F(SimKernelSideTest, ThreadChangingAfterCommitIsStaleAtStart) {
  const int a = ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  RunFor(1'000);
  Drain();
  Fill(2, a);
  ASSERT_TRUE(ks_->Commit(CpuList{2}).ok());
  ASSERT_TRUE(ks_->SetAffinity(ks_->TidOf(a), CpuList{0, 1, 2, 3}).ok());  // a new message
  RunFor(5'000);
  EXPECT_EQ(ks_->TxnSlot(2)->result, GHOST_TXN_TARGET_STALE);
  EXPECT_EQ(machine_->cpu(2).thread, -1);
}

TEST_F(SimKernelSideTest, RunningElsewhereNotRunnableNotAllowedBusy) {
  const int a = ks_->SpawnThread(enclave_, 0, 0, true, 50'000);
  const int b = ks_->SpawnThread(enclave_, 0, 1, false, 5'000);
  const int c = ks_->SpawnThread(enclave_, 0, 2, true, 5'000);
  RunFor(1'000);
  Drain();
  Fill(1, a);
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  RunFor(2'000);
  ASSERT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_COMMITTED);
  Fill(2, a);
  Fill(3, b);
  ASSERT_TRUE(ks_->Commit(CpuList{2, 3}).ok());
  EXPECT_EQ(ks_->TxnSlot(2)->result, GHOST_TXN_RUNNING_ELSEWHERE);
  EXPECT_EQ(ks_->TxnSlot(3)->result, GHOST_TXN_NOT_RUNNABLE);
  Fill(1, c);  // CPU 1 runs a and we did not ask to preempt
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_CPU_UNAVAILABLE);
  ASSERT_TRUE(ks_->SetAffinity(ks_->TidOf(c), CpuList{3}).ok());
  RunFor(1'000);
  Drain();
  Fill(2, c);
  ASSERT_TRUE(ks_->Commit(CpuList{2}).ok());
  EXPECT_EQ(ks_->TxnSlot(2)->result, GHOST_TXN_NOT_ALLOWED);
  // With PREEMPT, c takes CPU 1 from a, which reports TASK_PREEMPT.
  ASSERT_TRUE(ks_->SetAffinity(ks_->TidOf(c), CpuList{1}).ok());
  RunFor(1'000);
  Drain();
  Fill(1, c, GHOST_TXN_F_PREEMPT);
  ASSERT_TRUE(ks_->Commit(CpuList{1}).ok());
  RunFor(2'000);
  EXPECT_EQ(ks_->TxnSlot(1)->result, GHOST_TXN_COMMITTED);
  EXPECT_EQ(machine_->cpu(1).thread, c);
  std::vector<ghost_msg> msgs = Drain();
  ASSERT_FALSE(msgs.empty());
  EXPECT_EQ(msgs.back().type, GHOST_MSG_TASK_PREEMPT);
  EXPECT_EQ(msgs.back().tid, ks_->TidOf(a));
}

TEST_F(SimKernelSideTest, GroupCommitStartsAllTargets) {
  std::vector<int> ts;
  for (int i = 0; i < 4; i++) ts.push_back(ks_->SpawnThread(enclave_, 0, i, true, 50'000));
  RunFor(1'000);
  Drain();
  for (int cpu = 0; cpu < 4; cpu++) Fill(cpu, ts[cpu]);
  ASSERT_TRUE(ks_->Commit(CpuList{0, 1, 2, 3}).ok());
  EXPECT_EQ(ks_->stats().commit_calls, 1u);
  RunFor(2'000);
  for (int cpu = 0; cpu < 4; cpu++) {
    EXPECT_EQ(ks_->TxnSlot(cpu)->result, GHOST_TXN_COMMITTED) << cpu;
    EXPECT_EQ(machine_->cpu(cpu).thread, ts[cpu]) << cpu;
  }
}

// Sync-group commit is not implemented in either kernel side yet: like the
// class's ghost_commit, the simulator refuses a slot with the flag as INVALID
// before any other check (here a stale barrier, an idle request), in the
// commit call itself, and the rest of the group commit goes on.
TEST_F(SimKernelSideTest, SyncGroupIsRefusedAsInvalidLikeTheClass) {
  std::vector<int> ts;
  for (int i = 0; i < 3; i++) ts.push_back(ks_->SpawnThread(enclave_, 0, i, true, 50'000));
  RunFor(1'000);
  Drain();
  Fill(0, ts[0], GHOST_TXN_F_SYNC_GROUP, 7);
  Fill(1, ts[1], GHOST_TXN_F_SYNC_GROUP | GHOST_TXN_F_PREEMPT, 7);
  ks_->TxnSlot(1)->agent_barrier -= 1;  // would be AGENT_STALE
  Fill(2, ts[2]);
  Fill(3, ts[0], GHOST_TXN_F_SYNC_GROUP, 8);
  ks_->TxnSlot(3)->tid = GHOST_TID_NONE;  // would idle the CPU
  ASSERT_TRUE(ks_->Commit(CpuList{0, 1, 2, 3}).ok());
  for (int cpu : {0, 1, 3}) {
    EXPECT_EQ(ks_->TxnSlot(cpu)->state, GHOST_TXN_DONE) << cpu;
    EXPECT_EQ(ks_->TxnSlot(cpu)->result, GHOST_TXN_INVALID) << cpu;
  }
  EXPECT_EQ(ks_->TxnSlot(2)->state, GHOST_TXN_CLAIMED);
  RunFor(2'000);
  EXPECT_EQ(ks_->TxnSlot(2)->result, GHOST_TXN_COMMITTED);
  EXPECT_EQ(wl_.runs, std::vector<int>{ts[2]});
  EXPECT_EQ(ks_->stats().txn_results[GHOST_TXN_INVALID], 3u);
  EXPECT_EQ(ks_->stats().txn_results[GHOST_TXN_ABORTED], 0u);
}

TEST_F(SimKernelSideTest, CfsLoadSendsCpuBusyAndAvailableAndPreempts) {
  const int t = HogOn(2);
  ASSERT_EQ(machine_->cpu(2).thread, t);
  machine_->SetCfsLoad({.cpus = CpuList{2}, .fraction = 0.5, .mean_burst_ns = 100'000});
  RunFor(5'000'000);
  int busy = 0, avail = 0, preempt = 0;
  for (const ghost_msg& m : Drain()) {
    if (m.type == GHOST_MSG_CPU_BUSY && m.cpu == 2) busy++;
    if (m.type == GHOST_MSG_CPU_AVAILABLE && m.cpu == 2) avail++;
    if (m.type == GHOST_MSG_TASK_PREEMPT && m.tid == ks_->TidOf(t)) preempt++;
  }
  EXPECT_GT(busy, 5);
  EXPECT_GE(avail, busy - 1);
  EXPECT_EQ(preempt, 1);  // nobody re-committed it: it stays off
  EXPECT_GT(machine_->OccupantNs(kCfs), 0u);
}

TEST(SimKernelSideTickTest, TicksOnlyWhereItsThreadsRunAndOnlyIfAsked) {
  for (bool ticks : {false, true}) {
    ScriptWorkload wl;
    wl.forever = true;
    Machine m(*Topology::Preset("flat2"), 1);
    SimKernelSide ks(m, CostModel::Zero());
    m.SetWorkload(&wl);
    EnclaveId e = *ks.CreateEnclave({.cpus = CpuList{0, 1}, .tick_messages = ticks});
    QueueId q = *ks.CreateQueue({.enclave = e});
    ASSERT_TRUE(ks.SetDefaultQueue(e, q).ok());
    const int t = ks.SpawnThread(e, 0, 0, true, 1'000'000);
    m.RunUntil(1);
    ghost_txn* s = ks.TxnSlot(1);
    *s = {.state = GHOST_TXN_READY, .tid = ks.TidOf(t), .task_seqnum = 1,
          .flags = GHOST_TXN_F_NO_BARRIER, .cpu = 1};
    ASSERT_TRUE(ks.Commit(CpuList{1}).ok());
    m.RunUntil(20'000'000);
    int on1 = 0, on0 = 0;
    ks.ConsumeQueue(q, [&](const ghost_msg& msg) {
      if (msg.type == GHOST_MSG_CPU_TICK) (msg.cpu == 1 ? on1 : on0)++;
    });
    EXPECT_EQ(on0, 0);
    EXPECT_EQ(on1, ticks ? 5 : 0);  // every 4 ms for 20 ms
  }
}

TEST_F(SimKernelSideTest, UnplacedThreadRunsThroughTheFallback) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  RunFor(5'000'000);  // half the 10 ms watchdog: still held for the agent
  EXPECT_TRUE(wl_.runs.empty());
  RunFor(10'000'000);
  ASSERT_EQ(wl_.runs.size(), 1u);
  EXPECT_EQ(wl_.runs[0], t);
  EXPECT_EQ(ks_->stats().fallback_runs, 1u);
}

TEST_F(SimKernelSideTest, SliceIsRenewedInPlaceOnlyWhileNothingWaits) {
  // The class's slice renewal (bpf/progs/slices.bpf.h): a committed slice
  // that runs out is given anew, without a message, while the CPU's agent
  // says nothing waits there (pinned push on); otherwise the thread goes back
  // to its agent (PREEMPT).
  ks_->SetPinnedPush(1, true);
  const int t = HogOn(1, 100'000);
  RunFor(1'000'000);  // ten slices
  EXPECT_EQ(machine_->cpu(1).thread, t);
  EXPECT_GE(ks_->stats().slice_renewals, 9u);
  for (const ghost_msg& m : Drain()) EXPECT_NE(m.type, GHOST_MSG_TASK_PREEMPT);
  ks_->SetPinnedPush(1, false);  // something waits now
  RunFor(200'000);
  EXPECT_NE(machine_->cpu(1).thread, t);
  bool preempted = false;
  for (const ghost_msg& m : Drain()) preempted |= m.type == GHOST_MSG_TASK_PREEMPT;
  EXPECT_TRUE(preempted);
}

TEST_F(SimKernelSideTest, AssociateQueueRefusedWhileMessagesUnread) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  absl::StatusOr<QueueId> q2 = ks_->CreateQueue({.enclave = enclave_, .wake_cpu = 1});
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(ks_->AssociateQueue(ks_->TidOf(t), *q2).code(),
            absl::StatusCode::kFailedPrecondition);
  RunFor(1'000);
  Drain();
  EXPECT_TRUE(ks_->AssociateQueue(ks_->TidOf(t), *q2).ok());
  EXPECT_FALSE(ks_->CreateQueue({.enclave = enclave_, .ring_bytes = 1000}).ok());
  EXPECT_FALSE(ks_->CreateEnclave({.cpus = CpuList{1}}).ok());  // CPU 1 is taken
}

// An agent that names its enclave (ghost-agent --enclave) gets that number.
TEST_F(SimKernelSideTest, NamedEnclaveGetsItsNumber) {
  ASSERT_TRUE(ks_->DestroyEnclave(enclave_).ok());  // frees CPUs 0-3
  absl::StatusOr<EnclaveId> e = ks_->CreateEnclave({.id = 3, .cpus = CpuList{1}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(*e, 3u);
  EXPECT_TRUE(ks_->CreateQueue({.enclave = 3}).ok());
  EXPECT_FALSE(ks_->CreateEnclave({.id = 3, .cpus = CpuList{2}}).ok());  // taken
  EXPECT_FALSE(ks_->CreateEnclave({.id = GHOST_MAX_ENCLAVES, .cpus = CpuList{2}}).ok());
  EXPECT_FALSE(ks_->CreateQueue({.enclave = 2}).ok());  // skipped numbers stay unused
}

// The BPF class's DestroyEnclave: nobody will place its threads any more, so
// the runnable ones run from the class's FIFO at once (not after the 10 ms
// watchdog), on CPUs of no enclave, and later wake-ups do the same.
TEST_F(SimKernelSideTest, DestroyedEnclaveThreadsRunThroughTheFallbackAtOnce) {
  std::vector<int> ts;
  for (int i = 0; i < 6; i++) ts.push_back(ks_->SpawnThread(enclave_, 0, i, true, 5'000));
  RunFor(1'000'000);  // held for the agent (there is none), well within the watchdog
  ASSERT_TRUE(wl_.runs.empty());
  ASSERT_TRUE(ks_->DestroyEnclave(enclave_).ok());
  RunFor(1'000'000);  // 2 ms after the spawn: the watchdog (10 ms) has not fired
  std::vector<int> ran = wl_.runs;
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, ts);
  EXPECT_EQ(ks_->stats().fallback_runs, 6u);
  for (int t : ts) EXPECT_EQ(machine_->thread(t).state, ThreadState::kBlocked) << t;
  // A wake-up after the destroy does not wait for an agent either.
  machine_->Wake(ts[0], -1);
  RunFor(100'000);
  ASSERT_EQ(wl_.runs.size(), 7u);
  EXPECT_EQ(wl_.runs.back(), ts[0]);
  EXPECT_EQ(ks_->stats().fallback_runs, 7u);
  EXPECT_EQ(ks_->DestroyEnclave(enclave_).code(), absl::StatusCode::kNotFound);
}

// Nor are they stranded when a new enclave takes the CPUs before they ran
// (its commits could never place them: they are not its threads), or when a
// commit to them was pending at the destroy.
TEST_F(SimKernelSideTest, DestroyedEnclaveThreadsRunOnANewEnclavesCpus) {
  wl_.forever = false;
  const int a = ks_->SpawnThread(enclave_, 0, 0, true, 5'000);
  const int b = ks_->SpawnThread(enclave_, 0, 1, true, 5'000);
  RunFor(1'000);
  Drain();
  Fill(2, b);
  ASSERT_TRUE(ks_->Commit(CpuList{2}).ok());  // pending: starts after the target cost
  ASSERT_TRUE(ks_->DestroyEnclave(enclave_).ok());
  EXPECT_EQ(ks_->TxnSlot(2)->state, GHOST_TXN_DONE);
  EXPECT_EQ(ks_->TxnSlot(2)->result, GHOST_TXN_CPU_UNAVAILABLE);
  absl::StatusOr<EnclaveId> e2 = ks_->CreateEnclave({.cpus = CpuList{0, 1, 2, 3},
                                                      .watchdog_ms = 1000});
  ASSERT_TRUE(e2.ok()) << e2.status();
  RunFor(1'000'000);
  std::vector<int> ran = wl_.runs;
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, (std::vector<int>{a, b}));
  EXPECT_EQ(ks_->stats().fallback_runs, 2u);
}

// The BPF class's DestroyQueue: allowed under its threads; they report to the
// enclave's default queue, and the dead ring's unread messages no longer
// refuse AssociateQueue.
TEST_F(SimKernelSideTest, DestroyedQueuesThreadsReportToTheDefaultQueue) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, false, 5'000);
  const Tid tid = ks_->TidOf(t);
  absl::StatusOr<QueueId> q2 = ks_->CreateQueue({.enclave = enclave_});
  absl::StatusOr<QueueId> q3 = ks_->CreateQueue({.enclave = enclave_});
  ASSERT_TRUE(q2.ok() && q3.ok());
  RunFor(1'000);
  Drain();
  ASSERT_TRUE(ks_->AssociateQueue(tid, *q2).ok());
  ASSERT_TRUE(ks_->SetAffinity(tid, CpuList{0, 1}).ok());  // unread in q2
  RunFor(1'000);
  ASSERT_EQ(ks_->AssociateQueue(tid, *q3).code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(ks_->DestroyQueue(*q2).ok());
  EXPECT_EQ(ks_->QueueWord(*q2).flags, 0u);
  EXPECT_EQ(Sw(t).queue, *q2);  // the association, until the agent moves it
  ASSERT_TRUE(ks_->SetAffinity(tid, CpuList{0, 2}).ok());
  RunFor(1'000);
  std::vector<ghost_msg> msgs = Drain();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, GHOST_MSG_TASK_AFFINITY_CHANGED);
  EXPECT_EQ(msgs[0].tid, tid);
  EXPECT_EQ(msgs[0].seqnum, Sw(t).seqnum);

  // q2's unread message died with its ring.
  ASSERT_TRUE(ks_->AssociateQueue(tid, *q3).ok());
  EXPECT_EQ(Sw(t).queue, *q3);
  ASSERT_TRUE(ks_->SetAffinity(tid, CpuList{0, 3}).ok());
  RunFor(1'000);
  EXPECT_TRUE(Drain().empty());
  size_t in_q3 = ks_->ConsumeQueue(*q3, [&](const ghost_msg& m) { EXPECT_EQ(m.tid, tid); });
  EXPECT_EQ(in_q3, 1u);
  EXPECT_EQ(ks_->stats().messages_dropped, 0u);
}

// With the default queue destroyed too, messages have nowhere to go: dropped
// and counted (every seqnum is either delivered or counted), and the thread
// still runs (the enclave's watchdog).
TEST_F(SimKernelSideTest, NoQueueLeftDropsAndCountsAndTheThreadStillRuns) {
  const int t = ks_->SpawnThread(enclave_, 0, 0, false, 5'000);
  const Tid tid = ks_->TidOf(t);
  absl::StatusOr<QueueId> q2 = ks_->CreateQueue({.enclave = enclave_});
  ASSERT_TRUE(q2.ok());
  RunFor(1'000);
  Drain();
  ASSERT_TRUE(ks_->AssociateQueue(tid, *q2).ok());
  ASSERT_TRUE(ks_->DestroyQueue(*q2).ok());
  ASSERT_TRUE(ks_->DestroyQueue(queue_).ok());  // the default queue
  const uint64_t seq0 = Sw(t).seqnum;
  const SimKernelStats before = ks_->stats();
  machine_->Wake(t, -1);  // TASK_WAKEUP, then BLOCKED after it ran
  RunFor(30'000'000);
  ASSERT_EQ(wl_.runs.size(), 1u);
  EXPECT_EQ(wl_.runs[0], t);
  EXPECT_EQ(ks_->stats().fallback_runs, 1u);
  EXPECT_EQ(Sw(t).seqnum, seq0 + 2);
  EXPECT_EQ(ks_->stats().messages, before.messages);
  EXPECT_EQ(ks_->stats().messages_dropped, before.messages_dropped + 2);
  // A new default queue gets them again.
  absl::StatusOr<QueueId> q3 = ks_->CreateQueue({.enclave = enclave_});
  ASSERT_TRUE(q3.ok());
  ASSERT_TRUE(ks_->SetDefaultQueue(enclave_, *q3).ok());
  machine_->Wake(t, -1);
  RunFor(1'000);
  size_t got = ks_->ConsumeQueue(*q3, [&](const ghost_msg& m) {
    EXPECT_EQ(m.type, GHOST_MSG_TASK_WAKEUP);
    EXPECT_EQ(m.seqnum, seq0 + 3);
  });
  EXPECT_EQ(got, 1u);
}

// The doorbell as the class rings it: a node's own idle CPUs first; kicks
// that node cannot take (its CPUs busy) go to another node's idle CPUs only
// if the pushed ring lets them steal (GHOST_RING_F_STEAL).
TEST_F(SimKernelSideTest, DoorbellKicksAnotherNodeOnlyForARingThatLetsItSteal) {
  ks_->EnableRings({0, 0, 1, 1});
  absl::StatusOr<Ring> ring = Ring::Create(ks_->RingRegion(enclave_, 0), 16, 0);
  ASSERT_TRUE(ring.ok()) << ring.status();
  const int a = ks_->SpawnThread(enclave_, 0, 0, true, 1'000'000'000);
  const int b = ks_->SpawnThread(enclave_, 0, 1, true, 1'000'000'000);
  RunFor(1'000);
  Drain();
  Fill(0, a);
  Fill(1, b);
  ASSERT_TRUE(ks_->Commit(CpuList{0, 1}).ok());
  RunFor(CostModel::Paper().commit_remote_target_ns + 1'000);
  ASSERT_EQ(machine_->cpu(0).thread, a);  // node 0 busy, node 1 (CPUs 2, 3) idle
  ASSERT_EQ(machine_->cpu(1).thread, b);
  const uint32_t kicks[2] = {1, 0};
  ASSERT_TRUE(ks_->RingDoorbell(enclave_, kicks).ok());
  EXPECT_EQ(ks_->stats().doorbell_kicks, 0u);
  EXPECT_EQ(ks_->stats().doorbell_steal_kicks, 0u);
  ring->SetSteal(true);
  ASSERT_TRUE(ks_->RingDoorbell(enclave_, kicks).ok());
  EXPECT_EQ(ks_->stats().doorbell_kicks, 1u);
  EXPECT_EQ(ks_->stats().doorbell_steal_kicks, 1u);
  const uint32_t many[2] = {5, 0};  // never more than the idle CPUs
  ASSERT_TRUE(ks_->RingDoorbell(enclave_, many).ok());
  EXPECT_EQ(ks_->stats().doorbell_steal_kicks, 3u);
}

// A global agent that sleeps when idle (--agent-sleep-us), driven by a
// stand-in agent: it reads its queue and, once, pushes thread `a` into the
// ring without a doorbell, so only a CPU passing through dispatch takes it.
class SimAgentSleepTest : public SimKernelSideTest {
 protected:
  void Start(uint64_t sleep_ns) {
    ks_->EnableRings({0, 0, 0, 0});
    absl::StatusOr<Ring> r = Ring::Create(ks_->RingRegion(enclave_, 0), 16, 0);
    ASSERT_TRUE(r.ok()) << r.status();
    ring_ = std::make_unique<Ring>(*r);
    ring_->SetWakeupPush(true, 0);
    a_ = ks_->SpawnThread(enclave_, 0, 0, true, 1'000'000'000);  // runs for good
    b_ = ks_->SpawnThread(enclave_, 0, 1, false, 5'000);
    ASSERT_TRUE(ks_->RegisterAgent({.cpu = 0,
                                    .global = true,
                                    .queue = queue_,
                                    .run_once =
                                        [this] {
                                          runs_++;
                                          for (const ghost_msg& m : Drain()) seen_.push_back(m);
                                          if (!pushed_) {
                                            pushed_ = ring_->Push(ks_->TidOf(a_), Sw(a_).seqnum).ok();
                                          }
                                        },
                                    .idle_sleep_ns = [sleep_ns] { return sleep_ns; }})
                    .ok());
    RunFor(10'000);
  }
  bool Saw(uint16_t type, int t) const {
    return std::any_of(seen_.begin(), seen_.end(), [&](const ghost_msg& m) {
      return m.type == type && m.tid == ks_->TidOf(t);
    });
  }
  std::unique_ptr<Ring> ring_;
  int a_ = -1, b_ = -1;
  int runs_ = 0;
  bool pushed_ = false;
  std::vector<ghost_msg> seen_;
};

TEST_F(SimAgentSleepTest, DeferrableWakeupLeavesItAsleepOtherMessagesWakeIt) {
  Start(1'000'000);
  // Its first pass read TASK_NEW x2 and pushed a, the next one read nothing
  // and slept: its CPU went through dispatch and took a from the ring.
  EXPECT_EQ(runs_, 2);
  EXPECT_EQ(ks_->stats().agent_sleeps, 1u);
  EXPECT_FALSE(machine_->cpu(0).agent);
  EXPECT_EQ(machine_->cpu(0).thread, a_);
  EXPECT_EQ(ks_->stats().ring_runs, 1u);
  EXPECT_EQ(ks_->stats().agent_cpu_runs, 1u);

  // b wakes: the class pushes it (parked on idle CPU 1, never the agent's)
  // and its TASK_WAKEUP is deferrable: the agent sleeps on.
  machine_->Wake(b_, -1);
  RunFor(3'000);
  EXPECT_EQ(ks_->stats().wakeup_pushes, 1u);
  EXPECT_EQ(machine_->cpu(1).thread, b_);
  EXPECT_EQ(runs_, 2);
  EXPECT_FALSE(machine_->cpu(0).agent);
  EXPECT_EQ(machine_->cpu(0).thread, a_);

  // b blocks: TASK_BLOCKED wakes the agent, which takes its CPU back from a
  // (TASK_PREEMPT), reads, and sleeps again after an empty pass.
  RunFor(5'000);
  EXPECT_EQ(runs_, 4);
  EXPECT_EQ(ks_->stats().agent_sleeps, 2u);
  EXPECT_EQ(machine_->thread(a_).state, ThreadState::kRunnable);
  EXPECT_TRUE(Saw(GHOST_MSG_TASK_BLOCKED, b_));
  EXPECT_TRUE(Saw(GHOST_MSG_TASK_PREEMPT, a_));
  auto wakeup = std::find_if(seen_.begin(), seen_.end(),
                             [](const ghost_msg& m) { return m.type == GHOST_MSG_TASK_WAKEUP; });
  ASSERT_NE(wakeup, seen_.end());
  EXPECT_EQ(wakeup->wakeup.in_ring, 1u);
  EXPECT_EQ(wakeup->wakeup.deferrable, 1u);

  // With nothing to read it wakes at its timeout, looks, sleeps again.
  RunFor(900'000);
  EXPECT_EQ(runs_, 4);
  RunFor(200'000);
  EXPECT_EQ(runs_, 5);
  EXPECT_EQ(ks_->stats().agent_sleeps, 3u);
}

TEST_F(SimAgentSleepTest, AgentThatDoesNotSleepKeepsItsCpu) {
  Start(0);
  machine_->Wake(b_, -1);
  RunFor(20'000);
  EXPECT_EQ(ks_->stats().agent_sleeps, 0u);
  EXPECT_TRUE(machine_->cpu(0).agent);
  EXPECT_EQ(ks_->stats().agent_cpu_runs, 0u);
  EXPECT_EQ(machine_->cpu(0).thread, -1);
  EXPECT_EQ(ks_->stats().ring_runs, 1u);  // on CPU 1, kicked by b's wake-up
}

}  // namespace
}  // namespace sim
}  // namespace ghost
