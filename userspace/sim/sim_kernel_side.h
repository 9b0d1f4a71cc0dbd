// The ghOSt kernel side, simulated: ghost::KernelSide over a sim::Machine,
// with the BPF class's semantics (kernel/ghost_abi.h, docs/SIMULATOR.md):
// messages with seqnums into per-queue rings, status words, queue barriers,
// per-CPU transaction slots committed in groups with every result code, the
// watchdog fallback, and agents that are woken by their queues and charged
// simulated time for what they do.
//
// Agents are ordinary ghost::Agent objects of the agent library: the
// simulator registers each one (RegisterAgent) and calls its RunOnce() at
// simulated times. While an agent runs, this kernel side keeps the agent's
// clock: message consumption and commits advance it by their costs, and what
// a commit starts happens after the agent-side and target-side costs.
#ifndef GHOST_SCX_USERSPACE_SIM_SIM_KERNEL_SIDE_H_
#define GHOST_SCX_USERSPACE_SIM_SIM_KERNEL_SIDE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "userspace/kernel_side.h"
#include "userspace/ring.h"
#include "userspace/sim/costs.h"
#include "userspace/sim/machine.h"

namespace ghost {
namespace sim {

struct SimAgentOptions {
  int cpu = -1;
  bool global = false;     // spins on its CPU, which it leaves only to sleep (idle_sleep_ns)
  QueueId queue = GHOST_QUEUE_NONE;
  std::function<void()> run_once;  // e.g. [&agent] { agent.RunOnce(); }
  // Per-CPU agents: a sleeping agent wakes by itself after this long (the
  // WaitQueue timeout of Agent::Run); 0: only messages wake it.
  uint64_t wait_timeout_ns = 0;
  // Global agents: after a pass that read no message, how long the agent may
  // sleep on its queue (e.g. from Agent::IdleSleep); 0 or empty: it spins.
  // Asleep, its CPU runs threads; any message but a deferrable wake-up wakes it.
  std::function<uint64_t()> idle_sleep_ns;
};

struct SimKernelStats {
  uint64_t messages = 0;
  uint64_t messages_dropped = 0;
  uint64_t commit_calls = 0;
  uint64_t txns = 0;
  uint64_t txn_results[GHOST_TXN_RESULT_LAST + 1] = {};
  uint64_t fallback_runs = 0;
  uint64_t agent_runs = 0;
  uint64_t slice_renewals = 0;  // slices given anew in place (nothing waited)
  // Fast-path rings: entries idle CPUs claimed, ran and dropped as stale;
  // doorbell calls and the idle CPUs they woke.
  uint64_t ring_claims = 0;
  uint64_t ring_runs = 0;
  uint64_t ring_steals = 0;  // claims from another node's ring (GHOST_RING_F_STEAL)
  uint64_t ring_stale = 0;
  uint64_t doorbells = 0;
  uint64_t doorbell_kicks = 0;
  uint64_t doorbell_steal_kicks = 0;  // of them: another node's CPU, for a ring that lets it steal
  // The class's producer at wake-up (GHOST_RING_F_WAKEUP): pushed, refused.
  uint64_t wakeup_pushes = 0;
  uint64_t wakeup_refused = 0;
  // Global agents that slept on their queues (idle_sleep_ns), and threads
  // their CPUs started meanwhile (from the rings or the fallback FIFOs).
  uint64_t agent_sleeps = 0;
  uint64_t agent_cpu_runs = 0;
};

class SimKernelSide : public KernelSide, public SchedClass {
 public:
  SimKernelSide(Machine& machine, const CostModel& costs);

