// Centralized FIFO (ghOSt's centralized FIFO policy): one global agent reads
// the enclave's default queue, keeps one FIFO of runnable threads, and each
// round hands the head threads to the idle CPUs in ONE group commit. With a
// slice, a thread that ran longer than it while others wait is preempted
// (GHOST_TXN_F_PREEMPT) and goes to the tail. The agent's CPU runs only
// threads that may run on no other CPU of the enclave it can get (pinned there,
// or allowed elsewhere only on CPUs a higher class holds): the agent commits
// such a thread to its own CPU and steps aside (Agent::RequestYield) until a
// message comes or AgentOptions::yield_for passes, then preempts it by waking.
//
// Fast path (bpf-first mode, issue 9, docs/FAST_PATH.md): when the kernel side
// has rings, the agent does not commit threads to idle CPUs; it pushes them
// into the ring of a node they may run on, keeping each ring as deep as the
// node has idle CPUs (plus kRingMargin), and rings the doorbell once per
// round; idle CPUs take them in BPF. Each round it reaps the outcomes (reports
// about (tid, seqnum): ran, revoked, stale), revokes entries whose thread got
// a newer message, and moves entries from deep rings to nodes with idle CPUs.
// Slice preemptions and the agent's own CPU stay transactions.
//
// Wake-ups (PolicyOptions::wakeup_push): while no thread waits in the FIFO
// for a ring, the agent lets the class push threads that wake up straight
// into their node's ring (GHOST_RING_F_WAKEUP); the TASK_WAKEUP names the
// entry and the agent adopts it as its own. An outcome reaped before its
// message (the agent reads the rings and the queue at different moments) is
// kept until the message comes.
//
// Pinned push (PolicyOptions::pinned_push, bpf/progs/pinned.bpf.h): while no
// thread of ours waits that a scheduled CPU could run (in the FIFO, or in
// that CPU's node's ring), the agent lets the class queue a thread that may
// run on that CPU only on it itself: nothing is left to decide but its turn.
// Such a thread's messages carry GHOST_MSG_F_CLASS_HELD and do not wake the
// agent; it is neither queued nor committed until a message without the flag.
// The agent's own CPU by the same rule, but the class honours it there only
// while the agent sleeps on its queue: behind a spinning agent a thread would
// wait until it steps aside. Threads pinned to other CPUs that wait anyway (pinned push was off when they moved) are
// handed to the class (ghost_hand_over) while no older thread waits that
// could run on their CPU, so pinned push can come back on.
#ifndef GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_
#define GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/policies/fifo_task.h"
#include "userspace/policies/placement.h"
#include "userspace/policy.h"
#include "userspace/ring.h"
#include "userspace/run_request.h"
#include "userspace/scheduler.h"

namespace ghost {

class FifoCentralizedScheduler : public Scheduler {
 public:
  // `cpus`: the enclave's CPUs; `agent_cpu` is left out of scheduling.
  FifoCentralizedScheduler(KernelSide& kernel, const CpuList& cpus,
                           int agent_cpu, const PolicyOptions& opts);
  ~FifoCentralizedScheduler() override;

  // Entries a ring holds beyond its node's idle CPUs: a CPU that goes idle
  // finds work there before the agent's next round.
  static constexpr int kRingMargin = 1;
  // Fast path: a thread no ring may take (its mask covers part of a node)
  // waits for one of its CPUs by transaction, but the rings keep those CPUs
  // busy: an idle CPU's dispatch takes the next entry before the agent can
  // commit there. After waiting this long it preempts one of them.
  static constexpr uint64_t kNarrowWaitNs = 5'000'000;
  // PolicyOptions::least_runtime_first: a thread that has waited this long
  // goes ahead of the order (AgeRuntimeOrder). Newcomers join at the floor,
  // so by runtime alone one that ran more waited out any stream of them.
  static constexpr absl::Duration kRuntimeMaxWait = absl::Milliseconds(50);
  // Sets up `enclave`'s rings (Ring::Create, or Ring::Attach and revoking
  // what an earlier agent left). Returns false (fast path off) if the kernel
  // side has no rings; an error if a ring is refused.
  absl::StatusOr<bool> SetUpRings(EnclaveId enclave);
  bool fast_path() const { return !nodes_.empty(); }

