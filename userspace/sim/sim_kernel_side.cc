#include "userspace/sim/sim_kernel_side.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "kernel/ghost_ring_ops.h"

namespace ghost {
namespace sim {
namespace {

bool IsPowerOfTwo(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

constexpr uint64_t kTickNs = 4'000'000;

}  // namespace

SimKernelSide::SimKernelSide(Machine& machine, const CostModel& costs)
    : machine_(machine), costs_(costs), sw_(GHOST_MAX_THREADS), slots_(GHOST_MAX_CPUS),
      latches_(GHOST_MAX_CPUS), cpu_enclave_(GHOST_MAX_CPUS, -1),
      cpu_queue_(GHOST_MAX_CPUS, GHOST_QUEUE_NONE), cpu_seq_(GHOST_MAX_CPUS, 0),
      pinned_(GHOST_MAX_CPUS, false), agent_asleep_(GHOST_MAX_CPUS, false),
      nothing_waits_(GHOST_MAX_CPUS, false), held_(GHOST_MAX_CPUS, -1),
      wake_kicked_(GHOST_MAX_CPUS, false) {
  for (int c = 0; c < GHOST_MAX_CPUS; c++) slots_[c].cpu = c;
  machine_.SetClass(this);
}

// --- Enclaves and queues ------------------------------------------------------

absl::StatusOr<EnclaveId> SimKernelSide::CreateEnclave(const EnclaveOptions& opts) {
  if (opts.cpus.Empty()) return absl::InvalidArgumentError("enclave has no CPUs");
  if (opts.watchdog_ms == 0) return absl::InvalidArgumentError("enclave watchdog must be > 0");
  for (int c : opts.cpus.ToVector()) {
    if (c >= NumCpus()) {
      return absl::InvalidArgumentError(
          absl::StrCat("enclave CPU ", c, " does not exist (", NumCpus(), " CPUs)"));
    }
    if (cpu_enclave_[c] >= 0) {
      return absl::AlreadyExistsError(absl::StrCat("CPU ", c, " is in enclave ",
                                                   cpu_enclave_[c]));
    }
  }
  if (enclaves_.size() >= GHOST_MAX_ENCLAVES) {
    return absl::ResourceExhaustedError("too many enclaves");
  }
  if (opts.id != GHOST_ENCLAVE_NONE) {
    // A named enclave: numbers the simulation has not used yet (its events
    // are keyed by number, so a destroyed one is not reused).
    if (opts.id >= GHOST_MAX_ENCLAVES) {
      return absl::InvalidArgumentError(absl::StrCat("no enclave ", opts.id));
    }
    if (opts.id < enclaves_.size()) {
      return absl::AlreadyExistsError(absl::StrCat("enclave ", opts.id, " was already made"));
    }
    enclaves_.resize(opts.id);  // numbers skipped stay unused
  }
  const EnclaveId id = static_cast<EnclaveId>(enclaves_.size());
  Enclave e;
  e.in_use = true;
  e.cpus = opts.cpus;
  e.watchdog_ns = uint64_t{opts.watchdog_ms} * 1'000'000;
  e.ticks = opts.tick_messages;
  enclaves_.push_back(std::move(e));
  for (int c : opts.cpus.ToVector()) cpu_enclave_[c] = static_cast<int>(id);
  RecomputeCpuQueues();
  // The watchdog looks four times per period, like the class's BPF timer.
  At(machine_.now() + enclaves_[id].watchdog_ns / 4, kWatchdog, id, 0);
  if (enclaves_[id].ticks) At(machine_.now() + kTickNs, kTick, id, 0);
  return id;
}

// Its threads stop waiting for an agent, as in the BPF class: commits still
// pending on its CPUs fail (CPU_UNAVAILABLE), and every runnable thread not on
// a CPU joins the class-wide FIFO at once (Orphan), now and whenever it is
// runnable again. Its default queue is gone; its other queues stay until
// destroyed.
absl::Status SimKernelSide::DestroyEnclave(EnclaveId id) {
  if (!EnclaveLive(id)) return absl::NotFoundError(absl::StrCat("no enclave ", id));
  Enclave& en = enclaves_[id];
  for (int c : en.cpus.ToVector()) {
    cpu_enclave_[c] = -1;
    Latch& l = latches_[c];
    if (l.thread == -1) continue;
    if (l.thread >= 0) kthreads_[l.thread].latched_cpu = -1;
    l.thread = -1;
    Finish(c, GHOST_TXN_CPU_UNAVAILABLE);
  }
  en.in_use = false;
  en.default_queue = GHOST_QUEUE_NONE;
  en.fallback.clear();
  en.fallback_head = 0;
  for (int t = 0; t < static_cast<int>(kthreads_.size()); t++) {
    if (kthreads_[t].enclave != id) continue;
    kthreads_[t].in_fallback = false;  // its place in the enclave's FIFO is gone
    if (machine_.thread(t).state == ThreadState::kRunnable) Orphan(t);
  }
  RecomputeCpuQueues();
  return absl::OkStatus();
}

absl::StatusOr<QueueId> SimKernelSide::CreateQueue(const QueueOptions& opts) {
  if (opts.enclave >= enclaves_.size() || !enclaves_[opts.enclave].in_use) {
    return absl::InvalidArgumentError(absl::StrCat("no enclave ", opts.enclave));
  }
  if (opts.ring_bytes < 4096 || !IsPowerOfTwo(opts.ring_bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue size ", opts.ring_bytes, " is not a power of two >= 4096"));
  }
  if (opts.wake_cpu < -1 || opts.wake_cpu >= NumCpus()) {
    return absl::InvalidArgumentError(absl::StrCat("bad wake CPU ", opts.wake_cpu));
  }
  if (queues_.size() >= GHOST_MAX_QUEUES) {
    return absl::ResourceExhaustedError("too many queues");
  }
  Queue q;
  q.in_use = true;
  q.enclave = opts.enclave;
  q.capacity = opts.ring_bytes / sizeof(ghost_msg);
  q.delivery_ns = costs_.msg_global_ns;
  q.ring.reserve(64);
  q.word.flags = GHOST_QUEUE_INUSE | (opts.wake_agent ? GHOST_QUEUE_WAKE_AGENT : 0);
  q.word.enclave = opts.enclave;
  q.word.wake_cpu = opts.wake_cpu < 0 ? ~0U : static_cast<uint32_t>(opts.wake_cpu);
  queues_.push_back(std::move(q));
  RecomputeCpuQueues();
  return static_cast<QueueId>(queues_.size() - 1);
}

// Allowed with threads reporting to the queue and for a default queue (a
// live-upgrade hand-over destroys an agent's queues under its threads), as in
// the BPF class: the ring and its unread messages are gone (they no longer
// hold up AssociateQueue), its threads report to their enclave's default
// queue (MsgQueue), and an enclave whose default queue it was has none, so
// its threads' messages are dropped and counted until it gets a new one.
absl::Status SimKernelSide::DestroyQueue(QueueId queue) {
  if (!ValidQueue(queue)) return absl::NotFoundError(absl::StrCat("no queue ", queue));
  Queue& q = queues_[queue];
  for (size_t i = q.head; i < q.ring.size(); i++) {
    const int t = ThreadOf(q.ring[i].msg.tid);
    if (t >= 0 && kthreads_[t].unread > 0) kthreads_[t].unread--;
  }
  q.ring.clear();
  q.head = 0;
  q.delivered = 0;
  q.in_use = false;
  q.word.flags = 0;
  for (Enclave& e : enclaves_) {
    if (e.default_queue == queue) e.default_queue = GHOST_QUEUE_NONE;
  }
  RecomputeCpuQueues();
  return absl::OkStatus();
}

absl::Status SimKernelSide::SetDefaultQueue(EnclaveId enclave, QueueId queue) {
  if (enclave >= enclaves_.size() || !enclaves_[enclave].in_use) {
    return absl::NotFoundError(absl::StrCat("no enclave ", enclave));
  }
  if (!ValidQueue(queue) || queues_[queue].enclave != enclave) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", queue, " is not in enclave ",
                                                   enclave));
  }
  enclaves_[enclave].default_queue = queue;
  RecomputeCpuQueues();
  return absl::OkStatus();
}

absl::Status SimKernelSide::AssociateQueue(Tid tid, QueueId queue) {
  const int t = ThreadOf(tid);
  if (t < 0 || machine_.thread(t).state == ThreadState::kDead) {
    return absl::NotFoundError(absl::StrCat("no thread ", tid));
  }
  KThread& kt = kthreads_[t];
  if (!ValidQueue(queue) || queues_[queue].enclave != kt.enclave) {
    return absl::InvalidArgumentError(absl::StrCat("queue ", queue, " is not in thread ", tid,
                                                   "'s enclave"));
  }
  // Messages in destroyed rings are not counted (DestroyQueue): they hold nothing up.
  if (kt.unread > 0 && kt.queue != queue) {
    return absl::FailedPreconditionError(
        absl::StrCat("thread ", tid, " has ", kt.unread, " unread messages"));
  }
  kt.queue = queue;
  UpdateStatusWord(t, 0, 0);
  return absl::OkStatus();
}

absl::Status SimKernelSide::ConfigQueueWakeup(QueueId queue, int wake_cpu, bool wake_agent) {
  if (!ValidQueue(queue)) return absl::NotFoundError(absl::StrCat("no queue ", queue));
  if (wake_cpu < -1 || wake_cpu >= NumCpus()) {
    return absl::InvalidArgumentError(absl::StrCat("bad wake CPU ", wake_cpu));
  }
  ghost_queue_word& w = queues_[queue].word;
  w.wake_cpu = wake_cpu < 0 ? ~0U : static_cast<uint32_t>(wake_cpu);
  w.flags = (w.flags & ~GHOST_QUEUE_WAKE_AGENT) | (wake_agent ? GHOST_QUEUE_WAKE_AGENT : 0);
  RecomputeCpuQueues();
  return absl::OkStatus();
}

void SimKernelSide::RecomputeCpuQueues() {
  for (int c = 0; c < GHOST_MAX_CPUS; c++) {
    cpu_queue_[c] = GHOST_QUEUE_NONE;
    const int e = cpu_enclave_[c];
    if (e < 0) continue;
    cpu_queue_[c] = enclaves_[e].default_queue;
    for (QueueId q = 0; q < queues_.size(); q++) {
      if (queues_[q].in_use && queues_[q].enclave == static_cast<EnclaveId>(e) &&
          queues_[q].word.wake_cpu == static_cast<uint32_t>(c)) {
        cpu_queue_[c] = q;
        break;
      }
    }
  }
}

// --- Messages -------------------------------------------------------------------

void SimKernelSide::Deliver(Queue& q, uint64_t t) const {
  while (q.head + q.delivered < q.ring.size() &&
         q.ring[q.head + q.delivered].visible_ns <= t) {
    q.delivered++;
    q.word.barrier++;
  }
}

uint64_t SimKernelSide::NextVisible(const Queue& q) const { return q.ring[q.head].visible_ns; }

const ghost_queue_word& SimKernelSide::QueueWord(QueueId queue) const {
  static const ghost_queue_word kNone = {};
  if (!ValidQueue(queue)) return kNone;
  Deliver(queues_[queue], Clock());
  return queues_[queue].word;
}

size_t SimKernelSide::ConsumeQueue(QueueId queue,
                                   absl::FunctionRef<void(const ghost_msg&)> fn) {
  if (!ValidQueue(queue)) return 0;
  Queue& q = queues_[queue];
  Deliver(q, Clock());
  const size_t n = q.delivered;
  for (size_t i = 0; i < n; i++) {
    // Copy out first: fn may produce into this queue and grow the ring.
    const ghost_msg m = queues_[queue].ring[queues_[queue].head].msg;
    queues_[queue].head++;
    queues_[queue].delivered--;
    if (m.tid != GHOST_TID_NONE) {
      const int t = ThreadOf(m.tid);
      if (t >= 0 && kthreads_[t].unread > 0) kthreads_[t].unread--;
    }
    if (in_agent_ >= 0) {
      clock_ += costs_.agent_msg_ns;
      agents_[in_agent_].consumed++;
    }
    fn(m);
  }
  Queue& after = queues_[queue];
  if (after.head == after.ring.size()) {
    after.ring.clear();
    after.head = 0;
  } else if (after.head >= 1024 && after.head * 2 >= after.ring.size()) {
    after.ring.erase(after.ring.begin(), after.ring.begin() + static_cast<long>(after.head));
    after.head = 0;
  }
  return n;
}

absl::Status SimKernelSide::WaitQueue(QueueId queue, absl::Duration timeout) {
  if (!ValidQueue(queue)) return absl::NotFoundError(absl::StrCat("no queue ", queue));
  return absl::OkStatus();  // the simulator runs agents only when there is work
}

void SimKernelSide::UpdateStatusWord(int t, uint32_t set, uint32_t clear) {
  ghost_status_word& w = sw_[t];
  const KThread& kt = kthreads_[t];
  const SimThread& th = machine_.thread(t);
  w.lock++;  // odd: a writer is inside (single-threaded here, kept for the ABI)
  w.flags = (w.flags & ~clear) | set;
  w.tid = TidOf(t);
  w.seqnum = kt.seq;
  w.runtime_ns = th.runtime_ns;
  w.cpu = th.cpu < 0 ? ~0U : static_cast<uint32_t>(th.cpu);
  w.enclave = kt.enclave;
  // The association, even after its queue was destroyed (the BPF class
  // publishes the same): the agent sees which queue it last gave the thread.
  w.queue = kt.queue;
  w.pid = static_cast<uint32_t>(t) + 1000;
  if ((set | clear) & GHOST_SW_ON_CPU) w.switch_time_ns = machine_.now();
  w.lock++;
}

// Where a thread's messages go: its queue while that lives (queue numbers are
// never reused here, so a live queue is of the thread's enclave), else its
// enclave's default queue; NONE (dropped and counted) if neither exists.
QueueId SimKernelSide::MsgQueue(int t) const {
  const KThread& kt = kthreads_[t];
  if (ValidQueue(kt.queue) && queues_[kt.queue].enclave == kt.enclave) return kt.queue;
  return kt.enclave < enclaves_.size() ? enclaves_[kt.enclave].default_queue : GHOST_QUEUE_NONE;
}

ghost_msg SimKernelSide::NewTaskMsg(int t, uint16_t type, int cpu) {
  ghost_msg m;
  std::memset(&m, 0, sizeof(m));
  m.type = type;
  m.size = sizeof(ghost_msg);
  m.cpu = cpu < 0 ? ~0U : static_cast<uint32_t>(cpu);
  m.tid = TidOf(t);
  m.seqnum = ++kthreads_[t].seq;
  m.time_ns = Clock();
  return m;
}

void SimKernelSide::Produce(QueueId queue, const ghost_msg& m, int thread) {
  if (!ValidQueue(queue)) {
    stats_.messages_dropped++;
    return;
  }
  Queue& q = queues_[queue];
  if (q.ring.size() - q.head >= q.capacity) {  // a full ring drops, and says so
    q.word.dropped++;
    stats_.messages_dropped++;
    return;
  }
  const uint64_t visible = Clock() + q.delivery_ns;
  q.ring.push_back({m, visible});
  if (thread >= 0) kthreads_[thread].unread++;
  stats_.messages++;
  // As the class's queue_produce: the thread is in a ring already, nothing
  // for a sleeping agent to do.
  const bool deferrable = m.type == GHOST_MSG_TASK_WAKEUP && m.wakeup.deferrable;
  NotifyAgent(queue, visible, !deferrable);
}

void SimKernelSide::ProduceCpu(int cpu, uint16_t type, uint32_t reason) {
  const QueueId q = cpu_queue_[cpu];
  if (q == GHOST_QUEUE_NONE) return;
  ghost_msg m;
  std::memset(&m, 0, sizeof(m));
  m.type = type;
  m.size = sizeof(ghost_msg);
  m.cpu = static_cast<uint32_t>(cpu);
  m.tid = GHOST_TID_NONE;
  m.seqnum = ++cpu_seq_[cpu];
  m.time_ns = Clock();
  m.cpu_event.reason = reason;
  Produce(q, m, -1);
}

// --- Threads (SchedClass) ---------------------------------------------------------

int SimKernelSide::SpawnThread(EnclaveId enclave, uint8_t kind, uint32_t owner, bool runnable,
                               uint64_t burst_ns) {
  if (machine_.num_threads() >= GHOST_MAX_THREADS || enclave >= enclaves_.size()) return -1;
  spawn_enclave_ = enclave;
  return machine_.CreateThread(kind, owner, runnable, burst_ns);
}

int SimKernelSide::ThreadOf(Tid tid) const {
  if (tid == GHOST_TID_NONE || tid > kthreads_.size()) return -1;
  return static_cast<int>(tid - 1);
}

void SimKernelSide::Enqueued(int t) {
  kthreads_[t].queued_ns = machine_.now();
  if (!EnclaveLive(kthreads_[t].enclave)) Orphan(t);
}

// A runnable thread of a destroyed enclave: to the class-wide FIFO, served
// from an event at the current time (not from inside the Machine's callback).
void SimKernelSide::Orphan(int t) {
  KThread& kt = kthreads_[t];
  if (kt.in_fallback || kt.latched_cpu >= 0) return;
  kt.in_fallback = true;
  orphans_.push_back(t);
  if (!serve_pending_) {
    serve_pending_ = true;
    At(machine_.now(), kServeOrphans, 0, 0);
  }
}

void SimKernelSide::ServeOrphans() {
  serve_pending_ = false;
  for (int c = 0; c < NumCpus() && orphans_head_ < orphans_.size(); c++) {
    if (machine_.IsFree(c) && latches_[c].thread == -1) RunFallback(c);
  }
}

void SimKernelSide::ThreadNew(int t) {
  kthreads_.emplace_back();
  KThread& kt = kthreads_[t];
  kt.enclave = spawn_enclave_;
  kt.queue = enclaves_[spawn_enclave_].default_queue;
  kt.affinity = CpuList::FirstN(NumCpus());
  const bool runnable = machine_.thread(t).state == ThreadState::kRunnable;
  ghost_msg m = NewTaskMsg(t, GHOST_MSG_TASK_NEW, -1);
  m.task_new.pid = static_cast<uint32_t>(t) + 1000;
  m.task_new.tgid = 1000;
  m.task_new.sw_index = static_cast<uint32_t>(t);
  m.task_new.weight = 100;
  m.task_new.runnable = runnable ? 1 : 0;
  sw_[t] = {};
  UpdateStatusWord(t, GHOST_SW_INUSE | (runnable ? GHOST_SW_RUNNABLE : 0), 0);
  if (runnable) Enqueued(t);
  Produce(MsgQueue(t), m, t);
}

void SimKernelSide::ThreadRunnable(int t, int waker_cpu) {
  ghost_msg m = NewTaskMsg(t, GHOST_MSG_TASK_WAKEUP, waker_cpu);
  m.wakeup.waker_cpu = waker_cpu < 0 ? ~0U : static_cast<uint32_t>(waker_cpu);
  m.wakeup.wake_time_ns = machine_.now();
  UpdateStatusWord(t, GHOST_SW_RUNNABLE, 0);
  Enqueued(t);
  PushAtWakeup(t, m);
  Produce(MsgQueue(t), m, t);
}

// The class's BPF producer (ops.enqueue, GHOST_RING_F_WAKEUP), after its
// select_cpu: the woken thread parks on its last CPU if idle, else on an idle
// CPU of the same node, else of another node (claimed, so that the next
// wake-up finds another), else on its last CPU; it goes into the ring of
// that CPU's node, the message names the entry, and the idle CPU is woken
// to consume it.
void SimKernelSide::PushAtWakeup(int t, ghost_msg& m) {
  const KThread& kt = kthreads_[t];
  if (!rings_on_ || kt.in_fallback || kt.enclave >= GHOST_MAX_ENCLAVES) return;
  // As the class: narrow threads stay with the agent (a consumer outside
  // their mask would drop the entry).
  if (kt.affinity.Size() < NumCpus()) return;
  const int last = machine_.thread(t).cpu >= 0 ? machine_.thread(t).cpu : 0;
  auto ring_of = [&](int cpu) {
    return rings_[kt.enclave * GHOST_RING_MAX_NODES + NodeOfCpu(cpu)].get();
  };
  ghost_ring* r = ring_of(last);
  if (r == nullptr || !(GHOST_RING_LOAD(&r->info.flags) & GHOST_RING_F_WAKEUP)) return;
  auto idle = [&](int c) {
    return c >= 0 && c < NumCpus() && cpu_enclave_[c] == static_cast<int>(kt.enclave) &&
           !HeldByGlobalAgent(c) && machine_.IsFree(c) && latches_[c].thread == -1 &&
           kt.affinity.IsSet(c) && !wake_kicked_[c];
  };
  int park = idle(last) ? last : -1;
  for (int pass = 0; pass < 2 && park < 0; pass++) {
    for (int c : enclaves_[kt.enclave].cpus.ToVector()) {
      if (idle(c) && (pass == 1 || NodeOfCpu(c) == NodeOfCpu(last))) {
        park = c;
        break;
      }
    }
  }
  const int node = NodeOfCpu(park >= 0 ? park : last);
  r = ring_of(park >= 0 ? park : last);
  if (r == nullptr || !(GHOST_RING_LOAD(&r->info.flags) & GHOST_RING_F_WAKEUP)) return;
  __u64 pos = 0;
  if (ghost_ring_push(r, TidOf(t), m.seqnum, Clock(), GHOST_RING_LOAD(&r->info.wakeup_slice_ns),
                      &pos) != GHOST_RING_PUSH_OK) {
    stats_.wakeup_refused++;
    return;
  }
  stats_.wakeup_pushes++;
  m.wakeup.in_ring = 1;
  m.wakeup.deferrable = 1;
  m.wakeup.ring_node = static_cast<uint32_t>(node);
  m.wakeup.ring_pos = pos;
  // Not the agent's pushes: the doorbell's cost accounting must not charge
  // the agent for them.
  ring_heads_seen_[kt.enclave * GHOST_RING_MAX_NODES + node]++;
  if (park < 0) return;
  wake_kicked_[park] = true;
  At(Clock() + costs_.doorbell_target_ns, kRingKick, static_cast<uint32_t>(park), 0);
}

void SimKernelSide::ThreadStopped(int t, int cpu, StopReason why) {
  KThread& kt = kthreads_[t];
  if (why == StopReason::kPreempted && cpu == quiet_stop_cpu_ &&
      cpu_enclave_[cpu] == static_cast<int>(kt.enclave)) {
    // Its CPU's per-CPU agent woke: the class keeps it first on the CPU, with
    // the rest of its slice, and it resumes when the agent sleeps; no message
    // (ops.cpu_release's quiet release; CpuFree, ResumeHeld).
    const uint64_t end = machine_.thread(t).slice_end_ns;
    kt.held_cpu = cpu;
    held_[cpu] = t;
    kt.held_slice_ns = end == 0 ? 0 : std::max<uint64_t>(end - std::min(end, machine_.now()), 1);
    UpdateStatusWord(t, 0, GHOST_SW_ON_CPU);
    return;
  }
  SendStopped(t, cpu, why);
}

void SimKernelSide::SendStopped(int t, int cpu, StopReason why) {
  static constexpr uint16_t kType[] = {GHOST_MSG_TASK_BLOCKED, GHOST_MSG_TASK_PREEMPT,
                                       GHOST_MSG_TASK_YIELD, GHOST_MSG_TASK_DEAD};
  ghost_msg m = NewTaskMsg(t, kType[static_cast<int>(why)], cpu);
  m.off_cpu.runtime_ns = machine_.thread(t).runtime_ns;
  m.off_cpu.from_cpu = static_cast<uint32_t>(cpu);
  m.off_cpu.was_current = 1;
  switch (why) {
    case StopReason::kBlocked:
      UpdateStatusWord(t, 0, GHOST_SW_RUNNABLE | GHOST_SW_ON_CPU);
      break;
    case StopReason::kDead:
      UpdateStatusWord(t, GHOST_SW_DEAD, GHOST_SW_RUNNABLE | GHOST_SW_ON_CPU);
      break;
    default:
      UpdateStatusWord(t, 0, GHOST_SW_ON_CPU);
      Enqueued(t);
      break;
  }
  Produce(MsgQueue(t), m, t);
}

uint64_t SimKernelSide::RenewSlice(int t, int cpu) {
  const KThread& kt = kthreads_[t];
  if (kt.renew_slice_ns == 0 || !nothing_waits_[cpu] ||
      cpu_enclave_[cpu] != static_cast<int>(kt.enclave) ||
      !EnclaveLive(kt.enclave)) {
    return 0;
  }
  stats_.slice_renewals++;
  return kt.renew_slice_ns;
}

void SimKernelSide::SetPinnedPush(int cpu, bool on) {
  if (cpu >= 0 && cpu < GHOST_MAX_CPUS) nothing_waits_[cpu] = on;
}

bool SimKernelSide::ResumeHeld(int cpu, bool run) {
  const int t = held_[cpu];
  if (t < 0) return false;
  held_[cpu] = -1;
  KThread& kt = kthreads_[t];
  kt.held_cpu = -1;
  if (machine_.thread(t).state != ThreadState::kRunnable) return false;
  if (run) {
    machine_.RunThread(cpu, t, kt.held_slice_ns);
  } else {
    SendStopped(t, cpu, StopReason::kPreempted);
  }
  return true;
}

void SimKernelSide::ThreadStarted(int t, int cpu) {
  KThread& kt = kthreads_[t];
  kt.in_fallback = false;
  if (kt.held_cpu >= 0) {  // started some other way meanwhile
    held_[kt.held_cpu] = -1;
    kt.held_cpu = -1;
  }
  if (pinned_[cpu]) stats_.agent_cpu_runs++;  // only while its agent sleeps
  UpdateStatusWord(t, GHOST_SW_ON_CPU, 0);
  if (kt.want_on_cpu) {
    ghost_msg m = NewTaskMsg(t, GHOST_MSG_TASK_ON_CPU, cpu);
    m.on_cpu.cpu = static_cast<uint32_t>(cpu);
    m.on_cpu.commit_seq = kt.last_commit_seq;
    UpdateStatusWord(t, 0, 0);
    Produce(MsgQueue(t), m, t);
  }
  kt.last_commit_seq = 0;
  if (poll_after_start_ns_ > 0) {
    for (size_t a = 0; a < agents_.size(); a++) {
      if (agents_[a].opts.global && queues_[agents_[a].opts.queue].enclave == kt.enclave) {
        At(machine_.now() + poll_after_start_ns_ + 1, kAgentPoll, static_cast<uint32_t>(a), 0);
      }
    }
  }
}

absl::Status SimKernelSide::SetWantOnCpu(Tid tid, bool want) {
  const int t = ThreadOf(tid);
  if (t < 0) return absl::NotFoundError(absl::StrCat("no thread ", tid));
  kthreads_[t].want_on_cpu = want;
  UpdateStatusWord(t, want ? GHOST_SW_WANT_ON_CPU : 0, want ? 0 : GHOST_SW_WANT_ON_CPU);
  return absl::OkStatus();
}

absl::Status SimKernelSide::SetWeight(Tid tid, uint32_t weight) {
  const int t = ThreadOf(tid);
  if (t < 0) return absl::NotFoundError(absl::StrCat("no thread ", tid));
  if (weight < 1 || weight > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("weight ", weight, " is not in 1..10000"));
  }
  ghost_msg m = NewTaskMsg(t, GHOST_MSG_TASK_PRIORITY_CHANGED, machine_.thread(t).cpu);
  m.priority.weight = weight;
  UpdateStatusWord(t, 0, 0);
  Produce(MsgQueue(t), m, t);
  return absl::OkStatus();
}