  // The simulator's side -------------------------------------------------
  // Registers an agent to drive. Global agents hold their CPU, except while
  // they sleep (SimAgentOptions::idle_sleep_ns).
  absl::Status RegisterAgent(SimAgentOptions opts);
  // Global agents are also run this long after a thread starts, so that a
  // policy with a time slice sees it expire (a real one spins and notices).
  void SetGlobalAgentPollAfterStart(uint64_t ns) { poll_after_start_ns_ = ns; }
  // A real global agent spins; here it also runs this often when nothing else
  // triggers it, so time-based decisions (back-offs) are taken. 0: never.
  void SetGlobalAgentIdlePoll(uint64_t ns) { idle_poll_ns_ = ns; }
  // Creates a thread in `enclave` (TASK_NEW to its default queue).
  int SpawnThread(EnclaveId enclave, uint8_t kind, uint32_t owner, bool runnable,
                  uint64_t burst_ns);
  Tid TidOf(int thread) const { return static_cast<Tid>(thread) + 1; }
  int ThreadOf(Tid tid) const;  // -1 if unknown
  // Sets the affinity of a thread (TASK_AFFINITY_CHANGED).
  absl::Status SetAffinity(Tid tid, const CpuList& cpus);
  // Sets its sched_ext weight (100: nice 0; TASK_PRIORITY_CHANGED).
  absl::Status SetWeight(Tid tid, uint32_t weight);
  const SimKernelStats& stats() const { return stats_; }
  // Simulated CPU time agents spent (excluding global agents' idle spinning).
  uint64_t agent_busy_ns() const;
  int num_agents() const { return static_cast<int>(agents_.size()); }
  const CostModel& costs() const { return costs_; }
  // Gives every enclave one ring per NUMA node (node_of_cpu[c]: CPU c's node,
  // < GHOST_RING_MAX_NODES): a CPU that would go idle claims from its node's
  // ring after the fallback FIFO, validating as the class does.
  void EnableRings(std::vector<int> node_of_cpu);
  // The time the kernel side acts at: the running agent's clock, or now.
  uint64_t Clock() const { return in_agent_ >= 0 ? clock_ : machine_.now(); }

  // KernelSide ---------------------------------------------------------------
  int NumCpus() const override { return machine_.num_cpus(); }
  uint32_t AbiVersion() const override { return GHOST_ABI_VERSION; }
  absl::StatusOr<EnclaveId> CreateEnclave(const EnclaveOptions& opts) override;
  absl::Status DestroyEnclave(EnclaveId enclave) override;
  absl::StatusOr<QueueId> CreateQueue(const QueueOptions& opts) override;
  absl::Status DestroyQueue(QueueId queue) override;
  absl::Status SetDefaultQueue(EnclaveId enclave, QueueId queue) override;
  absl::Status AssociateQueue(Tid tid, QueueId queue) override;
  absl::Status ConfigQueueWakeup(QueueId queue, int wake_cpu, bool wake_agent) override;
  size_t ConsumeQueue(QueueId queue, absl::FunctionRef<void(const ghost_msg&)> fn) override;
  absl::Status WaitQueue(QueueId queue, absl::Duration timeout) override;
  const ghost_queue_word& QueueWord(QueueId queue) const override;
  const ghost_status_word* StatusWords() const override { return sw_.data(); }
  ghost_txn* TxnSlot(int cpu) override;
  absl::Status Commit(const CpuList& cpus) override;
  absl::Status SetWantOnCpu(Tid tid, bool want) override;
  int NumNodes() const override { return num_nodes_; }
  int NodeOfCpu(int cpu) const override {
    return cpu >= 0 && cpu < static_cast<int>(node_of_cpu_.size()) ? node_of_cpu_[cpu] : 0;
  }
  ghost_ring* RingRegion(EnclaveId enclave, int node) override;
  absl::Status RingDoorbell(EnclaveId enclave, absl::Span<const uint32_t> kicks) override;
  void SetPinnedPush(int cpu, bool on) override;

  // SchedClass (called by the Machine) ---------------------------------------
  void ThreadNew(int t) override;
  void ThreadRunnable(int t, int waker_cpu) override;
  void ThreadStopped(int t, int cpu, StopReason why) override;
  void ThreadStarted(int t, int cpu) override;
  uint64_t RenewSlice(int t, int cpu) override;
  void CpuFree(int cpu) override;
  void CpuBusy(int cpu) override;
  void CpuAvailable(int cpu) override;
  void OnEvent(const Event& e) override;