  void TaskNew(const Message& m) override;
  void TaskWakeup(const Message& m) override;
  void TaskBlocked(const Message& m) override;
  void TaskPreempt(const Message& m) override;
  void TaskYield(const Message& m) override;
  void TaskDead(const Message& m) override;
  void TaskDeparted(const Message& m) override;
  void TaskAffinityChanged(const Message& m) override;
  void TaskPriorityChanged(const Message& m) override;
  void TaskOnCpu(const Message& m) override;
  void CpuAvailable(const Message& m) override;
  void CpuBusy(const Message& m) override;
  void Schedule(Agent& agent) override;
  // Fast path only: nothing waits in the FIFO and no transaction is out (the
  // rings and the class carry the wake-ups); with a slice, one slice.
  absl::Duration IdleFor(const Agent& agent) override;
  const PolicyOptions& options() const { return opts_; }

  struct Stats {
    uint64_t rounds_committed = 0;  // Schedule() rounds that made a group commit
    uint64_t commits = 0;           // transactions that reached COMMITTED
    uint64_t failed_commits = 0;
    uint64_t stale = 0;             // TARGET_STALE or AGENT_STALE
    uint64_t not_allowed_retries = 0;  // NOT_ALLOWED on a thread's last usable CPU
    uint64_t preemptions = 0;       // slice preemptions committed
    uint64_t qos_preemptions = 0;   // a higher class's thread displaced a running one
    // Transactions placing a waiting thread on an idle CPU: onto the CPU it
    // last ran on, an SMT sibling of it, or another (PolicyOptions::place
    // chooses by this; otherwise it is what the FIFO's choice came to); of
    // the others, those outside its LLC and outside its NUMA node.
    uint64_t placed_last_cpu = 0, placed_sibling = 0, placed_elsewhere = 0;
    uint64_t placed_cross_llc = 0, placed_cross_node = 0;
    // PolicyOptions::place kept a thread waiting though CPUs it may use were
    // idle (counted per thread and round), or named a CPU it may not use.
    uint64_t placements_held = 0, placements_refused = 0;
    // least_runtime_first: threads moved ahead of the order after waiting
    // kRuntimeMaxWait.
    uint64_t runtime_aged = 0;
    uint64_t agent_cpu_commits = 0; // committed to the agent's own CPU
    // WAKEUPs of threads we believed on a CPU (a missed off-CPU event).
    uint64_t wakeups_on_cpu = 0;
    std::string last_wakeup_on_cpu;  // the last such thread, as we saw it
    // Fast path (outcomes are counted as they are reaped).
    std::array<uint64_t, GHOST_RING_MAX_NODES> pushes_per_node = {};
    std::map<int, uint64_t> ran_per_cpu;   // RAN outcomes by consumer CPU
    std::map<int, uint64_t> stale_per_cpu;  // STALE outcomes by consumer CPU
    uint64_t ring_ran = 0;
    uint64_t ring_revoked = 0;
    std::array<uint64_t, kRingStaleReasons> stale_by_reason = {};
    uint64_t revokes_won = 0;
    uint64_t revokes_lost = 0;
    uint64_t rebalanced = 0;     // entries revoked from a deep ring to go elsewhere
    uint64_t ring_full = 0;      // pushes refused: the thread stayed with the agent
    uint64_t doorbells = 0;      // RingDoorbell calls
    uint64_t doorbell_kicks = 0;
    uint64_t doorbell_errors = 0;
    uint64_t old_outcomes = 0;   // about an older seqnum than we know: ignored
    uint64_t attached_entries = 0;  // an earlier agent's entries found at attach
    uint64_t attached_abandoned = 0;  // its positions taken and never published
    uint64_t narrow_preemptions = 0;  // a narrow thread preempted a ring-fed CPU
    uint64_t ring_slice_takes = 0;  // a ring entry taken back for a CPU past its slice
    // The class's wake-up pushes, adopted from TASK_WAKEUP messages, per node.
    std::array<uint64_t, GHOST_RING_MAX_NODES> wakeup_entries = {};
    uint64_t busy_cleared = 0;  // CPUs believed busy that the kernel side said were free
    uint64_t early_outcomes = 0;   // reaped before their message: kept for it
    uint64_t early_dropped = 0;    // kept, but the thread's messages went past them (0)
    uint64_t early_expired = 0;    // about a thread unheard of for a second (it died)
    uint64_t wakeup_push_on = 0;   // times the agent let the class push wake-ups
    // Pinned push: messages of threads the class queued itself, and threads
    // a message without the flag gave back to the agent.
    uint64_t class_held = 0;
    uint64_t class_returned = 0;
    uint64_t handed_over = 0;        // waiting pinned threads given to the class
    uint64_t hand_over_refused = 0;  // ... that it refused (they stayed ours)
  };
  Stats stats() const { return stats_; }
  // The thread's entry and our view of the CPUs it may run on (diagnostics).
  std::string Describe(Tid tid) const;
  size_t Waiting() const { return fifo_.Size(); }
  // Our entries in `node`'s ring whose outcome we do not know yet.
  size_t RingDepth(int node) const;
  // Bytes of ring memory per node in use (fast path), for --stats.
  size_t RingBytesPerNode() const { return sizeof(ghost_ring); }
  std::vector<int> RingNodes() const;
  // " fast_path=off", or the fast path's counters (pushes per node, runs and
  // stale drops per consumer CPU, stale drops by reason (numbers of enum
  // ghost_ring_stale_reason), revokes, full rings, doorbells, ring memory).
  std::string FastPathStatsLine() const;
  // What our commits started on `cpu` (GHOST_TID_NONE: idle as far as we know).
  Tid CurrentOn(int cpu) const;

