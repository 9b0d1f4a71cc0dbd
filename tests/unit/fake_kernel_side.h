// An in-process KernelSide that implements the ABI semantics of
// docs/lib_api.md deterministically, for host tests and benchmarks: queues are
// deques of ghost_msg, status words and transaction slots plain arrays, and
// Commit() validates and applies at once (a committed thread is on its CPU and
// the slot is DONE/COMMITTED when Commit returns), unless a test asks for
// results later (set_defer_results, set_hold_commits). Tests make things
// happen with NewThread, Wake, Block, Preempt, Yield, SetAffinity, Exit,
// TakeCpu...
//
// Fast-path rings (issue 9, set_rings(true)): one ring per (enclave, node),
// a configurable CPU -> node map, RingDoorbell records its kicks, and
// ConsumeRing(cpu) is "CPU cpu goes idle": it claims from its node's ring and
// validates as the class does (the contract in docs/FAST_PATH.md): STALE with
// the reason, or the thread moves to the CPU (held there: commits find it
// RUNNING_ELSEWHERE) and RAN when it reaches the CPU (at once, or at
// RunClaimed with set_hold_ring_claims), or STALE BOUNCED if it goes back
// before it ran (BounceClaimed, an affinity change, a higher class taking
// the CPU); the bounced thread is parked again without a message.
//
// Header-only so that tests/unit and tests/bench can both include it.
#ifndef GHOST_SCX_TESTS_UNIT_FAKE_KERNEL_SIDE_H_
#define GHOST_SCX_TESTS_UNIT_FAKE_KERNEL_SIDE_H_

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "kernel/ghost_ring_ops.h"
#include "userspace/kernel_side.h"
#include "userspace/ring.h"

namespace ghost::testing {

class FakeKernelSide : public KernelSide {
 public:
  struct Thread {
    Tid tid = GHOST_TID_NONE;
    uint32_t sw_index = 0;
    EnclaveId enclave = GHOST_ENCLAVE_NONE;
    QueueId queue = GHOST_QUEUE_NONE;
    uint64_t seq = 0;
    bool runnable = false;
    bool dead = false;
    int cpu = -1;
    CpuList affinity;
    bool want_on_cpu = false;
    bool in_transit = false;  // being moved by the kernel side: not committable
    int held_cpu = -1;        // a held commit (set_hold_commits) claims it for this CPU
    int ring_cpu = -1;        // a ring consumer on this CPU claimed it (not run yet)
    // Lookups by tid (AssociateQueue, commits) that still fail as if the
    // thread did not exist: the kernel side let it go, and its DEAD/DEPARTED
    // message is yet to come.
    int unfindable = 0;
    int last_cpu = 0;  // where it last ran: its wake-up parks on that CPU's node
    // Queued on its CPU by the class itself (pinned push): its status word
    // says GHOST_SW_CLASS_HELD, and commits find it RUNNING_ELSEWHERE.
    bool class_held = false;
  };

  explicit FakeKernelSide(int num_cpus = 8)
      : num_cpus_(num_cpus),
        sw_(GHOST_MAX_THREADS),
        slots_(GHOST_MAX_CPUS),
        cpus_(GHOST_MAX_CPUS) {
    std::memset(sw_.data(), 0, sw_.size() * sizeof(ghost_status_word));
    std::memset(slots_.data(), 0, slots_.size() * sizeof(ghost_txn));
    for (int c = 0; c < GHOST_MAX_CPUS; ++c) slots_[c].cpu = c;
  }

  // --- KernelSide ------------------------------------------------------------
  int NumCpus() const override { return num_cpus_; }
  uint32_t AbiVersion() const override { return abi_version_; }

  absl::StatusOr<EnclaveId> CreateEnclave(const EnclaveOptions& opts) override {
    if (opts.cpus.Empty()) return absl::InvalidArgumentError("no cpus");
    for (int c : opts.cpus.ToVector()) {
      if (c >= num_cpus_) return absl::InvalidArgumentError("cpu out of range");
      if (EnclaveOf(c) != GHOST_ENCLAVE_NONE) {
        return absl::AlreadyExistsError(absl::StrFormat("cpu %d taken", c));
      }
    }
    if (opts.id != GHOST_ENCLAVE_NONE) {
      if (opts.id >= GHOST_MAX_ENCLAVES) return absl::InvalidArgumentError("no such enclave");
      if (enclaves_[opts.id].in_use) return absl::AlreadyExistsError("enclave in use");
      enclaves_[opts.id] = {.in_use = true, .cpus = opts.cpus};
      return opts.id;
    }
    for (EnclaveId e = 0; e < GHOST_MAX_ENCLAVES; ++e) {
      if (!enclaves_[e].in_use) {
        enclaves_[e] = {.in_use = true, .cpus = opts.cpus};
        return e;
      }
    }
    return absl::ResourceExhaustedError("no enclave slot");
  }
  absl::Status DestroyEnclave(EnclaveId e) override {
    if (e >= GHOST_MAX_ENCLAVES || !enclaves_[e].in_use) {
      return absl::NotFoundError("no such enclave");
    }
    enclaves_[e] = {};
    return absl::OkStatus();
  }