absl::Status SimKernelSide::SetAffinity(Tid tid, const CpuList& cpus) {
  const int t = ThreadOf(tid);
  if (t < 0) return absl::NotFoundError(absl::StrCat("no thread ", tid));
  if ((cpus & CpuList::FirstN(NumCpus())).Empty()) {
    return absl::InvalidArgumentError("affinity allows no CPU");
  }
  kthreads_[t].affinity = cpus;
  ghost_msg m = NewTaskMsg(t, GHOST_MSG_TASK_AFFINITY_CHANGED, machine_.thread(t).cpu);
  cpus.ToMask(m.affinity.cpus);
  UpdateStatusWord(t, 0, 0);
  Produce(MsgQueue(t), m, t);
  const SimThread& th = machine_.thread(t);
  if (th.state == ThreadState::kRunning && !cpus.IsSet(th.cpu)) {
    const int cpu = th.cpu;
    machine_.Preempt(cpu);
    if (machine_.IsFree(cpu)) CpuFree(cpu);
  }
  return absl::OkStatus();
}

// --- CPUs ----------------------------------------------------------------------------

void SimKernelSide::CpuFree(int cpu) {
  // A thread its per-CPU agent's wake-up set aside runs first (it was first
  // in the local DSQ); a commit made meanwhile starts after it.
  if (ResumeHeld(cpu, /*run=*/true)) return;
  if (latches_[cpu].thread != -1 && latches_[cpu].ready) TryStart(cpu);
  // ops.dispatch's order: the fallback FIFO, then the node's ring.
  if (machine_.IsFree(cpu) && latches_[cpu].thread == -1 && !RunFallback(cpu)) ConsumeRing(cpu);
}