 private:
  enum SubEvent : uint32_t {
    kAgentWake = 0, kAgentRun, kAgentRelease, kAgentPoll, kAgentTimeout, kTxnStart, kWatchdog, kTick,
    kServeOrphans, kRingKick
  };
  struct Pending {
    ghost_msg msg;
    uint64_t visible_ns;
  };
  struct Queue {
    bool in_use = false;
    EnclaveId enclave = 0;
    size_t capacity = 0;           // messages
    uint64_t delivery_ns = 0;      // event -> visible to the agent
    int agent = -1;                // registered agent reading it
    std::vector<Pending> ring;     // [head, end): undelivered or unread
    size_t head = 0;
    size_t delivered = 0;          // ring[head, head+delivered) are visible
    ghost_queue_word word = {};
  };
  struct Enclave {
    bool in_use = false;
    CpuList cpus;
    uint64_t watchdog_ns = 0;
    bool ticks = false;            // CPU_TICK to CPUs running its threads
    QueueId default_queue = GHOST_QUEUE_NONE;
    std::vector<int> fallback;     // FIFO of threads the agent did not place in time
    size_t fallback_head = 0;
  };
  struct KThread {                 // kernel-side state of a machine thread
    EnclaveId enclave = 0;
    // Its association (what AssociateQueue set; the status word shows it).
    // Messages go to MsgQueue(t): this queue while it lives, else the
    // enclave's default queue.
    QueueId queue = GHOST_QUEUE_NONE;
    uint64_t seq = 0;
    uint32_t unread = 0;           // its messages not yet consumed (in live rings)
    int latched_cpu = -1;          // committed, not started yet
    bool in_fallback = false;      // in its enclave's FIFO or in orphans_
    bool want_on_cpu = false;
    uint64_t queued_ns = 0;        // runnable and waiting since
    uint64_t last_commit_seq = 0;  // commit that started it (TASK_ON_CPU)
    // Its run's slice if a commit started it, renewed in place while its CPU's
    // agent says nothing waits there (bpf/progs/slices.bpf.h); 0: never.
    uint64_t renew_slice_ns = 0;
    // Set aside on this CPU by its per-CPU agent's wake-up (-1: not), with
    // what was left of its slice (0: none): it resumes there.
    int held_cpu = -1;
    uint64_t held_slice_ns = 0;
    CpuList affinity;
  };
  struct Latch {                   // a claimed slot waiting for its thread to start
    int thread = -1;               // -1: none; kIdleLatch: idle the CPU
    uint64_t gen = 0;
    int agent = -1;                // who committed (poked on a late result)
    bool ready = false;            // start time reached (or local: agent yield)
  };
  struct Agent {
    SimAgentOptions opts;
    bool on_cpu = false;           // per-CPU: occupies its CPU
    bool wake_pending = false;
    bool run_pending = false;
    uint64_t run_time = 0;
    uint64_t run_gen = 0;
    uint64_t busy_until = 0;
    uint64_t busy_ns = 0;
    uint64_t release_gen = 0;
    uint64_t sleep_gen = 0;
    uint64_t idle_sleep_ns = 0;    // global: the longest its next sleep may last
    size_t consumed = 0;           // messages consumed in the current pass
    bool stalled = false;          // last pass left visible messages unread
  };
  static constexpr int kIdleLatch = -2;