  absl::StatusOr<QueueId> CreateQueue(const QueueOptions& opts) override {
    if (opts.enclave >= GHOST_MAX_ENCLAVES || !enclaves_[opts.enclave].in_use) {
      return absl::InvalidArgumentError("no such enclave");
    }
    for (QueueId q = 0; q < GHOST_MAX_QUEUES; ++q) {
      if (!queues_[q].in_use) {
        queues_[q] = {};
        queues_[q].in_use = true;
        queues_[q].enclave = opts.enclave;
        queues_[q].wake_cpu = opts.wake_cpu;
        queues_[q].word.flags = GHOST_QUEUE_INUSE;
        queues_[q].word.enclave = opts.enclave;
        queues_[q].word.wake_cpu = static_cast<uint32_t>(opts.wake_cpu);
        return q;
      }
    }
    return absl::ResourceExhaustedError("no queue slot");
  }
  absl::Status DestroyQueue(QueueId q) override {
    if (!ValidQueue(q)) return absl::NotFoundError("no such queue");
    queues_[q].in_use = false;
    queues_[q].msgs.clear();
    return absl::OkStatus();
  }
  absl::Status SetDefaultQueue(EnclaveId e, QueueId q) override {
    if (e >= GHOST_MAX_ENCLAVES || !enclaves_[e].in_use || !ValidQueue(q)) {
      return absl::InvalidArgumentError("bad enclave or queue");
    }
    enclaves_[e].default_queue = q;
    return absl::OkStatus();
  }
  absl::Status AssociateQueue(Tid tid, QueueId q) override {
    if (before_associate_) before_associate_(tid);
    Thread* t = Find(tid);
    if (t == nullptr || t->dead) return absl::NotFoundError("no such thread");
    if (t->unfindable > 0) {
      --t->unfindable;
      return absl::NotFoundError("no such thread (not indexed yet)");
    }
    if (!ValidQueue(q)) return absl::InvalidArgumentError("no such queue");
    if (ValidQueue(t->queue)) {
      for (const ghost_msg& m : queues_[t->queue].msgs) {
        if (m.tid == tid) {
          return absl::FailedPreconditionError("old queue holds messages");
        }
      }
    }
    t->queue = q;
    WriteStatusWord(*t);
    ++associations_;
    return absl::OkStatus();
  }
  absl::Status ConfigQueueWakeup(QueueId q, int wake_cpu,
                                 bool wake_agent) override {
    if (!ValidQueue(q)) return absl::NotFoundError("no such queue");
    queues_[q].wake_cpu = wake_cpu;
    queues_[q].word.wake_cpu = static_cast<uint32_t>(wake_cpu);
    return absl::OkStatus();
  }

  size_t ConsumeQueue(QueueId q,
                      absl::FunctionRef<void(const ghost_msg&)> fn) override {
    if (!ValidQueue(q)) return 0;
    size_t n = 0;
    while (!queues_[q].msgs.empty()) {
      ghost_msg m = queues_[q].msgs.front();
      queues_[q].msgs.pop_front();
      fn(m);
      ++n;
      if (on_consume_) on_consume_(q, m);
    }
    return n;
  }
  absl::Status WaitQueue(QueueId, absl::Duration) override {
    return absl::OkStatus();
  }

  const ghost_queue_word& QueueWord(QueueId q) const override {
    static const ghost_queue_word kNone = {};
    return q < GHOST_MAX_QUEUES ? queues_[q].word : kNone;
  }
  const ghost_status_word* StatusWords() const override { return sw_.data(); }
  ghost_txn* TxnSlot(int cpu) override {
    return cpu >= 0 && cpu < num_cpus_ ? &slots_[cpu] : nullptr;
  }