// --- Fast-path rings -------------------------------------------------------------------

void SimKernelSide::EnableRings(std::vector<int> node_of_cpu) {
  rings_on_ = true;
  node_of_cpu_ = std::move(node_of_cpu);
  num_nodes_ = 1;
  for (int& n : node_of_cpu_) {
    n = std::clamp(n, 0, GHOST_RING_MAX_NODES - 1);
    num_nodes_ = std::max(num_nodes_, n + 1);
  }
  rings_.resize(GHOST_MAX_ENCLAVES * GHOST_RING_MAX_NODES);
  ring_heads_seen_.assign(rings_.size(), 0);
}

ghost_ring* SimKernelSide::RingRegion(EnclaveId enclave, int node) {
  if (!rings_on_ || enclave >= GHOST_MAX_ENCLAVES || node < 0 || node >= GHOST_RING_MAX_NODES) {
    return nullptr;
  }
  RingMemory& m = rings_[enclave * GHOST_RING_MAX_NODES + node];
  if (!m) m = AllocateRingMemory();
  return m.get();
}

absl::Status SimKernelSide::RingDoorbell(EnclaveId enclave, absl::Span<const uint32_t> kicks) {
  if (!rings_on_) return KernelSide::RingDoorbell(enclave, kicks);
  if (!EnclaveLive(enclave)) return absl::NotFoundError("no such enclave");
  stats_.doorbells++;
  // The agent pays for its pushes since the last doorbell, then the call.
  if (in_agent_ >= 0) {
    for (int node = 0; node < GHOST_RING_MAX_NODES; node++) {
      const size_t i = enclave * GHOST_RING_MAX_NODES + node;
      if (!rings_[i]) continue;
      const uint64_t head = GHOST_RING_LOAD(&rings_[i]->head.pos);
      clock_ += (head - ring_heads_seen_[i]) * costs_.ring_push_agent_ns;
      ring_heads_seen_[i] = head;
    }
    clock_ += costs_.doorbell_agent_ns;
  }
  const uint64_t at = Clock() + costs_.doorbell_target_ns;
  // As the class's doorbell: each node's idle CPUs first; kicks left for a
  // node whose ring lets others steal go to other nodes' idle CPUs.
  std::array<uint32_t, GHOST_RING_MAX_NODES> left = {};
  for (size_t node = 0; node < kicks.size() && node < GHOST_RING_MAX_NODES; node++) {
    left[node] = kicks[node];
  }
  std::set<int> kicked;
  auto kick = [&](int c) {
    kicked.insert(c);
    stats_.doorbell_kicks++;
    At(at, kRingKick, static_cast<uint32_t>(c), 0);
  };
  auto idle = [&](int c) {
    return !kicked.count(c) && !HeldByGlobalAgent(c) && machine_.IsFree(c) &&
           latches_[c].thread == -1;
  };
  const std::vector<int> cpus = enclaves_[enclave].cpus.ToVector();
  for (int node = 0; node < GHOST_RING_MAX_NODES; node++) {
    for (int c : cpus) {
      if (left[node] == 0) break;
      if (NodeOfCpu(c) != node || !idle(c)) continue;
      left[node]--;
      kick(c);
    }
  }
  for (int node = 0; node < GHOST_RING_MAX_NODES; node++) {
    const ghost_ring* r = rings_[enclave * GHOST_RING_MAX_NODES + node].get();
    if (left[node] == 0 || r == nullptr ||
        !(__atomic_load_n(&r->info.flags, __ATOMIC_RELAXED) & GHOST_RING_F_STEAL)) {
      continue;
    }
    for (int c : cpus) {
      if (left[node] == 0) break;
      if (NodeOfCpu(c) == node || !idle(c)) continue;
      left[node]--;
      stats_.doorbell_steal_kicks++;
      kick(c);
    }
  }
  return absl::OkStatus();
}