 private:
  struct Cpu {
    int cpu = -1;
    Tid current = GHOST_TID_NONE;
    uint64_t run_start_ns = 0;     // when `current` started
    bool busy = false;             // a higher class has it (CPU_BUSY)
    uint64_t retry_after_ns = 0;   // CPU_UNAVAILABLE back-off
    std::unique_ptr<RunRequest> req;
    bool req_active = false;       // req holds a transaction we have not read
    uint64_t req_open_ns = 0;      // when req was opened (diagnostics)
    Tid preempting = GHOST_TID_NONE;  // the running thread req displaces
    bool pinned_push = false;      // as last set (KernelSide::SetPinnedPush)
  };

  // One ring per node that has scheduled CPUs.
  struct Node {
    int node = -1;
    std::optional<Ring> ring;
    CpuList cpus;                                 // scheduled CPUs on it
    std::deque<std::pair<Tid, uint64_t>> entries;  // (tid, pos) pushed, in order
  };

  void OffCpu(FifoTask& t);
  // Counts a placement from `last` (the thread's last CPU) onto `cpu`.
  void CountPlacement(int last, int cpu);
  // tasks_.Update, and whether the class holds it (pinned push) from the
  // message's flag: a held thread leaves the FIFO. `*returned`: the class
  // held it until this message.
  FifoTask& Track(const Message& m, bool* returned = nullptr);
  // After a message that queues nothing (AFFINITY_CHANGED, ...): a thread the
  // class gave back and parked for us is queued, unless it runs (its next
  // message tells).
  void TakeBackFromClass(FifoTask& t, const Message& m);
  // Pinned push on exactly the scheduled CPUs nothing of ours waits for, and
  // on the agent's own CPU likewise (the class honours it there only while
  // the agent sleeps).
  void UpdatePinnedPush();
  // Hands waiting threads pinned to one scheduled CPU to the class, oldest
  // first per CPU, up to the first older thread that may also run there.
  void HandOverPinned();
  // Fast path: a message about `t` (off_cpu: it left a CPU) makes its entry,
  // if any, stale: revoke it while a consumer has not claimed it.
  void RingMessage(FifoTask& t, bool off_cpu);
  void ClearRing(FifoTask& t);
  // Reads every ring's outcomes and acts on them.
  void ReapRings();
  void HandleOutcome(int node, const RingOutcomeRecord& rec);
  // It runs on `cpu` (a RAN outcome): no longer waiting.
  void StartedOn(FifoTask& t, int cpu);
  // Pushes waiting threads to the rings; rebalances; rings the doorbell.
  void FillRings(Agent& agent, uint64_t now);
  int IdleCpus(const Node& n, uint64_t now);
  // `t` may run on every CPU of `open` (any of them may consume its entry).
  static bool Covers(const FifoTask& t, const CpuList& open);
  // Some node's open CPUs are all allowed to `t`.
  bool RingEligible(const FifoTask& t) const;
  // Drops entries we no longer count from n.entries; returns the count.
  size_t PruneEntries(Node& n);
  void Enqueue(FifoTask& t, bool front);
  // The thread left the agent's own CPU (a message with off_cpu.from_cpu).
  bool LeftAgentCpu(const Message& m) const;
  void Forget(Tid tid);
  // Reads a finished transaction of `c`; puts a failed target back in front.
  void HandleResult(Cpu& c);
  // First waiting thread allowed on `cpu` (and not backing off at `now`),
  // taken out of the FIFO.
  // narrow_only: only a thread the rings cannot take (fast path).
  // min_qos: only a thread of that class or a higher one.
  FifoTask* TakeFor(int cpu, uint64_t now, bool narrow_only = false, uint32_t min_qos = 0);
  // The class of the thread our commit started on `c` (0 if none).
  uint32_t RunningQos(const Cpu& c) const;
  // PolicyOptions::rank: reads again, every kRankRereadNs, the class and
  // deadline of the threads that run and wait (a hint changed since they
  // were queued: a worker that took another kind of request, a thread whose
  // entry came after it started), and re-sorts the waiting ones if any
  // changed.
  void RefreshRanks(uint64_t now);
  // Sets t's class and deadline from PolicyOptions::rank (a relative
  // deadline counted from t.woke_ns); true if either changed.
  bool ReadRank(FifoTask& t);
  bool Usable(Cpu& c, uint64_t now);
  // Every round: a CPU believed busy that the kernel side says is free
  // (KernelSide::CpuBusy) is ours again (stats busy_cleared).
  void RefreshBusy();
  // The scheduled CPU `cpu`, or the agent's own; nullptr if neither.
  Cpu* FindCpu(int cpu);
  // Every CPU a commit may go to: the scheduled ones and the agent's own.
  CpuList UsableCpus() const;
  // The longest-waiting thread that may run on the agent's CPU and on no scheduled
  // CPU a higher class does not hold, taken out of the FIFO; with
  // `min_wait_ns`, only one that has waited that long (since it became
  // narrow, narrow_since_, with the rings; else since it was queued).
  FifoTask* TakeForAgentCpu(uint64_t now, uint64_t min_wait_ns = 0);
  // least_runtime_first: threads that have waited kRuntimeMaxWait go ahead
  // of all others, in the order they aged.
  void AgeRuntimeOrder(uint64_t now);
  // Fast path: threads no ring may take that have waited kNarrowWaitNs
  // (failed commits meanwhile included), oldest first, each with a CPU it may
  // run on (a different one each), to be committed there preempting whatever
  // runs; one scan of the FIFO per round. The threads are taken out of the
  // FIFO.
  std::vector<std::pair<FifoTask*, Cpu*>> TakeNarrowToPreempt(uint64_t now);
  // Fast path, slices: the oldest entry of `cpu`'s node's ring that has
  // waited a slice and that a revoke wins, to be committed there (the ring's
  // entries are older than the FIFO's threads). Null if none.
  FifoTask* TakeFromRing(int cpu, uint64_t now);
  // Takes back `t`'s live entry in `n`'s ring: true if the revoke won (the
  // thread is ours again, out of the ring); else a consumer has it and its
  // outcome is awaited (ring_revoke_lost). Counts either way.
  bool RevokeEntry(Node& n, FifoTask& t);
  // TASK_WAKEUP naming the class's entry: `t`'s entry from now on (its
  // outcome too, if already reaped). False if there is no such live entry.
  bool AdoptWakeupEntry(FifoTask& t, const Message& m);
  // Lets the class push wake-ups while no ring-eligible thread waits.
  void UpdateWakeupPush();
  // Outcomes kept for a message (by node, position), dropped once their
  // thread's messages went past them.
  void PruneEarlyOutcomes();