  // Validates every READY slot first (against the state at the call, as one
  // syscall would), then starts the valid ones in CPU order.
  absl::Status Commit(const CpuList& cpus) override {
    ++commit_calls_;
    if (fail_commit_calls_) return absl::InternalError("commit call failed");
    std::vector<int> claimed;
    for (int c : cpus.ToVector()) {
      if (c >= num_cpus_) continue;
      uint32_t ready = GHOST_TXN_READY;
      if (__atomic_compare_exchange_n(&slots_[c].state, &ready,
                                      GHOST_TXN_CLAIMED, false,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        claimed.push_back(c);
      }
    }
    last_commit_cpus_ = claimed;
    std::vector<uint32_t> results;
    for (int c : claimed) results.push_back(Validate(c, slots_[c]));
    for (size_t i = 0; i < claimed.size(); ++i) {
      const int c = claimed[i];
      uint32_t r = results[i];
      if (hold_commits_ && r == GHOST_TXN_COMMITTED && slots_[c].tid != GHOST_TID_NONE) {
        Thread& t = threads_.at(slots_[c].tid);
        if (t.held_cpu < 0) {
          t.held_cpu = c;  // FinishHeld settles it
          continue;
        }
        r = GHOST_TXN_RUNNING_ELSEWHERE;  // an earlier slot of this call holds it
      }
      if (r == GHOST_TXN_COMMITTED) r = Apply(c, slots_[c]);
      if (defer_results_ && r == GHOST_TXN_COMMITTED) {
        deferred_.push_back(c);  // "started", result reported later
        continue;
      }
      Finish(c, r);
    }
    return absl::OkStatus();
  }

  // --- fast-path rings ---------------------------------------------------------
  int NumNodes() const override {
    int n = 1;
    for (int node : node_of_cpu_) n = std::max(n, node + 1);
    return n;
  }
  int NodeOfCpu(int cpu) const override {
    return cpu >= 0 && cpu < static_cast<int>(node_of_cpu_.size()) ? node_of_cpu_[cpu] : 0;
  }
  ghost_ring* RingRegion(EnclaveId e, int node) override {
    if (!rings_on_ || e >= GHOST_MAX_ENCLAVES || node < 0 || node >= GHOST_RING_MAX_NODES) {
      return nullptr;
    }
    RingMemory& m = rings_[e * GHOST_RING_MAX_NODES + node];
    if (!m) m = AllocateRingMemory();
    return m.get();
  }
  absl::Status RingDoorbell(EnclaveId e, absl::Span<const uint32_t> kicks) override {
    if (!rings_on_) return KernelSide::RingDoorbell(e, kicks);
    // As the class: one count per node it has, no more.
    if (kicks.size() > static_cast<size_t>(NumNodes())) {
      return absl::InvalidArgumentError("more kick counts than nodes");
    }
    doorbells_.emplace_back(kicks.begin(), kicks.end());
    return absl::OkStatus();
  }

  // Recorded only: the fake's class never queues threads itself; a test says
  // which thread it holds (set_class_held), as pinned.bpf.h would.
  void SetPinnedPush(int cpu, bool on) override { pinned_push_[cpu] = on; }
  bool pinned_push(int cpu) const {
    auto it = pinned_push_.find(cpu);
    return it != pinned_push_.end() && it->second;
  }
  // The class holds `tid` or not, from its next event on.
  void set_class_held(Tid tid, bool held) { threads_.at(tid).class_held = held; }
  // The class gives a thread it held back to its agent (it could no longer
  // queue it on its CPU: pinned_keep_or_park): a PREEMPT, runnable.
  void GiveBack(Tid tid) {
    Thread& t = threads_.at(tid);
    t.class_held = false;
    Emit(t, GHOST_MSG_TASK_PREEMPT, [](ghost_msg& m) {
      m.off_cpu.from_cpu = ~0U;
      m.off_cpu.was_current = 0;
    });
  }
  // As the class's ghost_hand_over: a valid entry's thread becomes class-held
  // (its later messages say so; commits find it RUNNING_ELSEWHERE). The fake
  // does not run it: a test does (Preempt, Block...) or gives it back.
  absl::Status HandOver(int cpu, absl::Span<HandOverEntry> entries) override {
    ++hand_over_calls_;
    if (!hand_over_on_) return KernelSide::HandOver(cpu, entries);
    for (HandOverEntry& e : entries) {
      e.result = ValidateHandOver(cpu, e);
      if (e.result == GHOST_TXN_COMMITTED) {
        threads_.at(e.tid).class_held = true;
        handed_.push_back(e.tid);
      }
    }
    return absl::OkStatus();
  }
  void set_hand_over(bool on) { hand_over_on_ = on; }
  const std::vector<Tid>& handed() const { return handed_; }
  int hand_over_calls() const { return hand_over_calls_; }  // answered or not
  // The class starts a thread it holds on `cpu` (ops.running: no message, its
  // status word says on that CPU).
  void RunClassHeld(Tid tid, int cpu) {
    Thread& t = threads_.at(tid);
    t.class_held = false;
    t.cpu = cpu;
    cpus_[cpu].current = tid;
    WriteStatusWord(t);
  }
  // A running thread changes its own mask: AFFINITY_CHANGED while it still
  // runs (its status word says so at that seqnum); the kernel's move off its
  // CPU comes later (Preempt), as on the real class.
  void SetAffinityWhileRunning(Tid tid, const CpuList& cpus) {
    Thread& t = threads_.at(tid);
    t.affinity = cpus;
    Emit(t, GHOST_MSG_TASK_AFFINITY_CHANGED,
         [&](ghost_msg& m) { cpus.ToMask(m.affinity.cpus); });
  }
  // Counted only: the fake keeps no heartbeat (Agent::Run calls it).
  void AgentHeartbeat(QueueId) override { agent_heartbeats_.fetch_add(1); }
  int agent_heartbeats() const { return agent_heartbeats_.load(); }

  absl::Status SetWantOnCpu(Tid tid, bool want) override {
    Thread* t = Find(tid);
    if (t == nullptr) return absl::NotFoundError("no such thread");
    t->want_on_cpu = want;
    return absl::OkStatus();
  }

  // --- events (what the kernel would see happen) -----------------------------
  Tid NewThread(EnclaveId e = 0, bool runnable = true) {
    const Tid tid = next_tid_++;
    Thread& t = threads_[tid];
    t.tid = tid;
    t.sw_index = next_sw_++;
    t.enclave = e;
    t.queue = enclaves_[e].default_queue;
    t.runnable = runnable;
    t.affinity = CpuList::FirstN(num_cpus_);
    Emit(t, GHOST_MSG_TASK_NEW, [&](ghost_msg& m) {
      m.task_new.pid = static_cast<uint32_t>(tid);
      m.task_new.tgid = static_cast<uint32_t>(tid);
      m.task_new.sw_index = t.sw_index;
      m.task_new.weight = 100;
      m.task_new.runnable = runnable ? 1 : 0;
    });
    return tid;
  }
  // With rings whose agent set GHOST_RING_F_WAKEUP, the class's producer
  // pushes the thread into its last CPU's node's ring and names the entry in
  // the message (as ops.enqueue does); wakeup_pushes() counts them.
  void Wake(Tid tid) {
    Thread& t = threads_.at(tid);
    t.runnable = true;
    Emit(t, GHOST_MSG_TASK_WAKEUP, [&](ghost_msg& m) {
      m.wakeup.waker_cpu = ~0U;
      ghost_ring* r = rings_on_ ? RingRegion(t.enclave, NodeOfCpu(t.last_cpu)) : nullptr;
      __u64 pos = 0;
      if (r != nullptr && (r->info.flags & GHOST_RING_F_WAKEUP) &&
          ghost_ring_push(r, t.tid, m.seqnum, now_ns_, r->info.wakeup_slice_ns, &pos) ==
              GHOST_RING_PUSH_OK) {
        ++wakeup_pushes_;
        m.wakeup.in_ring = 1;
        m.wakeup.ring_node = static_cast<uint32_t>(NodeOfCpu(t.last_cpu));
        m.wakeup.ring_pos = pos;
      }
    });
  }
  void Block(Tid tid) { OffCpu(tid, GHOST_MSG_TASK_BLOCKED, false); }
  void Preempt(Tid tid) { OffCpu(tid, GHOST_MSG_TASK_PREEMPT, true); }
  void Yield(Tid tid) { OffCpu(tid, GHOST_MSG_TASK_YIELD, true); }
  void Exit(Tid tid) {
    OffCpu(tid, GHOST_MSG_TASK_DEAD, false);
    Thread& t = threads_.at(tid);
    t.dead = true;
    WriteStatusWord(t);
  }
  // The thread leaves the class while it runs (TASK_DEPARTED to its queue)
  // and comes back at once, runnable (TASK_NEW to its enclave's default
  // queue): as in the class, its seqnum goes on from the earlier life.
  void Rejoin(Tid tid) {
    OffCpu(tid, GHOST_MSG_TASK_DEPARTED, false);
    Thread& t = threads_.at(tid);
    t.queue = enclaves_[t.enclave].default_queue;
    t.runnable = true;
    Emit(t, GHOST_MSG_TASK_NEW, [&](ghost_msg& m) {
      m.task_new.pid = static_cast<uint32_t>(tid);
      m.task_new.tgid = static_cast<uint32_t>(tid);
      m.task_new.sw_index = t.sw_index;
      m.task_new.weight = 100;
      m.task_new.runnable = 1;
    });
  }
  void SetAffinity(Tid tid, const CpuList& cpus) {
    Thread& t = threads_.at(tid);
    t.affinity = cpus;
    // A property change takes a claimed thread off the CPU's local queue.
    if (t.ring_cpu >= 0) (void)BounceClaimed(t.ring_cpu);
    // The kernel moves it off a CPU it may no longer use.
    if (t.cpu >= 0 && !cpus.IsSet(t.cpu)) Preempt(tid);
    Emit(t, GHOST_MSG_TASK_AFFINITY_CHANGED,
         [&](ghost_msg& m) { cpus.ToMask(m.affinity.cpus); });
  }
  // Changes the affinity without a message or seqnum bump: only a commit can
  // find out (NOT_ALLOWED). Not something a correct kernel side does; it lets
  // tests reach that result code.
  void SetAffinitySilently(Tid tid, const CpuList& cpus) {
    threads_.at(tid).affinity = cpus;
  }
  // The kernel side is moving the thread (e.g. the fallback took it, a
  // property change dequeued it): commits find it RUNNING_ELSEWHERE although
  // it is on no CPU.
  void set_in_transit(Tid tid, bool v) { threads_.at(tid).in_transit = v; }
  // The next `n` lookups of `tid` fail with NotFound / NOT_FOUND.
  void set_unfindable(Tid tid, int n) { threads_.at(tid).unfindable = n; }
  // A higher class takes `cpu` (preempting its ghost thread); `notify` sends
  // CPU_BUSY, otherwise the agent only learns it from CPU_UNAVAILABLE.
  void TakeCpu(int cpu, bool notify = true) {
    cpus_[cpu].taken = true;
    if (claims_.count(cpu)) (void)BounceClaimed(cpu);  // it goes back before it ran
    if (cpus_[cpu].current != GHOST_TID_NONE) Preempt(cpus_[cpu].current);
    if (notify) EmitCpu(cpu, GHOST_MSG_CPU_BUSY);
  }
  void ReturnCpu(int cpu) {
    cpus_[cpu].taken = false;
    EmitCpu(cpu, GHOST_MSG_CPU_AVAILABLE);
  }
  // The higher class leaves `cpu`, and its CPU_AVAILABLE is lost (a queue
  // that overflowed): only CpuBusy tells.
  void ReturnCpuSilently(int cpu) { cpus_[cpu].taken = false; }
  std::optional<bool> CpuBusy(int cpu) const override {
    if (cpu < 0 || cpu >= num_cpus_) return std::nullopt;
    return cpus_[cpu].taken;
  }
  // Puts a record into a queue as the kernel would (bumps the barrier).
  void PushRaw(QueueId q, const ghost_msg& m) {
    queues_[q].msgs.push_back(m);
    __atomic_fetch_add(&queues_[q].word.barrier, 1, __ATOMIC_RELEASE);
  }
  // A writer that died inside the seqlock of `tid`'s status word.
  void WedgeStatusWord(Tid tid) { ++sw_[threads_.at(tid).sw_index].lock; }
  // Deferred mode: committed threads start at once but the slot stays CLAIMED
  // until CompleteDeferred() (a real kernel reports from ops.running).
  void set_defer_results(bool d) { defer_results_ = d; }
  void CompleteDeferred() {
    for (int c : deferred_) Finish(c, GHOST_TXN_COMMITTED);
    deferred_.clear();
  }
  // Held mode: a valid commit claims its thread (as the class's move to the
  // target CPU's local queue does: other commits of it fail
  // RUNNING_ELSEWHERE) but starts nothing, and its slot stays CLAIMED until
  // FinishHeld(cpu, result). The test sends whatever messages it likes first:
  // a result arriving after newer messages about the thread, as a real kernel
  // side settles a slot from the thread's own callbacks, later.
  void set_hold_commits(bool h) { hold_commits_ = h; }
  // Settles `cpu`'s held commit: COMMITTED starts the thread there (if it is
  // still a runnable, live thread on no CPU; else NOT_RUNNABLE/NOT_FOUND),
  // any other result fails it as is. The thread is free for commits again.
  // FailedPrecondition if `cpu` holds no commit.
  absl::Status FinishHeld(int cpu, uint32_t result) {
    if (cpu < 0 || cpu >= num_cpus_) return absl::InvalidArgumentError("no such cpu");
    ghost_txn& s = slots_[cpu];
    Thread* t = Find(s.tid);
    if (s.state != GHOST_TXN_CLAIMED || t == nullptr || t->held_cpu != cpu) {
      return absl::FailedPreconditionError(absl::StrFormat("no held commit on cpu %d", cpu));
    }
    t->held_cpu = -1;
    if (result == GHOST_TXN_COMMITTED) {
      if (t->dead) {
        result = GHOST_TXN_NOT_FOUND;
      } else if (!t->runnable || t->cpu >= 0) {
        result = GHOST_TXN_NOT_RUNNABLE;
      } else {
        result = Apply(cpu, s);
      }
    }
    Finish(cpu, result);
    return absl::OkStatus();
  }
  // The kernel side runs `tid` on `cpu` by itself (its fallback), without a
  // commit and without a message; whatever ran there is preempted.
  void RunByFallback(Tid tid, int cpu) {
    Thread& t = threads_.at(tid);
    const Tid cur = cpus_[cpu].current;
    if (cur != GHOST_TID_NONE && cur != tid) Preempt(cur);
    if (claims_.count(cpu)) (void)BounceClaimed(cpu);
    t.cpu = cpu;
    cpus_[cpu].current = tid;
    WriteStatusWord(t);
    starts_.emplace_back(cpu, tid);
  }
  void set_fail_commit_calls(bool f) { fail_commit_calls_ = f; }
  void set_abi_version(uint32_t v) { abi_version_ = v; }
  // Called after each message ConsumeQueue hands out (inject races).
  void set_on_consume(std::function<void(QueueId, const ghost_msg&)> f) {
    on_consume_ = std::move(f);
  }
  // Called at the start of AssociateQueue (inject a racing message).
  void set_before_associate(std::function<void(Tid)> f) {
    before_associate_ = std::move(f);
  }
  void AdvanceTime(uint64_t ns) { now_ns_ += ns; }

  // Rings: RingRegion returns memory (off: nullptr, as a kernel side without
  // rings). `node_of_cpu[c]` is CPU c's node (CPUs beyond: node 0).
  void set_rings(bool on) { rings_on_ = on; }
  void set_node_of_cpu(std::vector<int> node_of_cpu) { node_of_cpu_ = std::move(node_of_cpu); }
  // Claims stay in the CPU's local queue until RunClaimed / BounceClaimed.
  void set_hold_ring_claims(bool h) { hold_ring_claims_ = h; }

  enum class Consumed {
    kNotIdle,  // the CPU runs a thread or holds a claim: no ops.dispatch
    kEmpty,    // nothing to claim in its node's ring
    kStale,    // claimed and dropped (*reason)
    kClaimed,  // claimed and valid, waiting for RunClaimed (held mode)
    kRan,      // claimed, valid and running
  };
  // CPU `cpu` goes idle: ops.dispatch claims from its node's ring and
  // validates the entry as the commit path does.
  Consumed ConsumeRing(int cpu, uint32_t* reason = nullptr) {
    if (cpu < 0 || cpu >= num_cpus_) return Consumed::kNotIdle;
    if (cpus_[cpu].current != GHOST_TID_NONE || claims_.count(cpu)) return Consumed::kNotIdle;
    const EnclaveId e = EnclaveOf(cpu);
    if (e == GHOST_ENCLAVE_NONE) return Consumed::kNotIdle;
    ghost_ring* r = RingRegion(e, NodeOfCpu(cpu));
    ghost_ring_entry entry;
    if (r == nullptr || ghost_ring_claim(r, static_cast<uint32_t>(cpu), 0, &entry) != 1) {
      return Consumed::kEmpty;
    }
    ++ring_claims_;
    const uint32_t why = ValidateRingEntry(cpu, e, entry);
    if (reason != nullptr) *reason = why;
    if (why != GHOST_RING_STALE_NONE) {
      ghost_ring_fail(r, entry.pos, why);
      return Consumed::kStale;
    }
    threads_.at(entry.tid).ring_cpu = cpu;
    claims_[cpu] = Claim{r, entry.pos, entry.tid};
    if (hold_ring_claims_) return Consumed::kClaimed;
    return RunClaimed(cpu).ok() && CurrentOn(cpu) == entry.tid ? Consumed::kRan
                                                               : Consumed::kStale;
  }
  // ops.running of `cpu`'s claimed thread: RAN (or a bounce if it can no
  // longer run there: died, not runnable, the CPU taken, its mask changed).
  absl::Status RunClaimed(int cpu) {
    auto it = claims_.find(cpu);
    if (it == claims_.end()) return absl::FailedPreconditionError("no ring claim on this cpu");
    Thread& t = threads_.at(it->second.tid);
    if (t.dead || !t.runnable || cpus_[cpu].taken || !t.affinity.IsSet(cpu)) {
      return BounceClaimed(cpu);
    }
    const Claim c = it->second;
    claims_.erase(it);
    t.ring_cpu = -1;
    t.cpu = cpu;
    cpus_[cpu].current = t.tid;
    WriteStatusWord(t);
    starts_.emplace_back(cpu, t.tid);
    ring_runs_.push_back({cpu, t.tid, c.pos});
    if (t.want_on_cpu) {
      Emit(t, GHOST_MSG_TASK_ON_CPU, [&](ghost_msg& m) { m.on_cpu.cpu = static_cast<uint32_t>(cpu); });
    }
    if (ghost_ring_complete(c.ring, c.pos) != 0) return absl::InternalError("complete failed");
    return absl::OkStatus();
  }
  // The claimed thread went back to ops.enqueue before it ran: STALE
  // BOUNCED, parked again, no message.
  absl::Status BounceClaimed(int cpu) {
    auto it = claims_.find(cpu);
    if (it == claims_.end()) return absl::FailedPreconditionError("no ring claim on this cpu");
    const Claim c = it->second;
    claims_.erase(it);
    threads_.at(c.tid).ring_cpu = -1;
    ++ring_bounces_;
    if (ghost_ring_fail(c.ring, c.pos, GHOST_RING_STALE_BOUNCED) != 0) {
      return absl::InternalError("fail failed");
    }
    return absl::OkStatus();
  }

  struct RingRun {
    int cpu;
    Tid tid;
    uint64_t pos;
  };
  const std::vector<RingRun>& ring_runs() const { return ring_runs_; }
  const std::vector<std::vector<uint32_t>>& doorbells() const { return doorbells_; }
  uint64_t ring_claims() const { return ring_claims_; }
  uint64_t ring_bounces() const { return ring_bounces_; }
  uint64_t wakeup_pushes() const { return wakeup_pushes_; }
  bool HasRingClaim(int cpu) const { return claims_.count(cpu) != 0; }
  uint64_t NowNs() const { return now_ns_; }

  // --- inspection ------------------------------------------------------------
  const Thread& thread(Tid tid) const { return threads_.at(tid); }
  Tid CurrentOn(int cpu) const { return cpus_[cpu].current; }
  size_t Pending(QueueId q) const { return queues_[q].msgs.size(); }
  uint64_t commit_calls() const { return commit_calls_; }
  const std::vector<int>& last_commit_cpus() const { return last_commit_cpus_; }
  // Every (cpu, tid) a commit or a ring entry started, in order.
  const std::vector<std::pair<int, Tid>>& starts() const { return starts_; }
  uint64_t associations() const { return associations_; }
  QueueId DefaultQueue(EnclaveId e) const { return enclaves_[e].default_queue; }

 private:
  struct EnclaveState {
    bool in_use = false;
    CpuList cpus;
    QueueId default_queue = GHOST_QUEUE_NONE;
  };
  struct QueueState {
    bool in_use = false;
    EnclaveId enclave = GHOST_ENCLAVE_NONE;
    int wake_cpu = -1;
    std::deque<ghost_msg> msgs;
    ghost_queue_word word = {};
  };
  struct CpuState {
    Tid current = GHOST_TID_NONE;
    bool taken = false;
    uint64_t seq = 0;
  };

  bool ValidQueue(QueueId q) const {
    return q < GHOST_MAX_QUEUES && queues_[q].in_use;
  }
  EnclaveId EnclaveOf(int cpu) const {
    for (EnclaveId e = 0; e < GHOST_MAX_ENCLAVES; ++e) {
      if (enclaves_[e].in_use && enclaves_[e].cpus.IsSet(cpu)) return e;
    }
    return GHOST_ENCLAVE_NONE;
  }
  Thread* Find(Tid tid) {
    auto it = threads_.find(tid);
    return it == threads_.end() ? nullptr : &it->second;
  }

  void WriteStatusWord(const Thread& t) {
    ghost_status_word& w = sw_[t.sw_index];
    __atomic_fetch_add(&w.lock, 1, __ATOMIC_ACQ_REL);  // odd: writer inside
    w.flags = GHOST_SW_INUSE | (t.runnable ? GHOST_SW_RUNNABLE : 0) |
              (t.cpu >= 0 ? GHOST_SW_ON_CPU : 0) | (t.dead ? GHOST_SW_DEAD : 0) |
              (t.want_on_cpu ? GHOST_SW_WANT_ON_CPU : 0) |
              (t.class_held && t.runnable && t.cpu < 0 ? GHOST_SW_CLASS_HELD : 0);
    w.tid = t.tid;
    w.seqnum = t.seq;
    w.cpu = t.cpu >= 0 ? static_cast<uint32_t>(t.cpu) : w.cpu;
    w.enclave = t.enclave;
    w.queue = t.queue;
    w.pid = static_cast<uint32_t>(t.tid);
    w.switch_time_ns = now_ns_;
    __atomic_fetch_add(&w.lock, 1, __ATOMIC_RELEASE);
  }

  template <typename Fill>
  void Emit(Thread& t, uint16_t type, Fill fill) {
    ++t.seq;
    ghost_msg m = {};
    m.type = type;
    m.size = sizeof(ghost_msg);
    m.cpu = t.cpu >= 0 ? static_cast<uint32_t>(t.cpu) : 0;
    m.tid = t.tid;
    m.seqnum = t.seq;
    m.time_ns = now_ns_;
    fill(m);
    // As the status word's GHOST_SW_CLASS_HELD (WriteStatusWord).
    if (t.class_held && t.runnable && t.cpu < 0 && !t.dead) m.flags |= GHOST_MSG_F_CLASS_HELD;
    WriteStatusWord(t);
    if (ValidQueue(t.queue)) PushRaw(t.queue, m);
  }

  void EmitCpu(int cpu, uint16_t type) {
    const EnclaveId e = EnclaveOf(cpu);
    if (e == GHOST_ENCLAVE_NONE) return;
    QueueId q = enclaves_[e].default_queue;
    for (QueueId i = 0; i < GHOST_MAX_QUEUES; ++i) {
      if (queues_[i].in_use && queues_[i].enclave == e &&
          queues_[i].wake_cpu == cpu) {
        q = i;
        break;
      }
    }
    if (!ValidQueue(q)) return;
    ghost_msg m = {};
    m.type = type;
    m.size = sizeof(ghost_msg);
    m.cpu = static_cast<uint32_t>(cpu);
    m.seqnum = ++cpus_[cpu].seq;
    m.time_ns = now_ns_;
    PushRaw(q, m);
  }

  void OffCpu(Tid tid, uint16_t type, bool runnable) {
    Thread& t = threads_.at(tid);
    const int from = t.cpu;
    if (from >= 0 && cpus_[from].current == tid) cpus_[from].current = GHOST_TID_NONE;
    if (from >= 0) t.last_cpu = from;
    t.cpu = -1;
    t.runnable = runnable;
    Emit(t, type, [&](ghost_msg& m) {
      m.cpu = from >= 0 ? static_cast<uint32_t>(from) : 0;
      m.off_cpu.from_cpu = from >= 0 ? static_cast<uint32_t>(from) : ~0U;
      m.off_cpu.was_current = from >= 0;
    });
  }

  uint32_t Validate(int cpu, const ghost_txn& s) {
    // Sync groups are refused first, as the class and the simulator do.
    if (s.cpu != static_cast<uint32_t>(cpu) || (s.flags & ~GHOST_TXN_F_ALL) ||
        (s.flags & GHOST_TXN_F_SYNC_GROUP)) {
      return GHOST_TXN_INVALID;
    }
    const EnclaveId e = EnclaveOf(cpu);
    if (e == GHOST_ENCLAVE_NONE || cpus_[cpu].taken) return GHOST_TXN_CPU_UNAVAILABLE;
    if (s.tid == GHOST_TID_NONE) return GHOST_TXN_COMMITTED;
    Thread* t = Find(s.tid);
    if (t == nullptr || t->dead || t->enclave != e) return GHOST_TXN_NOT_FOUND;
    if (t->unfindable > 0) {
      --t->unfindable;
      return GHOST_TXN_NOT_FOUND;
    }
    if (s.task_seqnum != t->seq) return GHOST_TXN_TARGET_STALE;
    if (!(s.flags & GHOST_TXN_F_NO_BARRIER)) {
      if (!ValidQueue(s.queue)) return GHOST_TXN_INVALID;
      if (s.agent_barrier != queues_[s.queue].word.barrier) {
        return GHOST_TXN_AGENT_STALE;
      }
    }
    if (!t->runnable) return GHOST_TXN_NOT_RUNNABLE;
    if (t->cpu >= 0 && t->cpu != cpu) return GHOST_TXN_RUNNING_ELSEWHERE;
    if (t->in_transit || t->held_cpu >= 0 || t->ring_cpu >= 0 || t->class_held) {
      return GHOST_TXN_RUNNING_ELSEWHERE;
    }
    if (!t->affinity.IsSet(cpu)) return GHOST_TXN_NOT_ALLOWED;
    const Tid cur = cpus_[cpu].current;
    if (cur != GHOST_TID_NONE && cur != s.tid && !(s.flags & GHOST_TXN_F_PREEMPT)) {
      return GHOST_TXN_CPU_UNAVAILABLE;  // busy; IMMED would bounce it
    }
    // A ring consumer's claimed thread waits there: busy too (a preempting
    // commit sends it back, Apply).
    if (claims_.count(cpu) && !(s.flags & GHOST_TXN_F_PREEMPT)) return GHOST_TXN_CPU_UNAVAILABLE;
    return GHOST_TXN_COMMITTED;
  }

  // ghost_hand_over's checks (bpf/progs/pinned.bpf.h), in its order.
  uint32_t ValidateHandOver(int cpu, const HandOverEntry& e) {
    if (cpu < 0 || cpu >= num_cpus_) return GHOST_TXN_CPU_UNAVAILABLE;
    Thread* t = Find(e.tid);
    if (t == nullptr || t->dead || t->unfindable > 0) return GHOST_TXN_NOT_FOUND;
    if (t->enclave != EnclaveOf(cpu)) return GHOST_TXN_CPU_UNAVAILABLE;
    if (t->seq != e.seqnum) return GHOST_TXN_TARGET_STALE;
    if (!t->runnable) return GHOST_TXN_NOT_RUNNABLE;
    if (t->cpu >= 0 || t->in_transit || t->held_cpu >= 0 || t->ring_cpu >= 0 || t->class_held) {
      return GHOST_TXN_RUNNING_ELSEWHERE;
    }
    if (t->affinity.Size() != 1 || !t->affinity.IsSet(cpu)) return GHOST_TXN_NOT_ALLOWED;
    return GHOST_TXN_COMMITTED;
  }

  // The consumer's checks, in the contract's order.
  uint32_t ValidateRingEntry(int cpu, EnclaveId e, const ghost_ring_entry& entry) {
    Thread* t = Find(entry.tid);
    if (t == nullptr || t->dead || t->unfindable > 0) return GHOST_RING_STALE_GONE;
    if (t->enclave != e) return GHOST_RING_STALE_ENCLAVE;
    if (t->seq != entry.seqnum) return GHOST_RING_STALE_SEQNUM;
    if (!t->runnable || t->cpu >= 0 || t->held_cpu >= 0 || t->ring_cpu >= 0 || t->in_transit) {
      return GHOST_RING_STALE_NOT_PARKED;
    }
    if (EnclaveOf(cpu) != e || cpus_[cpu].taken) return GHOST_RING_STALE_CPU;
    if (!t->affinity.IsSet(cpu)) return GHOST_RING_STALE_AFFINITY;
    return GHOST_RING_STALE_NONE;
  }

  // Starts the validated transaction; an earlier slot of the same call may
  // have started the thread already.
  uint32_t Apply(int cpu, const ghost_txn& s) {
    const Tid cur = cpus_[cpu].current;
    if (s.tid == GHOST_TID_NONE) {
      if (cur != GHOST_TID_NONE) Preempt(cur);
      return GHOST_TXN_COMMITTED;
    }
    Thread& t = threads_.at(s.tid);
    if (t.cpu == cpu) return GHOST_TXN_COMMITTED;
    if (t.cpu >= 0) return GHOST_TXN_RUNNING_ELSEWHERE;
    if (claims_.count(cpu)) (void)BounceClaimed(cpu);
    if (cur != GHOST_TID_NONE) Preempt(cur);
    t.cpu = cpu;
    cpus_[cpu].current = t.tid;
    WriteStatusWord(t);
    starts_.emplace_back(cpu, t.tid);
    if (t.want_on_cpu) {
      Emit(t, GHOST_MSG_TASK_ON_CPU, [&](ghost_msg& m) {
        m.on_cpu.cpu = static_cast<uint32_t>(cpu);
        m.on_cpu.commit_seq = slots_[cpu].commit_seq + 1;
      });
    }
    return GHOST_TXN_COMMITTED;
  }

  void Finish(int cpu, uint32_t result) {
    ghost_txn& s = slots_[cpu];
    s.result = result;
    ++s.commit_seq;
    s.commit_time_ns = now_ns_;
    __atomic_store_n(&s.state, GHOST_TXN_DONE, __ATOMIC_RELEASE);
  }

  std::map<int, bool> pinned_push_;
  bool hand_over_on_ = false;  // off: Unimplemented, as a kernel side without it
  std::vector<Tid> handed_;
  int hand_over_calls_ = 0;
  std::atomic<int> agent_heartbeats_{0};
  const int num_cpus_;
  uint32_t abi_version_ = GHOST_ABI_VERSION;
  EnclaveState enclaves_[GHOST_MAX_ENCLAVES];
  QueueState queues_[GHOST_MAX_QUEUES];
  std::map<Tid, Thread> threads_;
  std::vector<ghost_status_word> sw_;
  std::vector<ghost_txn> slots_;
  std::vector<CpuState> cpus_;
  Tid next_tid_ = 100;
  uint32_t next_sw_ = 1;
  uint64_t now_ns_ = 1'000'000'000;
  uint64_t commit_calls_ = 0;
  uint64_t associations_ = 0;
  std::vector<int> last_commit_cpus_;
  std::vector<std::pair<int, Tid>> starts_;
  bool defer_results_ = false;
  bool hold_commits_ = false;
  std::vector<int> deferred_;
  bool fail_commit_calls_ = false;
  std::function<void(QueueId, const ghost_msg&)> on_consume_;
  std::function<void(Tid)> before_associate_;
  struct Claim {
    ghost_ring* ring;
    uint64_t pos;
    Tid tid;
  };
  bool rings_on_ = false;
  bool hold_ring_claims_ = false;
  std::vector<int> node_of_cpu_;
  std::map<int, RingMemory> rings_;  // by enclave * GHOST_RING_MAX_NODES + node
  std::map<int, Claim> claims_;      // by CPU
  std::vector<RingRun> ring_runs_;
  std::vector<std::vector<uint32_t>> doorbells_;
  uint64_t ring_claims_ = 0;
  uint64_t ring_bounces_ = 0;
  uint64_t wakeup_pushes_ = 0;
};

}  // namespace ghost::testing

#endif  // GHOST_SCX_TESTS_UNIT_FAKE_KERNEL_SIDE_H_