// The class's checks, in the contract's order (docs/FAST_PATH.md).
uint32_t SimKernelSide::ValidateRingEntry(int cpu, int t, uint64_t seqnum) const {
  if (t < 0 || t >= static_cast<int>(kthreads_.size()) ||
      machine_.thread(t).state == ThreadState::kDead) {
    return GHOST_RING_STALE_GONE;
  }
  const KThread& kt = kthreads_[t];
  if (cpu_enclave_[cpu] < 0 || kt.enclave != static_cast<EnclaveId>(cpu_enclave_[cpu])) {
    return GHOST_RING_STALE_ENCLAVE;
  }
  if (kt.seq != seqnum) return GHOST_RING_STALE_SEQNUM;
  if (machine_.thread(t).state != ThreadState::kRunnable || kt.latched_cpu >= 0 ||
      kt.in_fallback) {
    return GHOST_RING_STALE_NOT_PARKED;
  }
  if (HeldByGlobalAgent(cpu) || machine_.cpu(cpu).cfs) return GHOST_RING_STALE_CPU;
  if (!kt.affinity.IsSet(cpu)) return GHOST_RING_STALE_AFFINITY;
  return GHOST_RING_STALE_NONE;
}

bool SimKernelSide::ConsumeRing(int cpu) {
  if (!rings_on_ || HeldByGlobalAgent(cpu) || cpu_enclave_[cpu] < 0) return false;
  const int base = cpu_enclave_[cpu] * GHOST_RING_MAX_NODES, home = NodeOfCpu(cpu);
  uint64_t cost = 0;
  if (ConsumeFrom(rings_[base + home].get(), cpu, /*steal=*/false, cost)) return true;
  // Then, as the class does, the other nodes' rings that allow stealing,
  // round robin from the next node.
  for (int k = 1; k < GHOST_RING_MAX_NODES; k++) {
    ghost_ring* r = rings_[base + (home + k) % GHOST_RING_MAX_NODES].get();
    if (r != nullptr && (GHOST_RING_LOAD(&r->info.flags) & GHOST_RING_F_STEAL) &&
        ConsumeFrom(r, cpu, /*steal=*/true, cost)) {
      return true;
    }
  }
  return false;
}