  KernelSide& kernel_;
  const PolicyOptions opts_;
  FifoTaskTable tasks_;
  FifoRunqueue fifo_;
  std::map<int, Cpu> cpus_;  // scheduled CPUs (the agent's excluded)
  std::map<int, Node> nodes_;  // fast path: by node; empty when off
  EnclaveId enclave_ = GHOST_ENCLAVE_NONE;
  Cpu agent_;                // the agent's own CPU (see the top of this file)
  std::map<Tid, uint64_t> narrow_since_;  // fast path: narrow threads waiting, since when
  struct EarlyOutcome {
    RingOutcomeRecord rec;
    uint64_t kept_ns = 0;  // when reaped (the policy's clock)
  };
  std::map<std::pair<int, uint64_t>, EarlyOutcome> early_;  // by (node, pos)
  static constexpr size_t kMaxEarlyOutcomes = 4096;
  // An outcome about a thread we have never heard of is dropped after this:
  // its TASK_NEW would have come long before (it died, or messages were lost).
  static constexpr uint64_t kEarlyUnknownNs = 1'000'000'000;
  Stats stats_;
  bool hand_over_ok_ = true;  // the kernel side hands over (not Unimplemented)
  static constexpr uint64_t kRankRereadNs = 1'000'000;
  // PolicyOptions::least_runtime_first: a thread is queued at most this far
  // (weighted runtime) ahead of the last one taken from the queue, as CFS
  // credits a sleeper half its 6 ms latency: a worker that ran less, long
  // ago, does not starve one that ran more.
  static constexpr uint64_t kRuntimeCreditNs = 3'000'000;
  uint64_t runtime_floor_ns_ = 0;  // the order of the last thread taken
  uint64_t rank_read_ns_ = 0;  // when RefreshRanks last read the classes
};

class FifoCentralizedPolicy : public Policy {
 public:
  static constexpr const char* kName = "fifo-centralized";
  static absl::StatusOr<std::unique_ptr<Policy>> Create(
      const PolicyOptions& opts, Enclave& enclave);

  std::vector<Agent*> agents() override { return {agent_.get()}; }
  // PolicyOptions::name when set (a policy that is this one configured: sol).
  const char* name() const override {
    return sched_->options().name.empty() ? kName : sched_->options().name.c_str();
  }
  std::string StatsLine() const override;
  std::string DescribeThread(Tid tid) const override { return sched_->Describe(tid); }
  bool UsesRings() const override { return sched_->fast_path(); }
  FifoCentralizedScheduler& scheduler() { return *sched_; }
  const FifoCentralizedScheduler& scheduler() const { return *sched_; }

 private:
  FifoCentralizedPolicy() = default;
  std::unique_ptr<FifoCentralizedScheduler> sched_;
  std::unique_ptr<Agent> agent_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_