  bool ValidQueue(QueueId q) const { return q < queues_.size() && queues_[q].in_use; }
  int Cpu2Enclave(int cpu) const { return cpu_enclave_[cpu]; }
  void UpdateStatusWord(int t, uint32_t flags_set, uint32_t flags_clear);
  QueueId MsgQueue(int t) const;
  ghost_msg NewTaskMsg(int t, uint16_t type, int cpu);
  void Produce(QueueId q, const ghost_msg& m, int thread);
  void ProduceCpu(int cpu, uint16_t type, uint32_t reason);
  void Deliver(Queue& q, uint64_t t) const;
  bool QueuePending(const Queue& q) const { return q.head < q.ring.size(); }
  uint64_t NextVisible(const Queue& q) const;
  void RecomputeCpuQueues();
  void Enqueued(int t);
  uint32_t Validate(int cpu, const ghost_txn& txn, int* thread);
  void Finish(int cpu, uint32_t result);
  void TryStart(int cpu);
  void RequestRun(int a, uint64_t t);
  // `wakes`: the message wakes a sleeping agent (not a deferrable wake-up).
  void NotifyAgent(QueueId q, uint64_t visible_ns, bool wakes);
  void RunAgent(int a);
  void AgentRelease(int a);
  void AgentWake(int a);
  void Watchdog(EnclaveId e);
  void Tick(EnclaveId e);
  bool RunFallback(int cpu);
  bool RunFifo(int cpu, std::vector<int>& fifo, size_t& head);
  bool EnclaveLive(EnclaveId e) const { return e < enclaves_.size() && enclaves_[e].in_use; }
  // The class's home-CPU skip (fast_path.bpf.h): a global agent's CPU takes
  // nothing from the rings or the FIFOs, unless its agent sleeps.
  bool HeldByGlobalAgent(int cpu) const { return pinned_[cpu] && !agent_asleep_[cpu]; }
  void Orphan(int t);
  // The stop message and status for `t` leaving `cpu`.
  void SendStopped(int t, int cpu, StopReason why);
  // The thread set aside on `cpu` (KThread::held_cpu), if any: run there
  // again (run) or sent back to its agent (TASK_PREEMPT). False if none.
  bool ResumeHeld(int cpu, bool run);
  void ServeOrphans();
  // A free CPU of an enclave with rings claims entries from its node's ring
  // until one runs (or none is left), then from other nodes' rings that allow
  // stealing; true if a thread started.
  bool ConsumeRing(int cpu);
  // Up to GHOST_RING_SCAN claims from `r` (may be null); `cost` accumulates
  // the pops charged to the CPU.
  bool ConsumeFrom(ghost_ring* r, int cpu, bool steal, uint64_t& cost);
  void PushAtWakeup(int t, ghost_msg& m);
  uint32_t ValidateRingEntry(int cpu, int t, uint64_t seqnum) const;

  Machine& machine_;
  CostModel costs_;
  mutable std::vector<Queue> queues_;
  std::vector<Enclave> enclaves_;
  std::vector<KThread> kthreads_;
  std::vector<ghost_status_word> sw_;
  std::vector<ghost_txn> slots_;
  std::vector<Latch> latches_;
  std::vector<int> cpu_enclave_;
  std::vector<QueueId> cpu_queue_;   // where CPU messages about a CPU go
  std::vector<uint64_t> cpu_seq_;
  std::vector<bool> pinned_;         // a global agent's CPU
  std::vector<bool> agent_asleep_;   // ... whose agent sleeps (ghost_cpu_word.agent_asleep)
  // ghost_cpu_word.pinned_push: the CPU's agent has nothing waiting there. The
  // simulator models only its slice renewal, not the class's own queueing.
  std::vector<bool> nothing_waits_;
  std::vector<Agent> agents_;
  // The class-wide FIFO of threads whose enclave was destroyed (no agent to
  // wait for): any free CPU that no global agent holds runs them, whatever
  // enclave it belongs to now, as the BPF class's fallback DSQ does.
  std::vector<int> orphans_;
  size_t orphans_head_ = 0;
  bool serve_pending_ = false;
  void At(uint64_t time, SubEvent sub, uint32_t a, uint64_t b) {
    machine_.Schedule(time, static_cast<Machine::EventKind>(static_cast<uint32_t>(Machine::kClassEvent) + static_cast<uint32_t>(sub)), a, b);
  }
  uint32_t spawn_enclave_ = 0;
  int in_agent_ = -1;                // agent whose RunOnce is on the stack
  int quiet_stop_cpu_ = -1;          // a per-CPU agent is taking this CPU (ThreadStopped)
  std::vector<int> held_;            // per CPU: the thread set aside there, or -1
  uint64_t clock_ = 0;
  uint64_t commit_seq_ = 0;
  uint64_t poll_after_start_ns_ = 0;
  uint64_t idle_poll_ns_ = 0;
  SimKernelStats stats_;
  bool rings_on_ = false;
  int num_nodes_ = 1;
  std::vector<int> node_of_cpu_;
  std::vector<RingMemory> rings_;         // enclave * GHOST_RING_MAX_NODES + node
  std::vector<bool> wake_kicked_;  // a wake-up push's kick is on its way (PushAtWakeup)
  std::vector<uint64_t> ring_heads_seen_;  // pushes already charged to an agent
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_SIM_KERNEL_SIDE_H_