bool SimKernelSide::ConsumeFrom(ghost_ring* r, int cpu, bool steal, uint64_t& cost) {
  if (r == nullptr) return false;
  for (int claims = 0; claims < GHOST_RING_SCAN; claims++) {
    ghost_ring_entry e;
    if (ghost_ring_claim(r, static_cast<uint32_t>(cpu), Clock(), &e) != 1) return false;
    stats_.ring_claims++;
    if (steal) stats_.ring_steals++;
    cost += costs_.ring_pop_ns;
    const int t = ThreadOf(e.tid);
    const uint32_t why = ValidateRingEntry(cpu, t, e.seqnum);
    if (why != GHOST_RING_STALE_NONE) {
      stats_.ring_stale++;
      ghost_ring_fail(r, e.pos, why);
      continue;
    }
    // It runs (the simulated CPU takes it at once: no bounce in between).
    stats_.ring_runs++;
    ghost_ring_complete(r, e.pos);
    kthreads_[t].last_commit_seq = 0;
    kthreads_[t].renew_slice_ns = 0;
    machine_.RunThread(cpu, t, e.slice_ns, cost + costs_.context_switch_ns);
    return true;
  }
  return false;
}

void SimKernelSide::CpuBusy(int cpu) {
  // CFS took the CPU: a thread set aside there goes back to its agent, as
  // ops.cpu_release's re-enqueue sends it (PREEMPT).
  (void)ResumeHeld(cpu, /*run=*/false);
  // A higher class took the CPU: what was committed there cannot start.
  if (latches_[cpu].thread != -1) {
    const int agent = latches_[cpu].agent;
    const int t = latches_[cpu].thread;
    latches_[cpu].thread = -1;
    if (t >= 0) kthreads_[t].latched_cpu = -1;
    Finish(cpu, GHOST_TXN_CPU_UNAVAILABLE);
    if (agent >= 0 && agents_[agent].opts.global) RequestRun(agent, machine_.now());
  }
  ProduceCpu(cpu, GHOST_MSG_CPU_BUSY, 3 /* SCX_CPU_PREEMPT_UNKNOWN-ish: CFS */);
}

