// Per-CPU FIFO (ghOSt's per-CPU FIFO policy): one agent per enclave CPU, each
// with its own queue and FIFO runqueue, committing the head to its own CPU.
// New threads report on the enclave's default queue, which the first CPU's
// agent reads (it is also that CPU's own queue); they are spread over the CPUs
// by moving each one's messages to the chosen CPU's queue (AssociateQueue).
// With --slice-us a commit carries the slice, and the class renews it in place
// while the CPU's runqueue is empty (pinned push on): a thread that never
// blocks gives the CPU up at its slice's end only when another waits there.
// A thread that wakes up (or yields) onto its CPU while that CPU is taken and
// another it may use idles is placed anew the same way (MovedOffTakenCpu):
// threads run until they block, so one CPU hog would otherwise keep every
// thread queued behind it waiting for the class's watchdog. For the same
// reason a CPU that goes idle takes a waiting thread it may run from a CPU
// whose current thread keeps it (StealFor).
//
// One scheduler object serves all the agents: handing a thread to another
// CPU's runqueue is a move under one lock, as in ghOSt's in-process policy,
// and the receiving agent is woken (Agent::Wake) rather than left blocked on
// its empty queue until its poll timeout.
#ifndef GHOST_SCX_USERSPACE_POLICIES_FIFO_PER_CPU_H_
#define GHOST_SCX_USERSPACE_POLICIES_FIFO_PER_CPU_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/policies/fifo_task.h"
#include "userspace/policy.h"
#include "userspace/run_request.h"
#include "userspace/scheduler.h"

namespace ghost {

class FifoPerCpuScheduler : public Scheduler {
 public:
  // `cpu_queues`: every enclave CPU and the queue its agent reads.
  FifoPerCpuScheduler(KernelSide& kernel, QueueId default_queue,
                      const std::map<int, QueueId>& cpu_queues,
                      const PolicyOptions& opts);
  ~FifoPerCpuScheduler() override;

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
  bool Pending(const Agent& agent) override;

  // The agent of `agent.cpu()`: woken when another agent hands it a thread
  // (until attached, it notices at its next message or wait timeout).
  void AttachAgent(Agent& agent);

  // For tests and stats.
  struct Stats {
    uint64_t commits = 0;         // transactions that reached COMMITTED
    uint64_t failed_commits = 0;  // any other result
    uint64_t stale = 0;           // TARGET_STALE or AGENT_STALE
    uint64_t migrations = 0;      // successful AssociateQueue calls
    uint64_t associate_retries = 0;
    uint64_t wake_moves = 0;      // woken onto a taken CPU while another idled: placed anew
    uint64_t steals = 0;          // taken by an idle CPU from behind another's running thread
    uint64_t not_allowed_retries = 0;  // NOT_ALLOWED on a thread's last usable CPU
    uint64_t remote_commits = 0;  // made for another CPU whose agent slept
    uint64_t class_held = 0;      // messages of threads the class queued itself
    uint64_t class_returned = 0;  // ... made ours by a message that queues nothing
    uint64_t handed_over = 0;     // waiting threads given to the class (HandOverPinned)
    uint64_t hand_over_refused = 0;  // ... that it refused (they stay queued)
    // AFFINITY_CHANGED of a thread running where the class started it: not
    // queued until its move off that CPU says so.
    uint64_t running_at_affinity = 0;
    // CPUs believed busy (CPU_BUSY) that the kernel side said were free
    // (KernelSide::CpuBusy): a CPU_AVAILABLE not read yet, or lost.
    uint64_t busy_cleared = 0;
    // WAKEUPs of threads we believed on a CPU (a missed off-CPU event).
    uint64_t wakeups_on_cpu = 0;
    std::string last_wakeup_on_cpu;  // the last such thread, as we saw it
  };
  Stats stats() const;
  // The thread's entry and its owner CPU's state (diagnostics).
  std::string Describe(Tid tid) const;
  // CPU whose runqueue holds `tid` (-1: not placed or unknown).
  int OwnerOf(Tid tid) const;
  size_t RunqueueSize(int cpu) const;

 private:
  struct Cpu {
    int cpu = -1;
    QueueId queue = GHOST_QUEUE_NONE;
    FifoRunqueue rq;
    Tid current = GHOST_TID_NONE;   // what our commit started there
    bool busy = false;              // a higher class has it (CPU_BUSY)
    uint64_t held_since_ns = 0;     // current (or busy) since (StealFor)
    uint64_t retry_after_ns = 0;    // CPU_UNAVAILABLE back-off
    std::unique_ptr<RunRequest> req;
    bool req_active = false;        // req holds a transaction we have not read
    bool remote = false;            // ... made by another CPU's agent
    int remote_by = -1;             // ... that one, which watches for its result
    Agent* agent = nullptr;         // woken on a hand-off (AttachAgent)
    bool pinned_push = false;       // as last set (KernelSide::SetPinnedPush)
  };