void SimKernelSide::CpuAvailable(int cpu) { ProduceCpu(cpu, GHOST_MSG_CPU_AVAILABLE, 0); }

// A free CPU runs its enclave's FIFO first, then the class-wide one.
bool SimKernelSide::RunFallback(int cpu) {
  if (HeldByGlobalAgent(cpu)) return false;
  const int e = cpu_enclave_[cpu];
  if (e >= 0 && RunFifo(cpu, enclaves_[e].fallback, enclaves_[e].fallback_head)) return true;
  return RunFifo(cpu, orphans_, orphans_head_);
}

bool SimKernelSide::RunFifo(int cpu, std::vector<int>& fifo, size_t& head) {
  // One pass over the FIFO at most: threads whose affinity forbids this CPU
  // keep their turn.
  size_t budget = fifo.size() - head;
  while (budget-- > 0 && head < fifo.size()) {
    const int t = fifo[head++];
    KThread& kt = kthreads_[t];
    if (!kt.in_fallback || machine_.thread(t).state != ThreadState::kRunnable ||
        kt.latched_cpu >= 0) {
      kt.in_fallback = false;
      continue;
    }
    if (!kt.affinity.IsSet(cpu)) {
      fifo.push_back(t);
      continue;
    }
    kt.in_fallback = false;
    kt.renew_slice_ns = 0;
    stats_.fallback_runs++;
    machine_.RunThread(cpu, t, 0, costs_.context_switch_ns);
    break;
  }
  if (head == fifo.size()) {
    fifo.clear();
    head = 0;
  }
  return machine_.cpu(cpu).thread >= 0;
}

void SimKernelSide::Watchdog(EnclaveId id) {
  Enclave& en = enclaves_[id];
  if (!en.in_use) return;
  const uint64_t now = machine_.now();
  bool any = false;
  for (int t = 0; t < static_cast<int>(kthreads_.size()); t++) {
    KThread& kt = kthreads_[t];
    if (kt.enclave != id || kt.in_fallback || kt.latched_cpu >= 0 || kt.held_cpu >= 0 ||
        machine_.thread(t).state != ThreadState::kRunnable ||
        now - kt.queued_ns < en.watchdog_ns) {
      continue;
    }
    kt.in_fallback = true;
    en.fallback.push_back(t);
    any = true;
  }
  if (any) {
    for (int c : en.cpus.ToVector()) {
      if (machine_.IsFree(c) && latches_[c].thread == -1) RunFallback(c);
    }
  }
  At(now + en.watchdog_ns / 4, kWatchdog, id, 0);
}

// The scheduler tick (HZ=250 on the test kernel) reaches the class only on
// CPUs running one of its threads, as ops.tick does.
void SimKernelSide::Tick(EnclaveId id) {
  Enclave& en = enclaves_[id];
  if (!en.in_use) return;
  for (int c : en.cpus.ToVector()) {
    if (machine_.cpu(c).thread >= 0) ProduceCpu(c, GHOST_MSG_CPU_TICK, 0);
  }
  At(machine_.now() + kTickNs, kTick, id, 0);
}

// --- Transactions ------------------------------------------------------------------

ghost_txn* SimKernelSide::TxnSlot(int cpu) {
  if (cpu < 0 || cpu >= NumCpus()) return nullptr;
  return &slots_[cpu];
}

uint32_t SimKernelSide::Validate(int cpu, const ghost_txn& txn, int* thread) {
  *thread = -1;
  // Sync-group commit is not implemented (nor in the class, which refuses it
  // here too: its first check, before anything else is looked at).
  if (txn.cpu != static_cast<uint32_t>(cpu) || (txn.flags & ~GHOST_TXN_F_ALL) != 0 ||
      (txn.flags & GHOST_TXN_F_SYNC_GROUP) != 0) {
    return GHOST_TXN_INVALID;
  }
  const int e = cpu_enclave_[cpu];
  if (txn.tid == GHOST_TID_NONE) {
    if (e < 0 || pinned_[cpu]) return GHOST_TXN_CPU_UNAVAILABLE;
    *thread = kIdleLatch;
    return GHOST_TXN_PENDING;
  }
  const int t = ThreadOf(txn.tid);
  if (t < 0 || machine_.thread(t).state == ThreadState::kDead) return GHOST_TXN_NOT_FOUND;
  const KThread& kt = kthreads_[t];
  if (e < 0 || static_cast<EnclaveId>(e) != kt.enclave || pinned_[cpu]) {
    return GHOST_TXN_CPU_UNAVAILABLE;
  }
  if (txn.task_seqnum != kt.seq) return GHOST_TXN_TARGET_STALE;
  if ((txn.flags & GHOST_TXN_F_NO_BARRIER) == 0) {
    if (!ValidQueue(txn.queue)) return GHOST_TXN_INVALID;
    Queue& q = queues_[txn.queue];
    Deliver(q, Clock());
    if (txn.agent_barrier != q.word.barrier) return GHOST_TXN_AGENT_STALE;
  }
  const SimThread& th = machine_.thread(t);
  if (th.state == ThreadState::kBlocked) return GHOST_TXN_NOT_RUNNABLE;
  if (th.state == ThreadState::kRunning) {
    return th.cpu == cpu ? GHOST_TXN_COMMITTED : GHOST_TXN_RUNNING_ELSEWHERE;
  }
  if (kt.latched_cpu >= 0 && kt.latched_cpu != cpu) return GHOST_TXN_RUNNING_ELSEWHERE;
  if (!kt.affinity.IsSet(cpu)) return GHOST_TXN_NOT_ALLOWED;
  const SimCpu& c = machine_.cpu(cpu);
  if (c.cfs) return GHOST_TXN_CPU_UNAVAILABLE;
  if (c.thread >= 0 && (txn.flags & GHOST_TXN_F_PREEMPT) == 0) return GHOST_TXN_CPU_UNAVAILABLE;
  *thread = t;
  return GHOST_TXN_PENDING;
}