  // Updates the task a message is about (creating it if need be).
  // nullptr: the message is about an earlier life of the thread.
  FifoTask* Track(const Message& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OffCpu(FifoTask& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Enqueue(FifoTask& t, bool front) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(Tid tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks for `t` to be (re)placed on some allowed CPU.
  void NeedsPlacement(FifoTask& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Threads of ours on `c`: waiting, running, being committed.
  static size_t Load(const Cpu& c);
  // A thread of ours runs, waits or is being committed on `c`, or a higher
  // class has it.
  bool Taken(const Cpu& c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Some CPU `t` may use other than its owner idles (nothing runs, waits,
  // is being committed or backs off there).
  bool IdleCpuFor(const FifoTask& t) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A thread that wakes up or yields onto its CPU while that one is taken
  // and another it may use idles is placed anew (on the idle one): queued
  // behind a thread that runs until it blocks (a CPU hog), it waited for the
  // class's watchdog. True if so (then it is not to be queued on its CPU).
  bool MovedOffTakenCpu(FifoTask& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `c` idles: the first waiting thread that may run on it, from the longest
  // runqueue of a CPU where one thread of ours has run (or a higher class
  // has been) for kStealAfterNs, is placed anew (on an idle CPU: `c`, or
  // another). Threads queued there before any CPU idled would otherwise wait
  // behind a thread that runs until it blocks (a CPU hog). True if one was.
  bool StealFor(const Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The thread StealFor would take at `now` (0: however long the CPU it
  // waits on has been held), or nullptr.
  FifoTask* StealableFor(const Cpu& c, uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives the class the threads at the head of c's runqueue that may run
  // only on c (KernelSide::HandOver), so that the runqueue drains and pinned
  // push can stay on.
  void HandOverPinned(Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // c.busy, unless the kernel side says the CPU is free after all (then
  // cleared): a lost CPU_AVAILABLE must not keep the CPU from us for good.
  bool StillBusy(Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `t` is class-held: out of every runqueue and placement list of ours.
  void HandToClass(FifoTask& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the threads a message made ours again without queueing them.
  void CheckClassHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pinned push on for `c` exactly while nothing of ours waits for it: a
  // thread the class queues there then has nobody older to overtake.
  void UpdatePinnedPush(Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlacePending() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int PickCpu(const FifoTask& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Oldest waiting thread of `c`'s runqueue that may be committed now,
  // taken out of it.
  FifoTask* TakeNext(Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads a finished transaction of `c`. False if the round should stop
  // (stale: wait for the next message).
  bool HandleResult(Cpu& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked(Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the agents whose runqueues gained threads, except `self`'s.
  void WakeReceivers(int self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commits the head of `c`'s runqueue from `agent` (another CPU's) when `c`
  // runs nothing and has no transaction of its own: cheaper than waking its
  // agent to do it. True if the commit went in.
  bool CommitRemote(Cpu& c, Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Opens and commits `t` on `c` for `agent`; false (and `t` back in front)
  // if the slot could not be opened.
  bool OpenAndCommit(Cpu& c, FifoTask& t, Agent& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  KernelSide& kernel_;
  const QueueId default_queue_;
  const PolicyOptions opts_;
  mutable absl::Mutex mu_;
  FifoTaskTable tasks_ ABSL_GUARDED_BY(mu_);
  std::map<int, Cpu> cpus_ ABSL_GUARDED_BY(mu_);
  std::vector<Tid> unplaced_ ABSL_GUARDED_BY(mu_);
  std::set<int> receivers_ ABSL_GUARDED_BY(mu_);  // CPUs whose runqueue grew
  std::set<Tid> class_held_ ABSL_GUARDED_BY(mu_);  // tasks with class_held set
  size_t rr_ ABSL_GUARDED_BY(mu_) = 0;
  // False once the kernel side said it has no hand-over (the simulator).
  bool hand_over_ok_ ABSL_GUARDED_BY(mu_) = true;
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

class FifoPerCpuPolicy : public Policy {
 public:
  static constexpr const char* kName = "fifo-per-cpu";
  static absl::StatusOr<std::unique_ptr<Policy>> Create(
      const PolicyOptions& opts, Enclave& enclave);

  std::vector<Agent*> agents() override;
  const char* name() const override { return kName; }
  std::string StatsLine() const override;
  std::string DescribeThread(Tid tid) const override { return sched_->Describe(tid); }
  FifoPerCpuScheduler& scheduler() { return *sched_; }

 private:
  FifoPerCpuPolicy() = default;
  std::unique_ptr<FifoPerCpuScheduler> sched_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_FIFO_PER_CPU_H_