void SimKernelSide::Finish(int cpu, uint32_t result) {
  ghost_txn& s = slots_[cpu];
  s.result = result;
  s.commit_seq = ++commit_seq_;
  s.commit_time_ns = Clock();
  stats_.txn_results[result]++;
  __atomic_store_n(&s.state, static_cast<uint32_t>(GHOST_TXN_DONE), __ATOMIC_RELEASE);
}

absl::Status SimKernelSide::Commit(const CpuList& cpus) {
  stats_.commit_calls++;
  struct Claimed {
    int cpu;
    uint32_t result;
    int thread;
  };
  Claimed claimed[GHOST_MAX_CPUS];
  int n = 0;
  // The set CPUs: test each CPU on small machines, walk the mask on big ones
  // (CpuList::ToMask visits all 256 bits; so would 256 IsSet calls).
  int targets[GHOST_MAX_CPUS];
  int ntargets = 0;
  if (NumCpus() <= 64) {
    for (int cpu = 0; cpu < NumCpus(); cpu++) {
      if (cpus.IsSet(cpu)) targets[ntargets++] = cpu;
    }
  } else {
    __u64 words[GHOST_CPU_MASK_WORDS];
    cpus.ToMask(words);
    for (int wi = 0; wi < GHOST_CPU_MASK_WORDS; wi++) {
      for (__u64 w = words[wi]; w != 0; w &= w - 1) {
        targets[ntargets++] = wi * 64 + __builtin_ctzll(w);
      }
    }
  }
  for (int k = 0; k < ntargets; k++) {
    const int cpu = targets[k];
    if (cpu >= NumCpus() || slots_[cpu].state != GHOST_TXN_READY) continue;
    slots_[cpu].state = GHOST_TXN_CLAIMED;
    stats_.txns++;
    int t;
    const uint32_t r = Validate(cpu, slots_[cpu], &t);
    claimed[n++] = {cpu, r, t};
  }
  // The agent pays for the call: local commits each, remote ones batched.
  const int agent = in_agent_;
  const bool per_cpu_agent = agent >= 0 && !agents_[agent].opts.global;
  int local = 0, remote = 0;
  for (int i = 0; i < n; i++) {
    if (per_cpu_agent && claimed[i].cpu == agents_[agent].opts.cpu) {
      local++;
    } else {
      remote++;
    }
  }
  if (agent >= 0) {
    clock_ += local * costs_.commit_local_ns;
    if (remote > 0) {
      clock_ += costs_.commit_remote_agent_ns +
                (remote - 1) * costs_.commit_group_extra_agent_ns;
    }
  }
  const uint64_t start = Clock() + costs_.commit_remote_target_ns;
  for (int i = 0; i < n; i++) {
    const int cpu = claimed[i].cpu;
    if (claimed[i].result != GHOST_TXN_PENDING) {
      Finish(cpu, claimed[i].result);
      continue;
    }
    Latch& l = latches_[cpu];
    if (l.thread >= 0) kthreads_[l.thread].latched_cpu = -1;
    l.thread = claimed[i].thread;
    l.gen++;
    l.agent = agent;
    if (l.thread >= 0) kthreads_[l.thread].latched_cpu = cpu;
    if (per_cpu_agent && cpu == agents_[agent].opts.cpu) {
      l.ready = true;  // starts when the agent yields its CPU
    } else {
      l.ready = false;
      At(start, kTxnStart, static_cast<uint32_t>(cpu), l.gen);
    }
  }
  return absl::OkStatus();
}

void SimKernelSide::TryStart(int cpu) {
  Latch& l = latches_[cpu];
  if (l.thread == -1 || !l.ready) return;
  const SimCpu& c = machine_.cpu(cpu);
  if (c.agent) return;  // an agent holds the CPU; CpuFree brings us back
  const int t = l.thread;
  const int agent = l.agent;
  const ghost_txn& s = slots_[cpu];
  uint32_t result = GHOST_TXN_COMMITTED;
  if (c.cfs) {
    result = GHOST_TXN_CPU_UNAVAILABLE;
  } else if (t >= 0) {
    const SimThread& th = machine_.thread(t);
    if (kthreads_[t].seq != s.task_seqnum) {
      result = GHOST_TXN_TARGET_STALE;
    } else if (th.state == ThreadState::kRunning) {
      result = th.cpu == cpu ? GHOST_TXN_COMMITTED : GHOST_TXN_RUNNING_ELSEWHERE;
    } else if (th.state != ThreadState::kRunnable) {
      result = GHOST_TXN_NOT_RUNNABLE;
    } else if (c.thread >= 0 && (s.flags & GHOST_TXN_F_PREEMPT) == 0) {
      result = GHOST_TXN_CPU_UNAVAILABLE;
    }
  }
  l.thread = -1;
  if (t >= 0) kthreads_[t].latched_cpu = -1;
  if (result == GHOST_TXN_COMMITTED) {
    if (c.thread >= 0 && c.thread != t) machine_.Preempt(cpu);
    if (t >= 0 && machine_.thread(t).state == ThreadState::kRunnable) {
      kthreads_[t].last_commit_seq = commit_seq_ + 1;
      kthreads_[t].renew_slice_ns = s.slice_ns;
      machine_.RunThread(cpu, t, s.slice_ns);
    }
  }
  Finish(cpu, result);
  if (agent >= 0 && agents_[agent].opts.global && agent != in_agent_) {
    RequestRun(agent, machine_.now());
  }
}

// --- Agents --------------------------------------------------------------------------

absl::Status SimKernelSide::RegisterAgent(SimAgentOptions opts) {
  if (!ValidQueue(opts.queue)) {
    return absl::InvalidArgumentError(absl::StrCat("agent queue ", opts.queue, " is not valid"));
  }
  if (opts.cpu < 0 || opts.cpu >= NumCpus()) {
    return absl::InvalidArgumentError(absl::StrCat("agent CPU ", opts.cpu, " does not exist"));
  }
  if (!opts.run_once) return absl::InvalidArgumentError("agent without a body");
  if (queues_[opts.queue].agent >= 0) {
    return absl::AlreadyExistsError(absl::StrCat("queue ", opts.queue, " already has an agent"));
  }
  const int a = static_cast<int>(agents_.size());
  Agent ag;
  ag.opts = std::move(opts);
  agents_.push_back(std::move(ag));
  Agent& agent = agents_[a];
  Queue& q = queues_[agent.opts.queue];
  q.agent = a;
  q.delivery_ns = agent.opts.global ? costs_.msg_global_ns : costs_.msg_local_ns;
  if (agent.opts.global) {
    pinned_[agent.opts.cpu] = true;
    agent.on_cpu = true;
    machine_.SetAgent(agent.opts.cpu, true);
  } else if (agent.opts.wait_timeout_ns > 0) {
    At(machine_.now() + agent.opts.wait_timeout_ns, kAgentTimeout, static_cast<uint32_t>(a),
       ++agent.sleep_gen);
  }
  if (QueuePending(q)) NotifyAgent(agent.opts.queue, NextVisible(q), true);
  return absl::OkStatus();
}

uint64_t SimKernelSide::agent_busy_ns() const {
  uint64_t sum = 0;
  for (const Agent& a : agents_) sum += a.busy_ns;
  return sum;
}

void SimKernelSide::NotifyAgent(QueueId queue, uint64_t visible_ns, bool wakes) {
  const int a = queues_[queue].agent;
  if (a < 0) return;
  Agent& ag = agents_[a];
  if (ag.opts.global && ag.on_cpu) {
    RequestRun(a, visible_ns);
  } else if (!ag.on_cpu && !ag.wake_pending && wakes) {
    // A sleeping agent is woken now and occupies its CPU from now on.
    ag.wake_pending = true;
    At(machine_.now(), kAgentWake, static_cast<uint32_t>(a), 0);
  }
}

void SimKernelSide::RequestRun(int a, uint64_t t) {
  Agent& ag = agents_[a];
  // A sleeping global agent notices nothing (results, slices): only a message
  // or its timeout wakes it.
  if (ag.opts.global && !ag.on_cpu) return;
  t = std::max({t, ag.busy_until, machine_.now()});
  if (ag.run_pending && ag.run_time <= t) return;
  ag.run_pending = true;
  ag.run_time = t;
  ag.run_gen++;
  At(t, kAgentRun, static_cast<uint32_t>(a), ag.run_gen);
}

void SimKernelSide::RunAgent(int a) {
  Agent& ag = agents_[a];
  ag.run_pending = false;
  const uint64_t start = machine_.now();
  in_agent_ = a;
  clock_ = start + costs_.agent_pass_ns;
  ag.consumed = 0;
  Deliver(queues_[ag.opts.queue], clock_);
  const size_t visible_at_start = queues_[ag.opts.queue].delivered;
  stats_.agent_runs++;
  ag.opts.run_once();
  in_agent_ = -1;
  Agent& after = agents_[a];
  const uint64_t end = clock_;
  after.busy_ns += end - start;
  after.busy_until = end;
  Queue& q = queues_[after.opts.queue];
  Deliver(q, end);
  // Messages still waiting: run again when they are visible, unless this
  // pass ignored ones it could see (a stuck agent must not spin the simulation).
  after.stalled = after.consumed == 0 && visible_at_start > 0;
  const bool again = QueuePending(q) && !after.stalled;
  if (again) {
    RequestRun(a, std::max(end, NextVisible(q)));
  } else if (after.opts.global) {
    // Agent::Run: a round that read no message may end in a sleep; one that
    // read some is followed by another at once, which may.
    const uint64_t sleep_ns =
        after.opts.idle_sleep_ns && !QueuePending(q) && !after.run_pending
            ? after.opts.idle_sleep_ns()
            : 0;
    if (sleep_ns > 0 && after.consumed == 0) {
      after.idle_sleep_ns = sleep_ns;
      At(end, kAgentRelease, static_cast<uint32_t>(a), ++after.release_gen);
    } else if (sleep_ns > 0) {
      RequestRun(a, end);
    } else if (idle_poll_ns_ > 0) {
      RequestRun(a, end + idle_poll_ns_);
    }
  } else {
    At(end, kAgentRelease, static_cast<uint32_t>(a), ++after.release_gen);
  }
}

void SimKernelSide::AgentRelease(int a) {
  Agent& ag = agents_[a];
  Queue& q = queues_[ag.opts.queue];
  if (QueuePending(q) && !ag.stalled) {
    RequestRun(a, std::max(machine_.now(), NextVisible(q)));
    return;
  }
  ag.on_cpu = false;
  const uint64_t timeout_ns = ag.opts.global ? ag.idle_sleep_ns : ag.opts.wait_timeout_ns;
  if (timeout_ns > 0) {
    At(machine_.now() + timeout_ns, kAgentTimeout, static_cast<uint32_t>(a), ++ag.sleep_gen);
  }
  if (ag.opts.global) {
    // Asleep first: the CPU, offered next, then takes ring entries and
    // FIFO threads like any enclave CPU.
    agent_asleep_[ag.opts.cpu] = true;
    stats_.agent_sleeps++;
  }
  machine_.SetAgent(ag.opts.cpu, false);
}

void SimKernelSide::AgentWake(int a) {
  Agent& ag = agents_[a];
  ag.wake_pending = false;
  if (ag.on_cpu) return;
  ag.on_cpu = true;
  ag.sleep_gen++;
  ag.busy_until = machine_.now();
  agent_asleep_[ag.opts.cpu] = false;
  // Taking the CPU back: a global agent's preempts its thread (TASK_PREEMPT),
  // as the class's cpu_release does; a per-CPU agent's leaves it first on the
  // CPU, to resume when the agent sleeps (ThreadStopped). A sleeping global
  // agent pays what a per-CPU agent's wake-up costs (msg_local_ns: woken and
  // switched in on its CPU), not the spinning agent's msg_global_ns.
  quiet_stop_cpu_ = ag.opts.global ? -1 : ag.opts.cpu;
  machine_.SetAgent(ag.opts.cpu, true);
  quiet_stop_cpu_ = -1;
  RequestRun(a, machine_.now() + costs_.msg_local_ns);
}

void SimKernelSide::OnEvent(const Event& e) {
  const uint32_t sub = e.kind - Machine::kClassEvent;
  switch (sub) {
    case kAgentWake:
      AgentWake(static_cast<int>(e.a));
      break;
    case kAgentTimeout:
      if (agents_[e.a].sleep_gen == e.b && !agents_[e.a].on_cpu) AgentWake(static_cast<int>(e.a));
      break;
    case kAgentRun:
      if (agents_[e.a].run_gen == e.b && agents_[e.a].run_pending) RunAgent(static_cast<int>(e.a));
      break;
    case kAgentRelease:
      if (agents_[e.a].release_gen == e.b && !agents_[e.a].run_pending) {
        AgentRelease(static_cast<int>(e.a));
      }
      break;
    case kAgentPoll:
      RequestRun(static_cast<int>(e.a), machine_.now());
      break;
    case kTxnStart: {
      Latch& l = latches_[e.a];
      if (l.thread == -1 || l.gen != e.b) break;
      l.ready = true;
      TryStart(static_cast<int>(e.a));
      break;
    }
    case kWatchdog:
      Watchdog(e.a);
      break;
    case kTick:
      Tick(e.a);
      break;
    case kServeOrphans:
      ServeOrphans();
      break;
    case kRingKick:
      wake_kicked_[e.a] = false;
      if (machine_.IsFree(static_cast<int>(e.a)) && latches_[e.a].thread == -1) {
        CpuFree(static_cast<int>(e.a));
      }
      break;
  }
}

}  // namespace sim
}  // namespace ghost
