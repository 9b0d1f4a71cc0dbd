#include "userspace/policies/fifo_per_cpu.h"

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ghost {
namespace {

// After CPU_UNAVAILABLE without a CPU_BUSY message (e.g. the kernel side
// bounced the thread off a CPU something else just took), try again after
// this long or at CPU_AVAILABLE, whichever is first.
constexpr uint64_t kUnavailableBackoffNs = 1'000'000;

// Commits one agent round may try after failures that are not worth waiting
// for a message (NOT_FOUND, NOT_ALLOWED, ...): bounds the round's work.
constexpr int kMaxAttemptsPerRound = 8;
// How long a CPU must have been held (one thread of ours running, or a
// higher class) before an idle CPU takes what waits there: a thread that has
// just started is likely to block soon, and a move costs an AssociateQueue.
// (Measured no different from taking at once in the hog cell of
// clients_bench: docs/BENCHMARKS.md.)
constexpr uint64_t kStealAfterNs = 2'000'000;

// A runqueue entry that still stands for a thread waiting on `cpu` (the
// others are dropped by TakeNext).
bool WaitsOn(const FifoTask* t, int cpu) {
  return t != nullptr && t->Waiting() && t->owner == cpu;
}

}  // namespace

FifoPerCpuScheduler::FifoPerCpuScheduler(
    KernelSide& kernel, QueueId default_queue,
    const std::map<int, QueueId>& cpu_queues, const PolicyOptions& opts)
    : kernel_(kernel), default_queue_(default_queue), opts_(opts) {
  for (const auto& [cpu, queue] : cpu_queues) {
    Cpu& c = cpus_[cpu];
    c.cpu = cpu;
    c.queue = queue;
    c.req = std::make_unique<RunRequest>(kernel, cpu);
    kernel.SetPinnedPush(cpu, false);  // a predecessor's, until our agent runs
  }
}

FifoPerCpuScheduler::~FifoPerCpuScheduler() {
  // Our agents no longer run: nothing may be queued for them by the class.
  for (const auto& [cpu, c] : cpus_) kernel_.SetPinnedPush(cpu, false);
}

// --- message handlers ---------------------------------------------------------

void FifoPerCpuScheduler::OffCpu(FifoTask& t) {
  if (t.on_cpu >= 0) {
    auto it = cpus_.find(t.on_cpu);
    if (it != cpus_.end() && it->second.current == t.tid) {
      it->second.current = GHOST_TID_NONE;
    }
    t.on_cpu = -1;
  }
}

void FifoPerCpuScheduler::Enqueue(FifoTask& t, bool front) {
  if (t.class_held) {
    HandToClass(t);
    return;
  }
  if (t.runnable && t.on_cpu < 0 && t.inflight_cpu >= 0) {
    t.requeue_front = front;  // HandleResult queues it if it already left
    return;
  }
  if (!t.Waiting()) return;
  // Back from the class (pinned push), or its owner no longer allowed: to be
  // placed anew (never left in no runqueue and no placement list).
  if (t.owner < 0 || !t.AllowedOn(t.owner)) {
    NeedsPlacement(t);
    return;
  }
  auto it = cpus_.find(t.owner);
  if (it == cpus_.end()) return;
  if (front) {
    it->second.rq.PushFront(t);
  } else {
    it->second.rq.PushBack(t);
  }
  UpdatePinnedPush(it->second);  // off now: nothing may overtake it
  receivers_.insert(t.owner);
}

size_t FifoPerCpuScheduler::Load(const Cpu& c) {
  return c.rq.Size() + (c.current != GHOST_TID_NONE) + c.req_active;
}

bool FifoPerCpuScheduler::Taken(const Cpu& c) const { return Load(c) > 0 || c.busy; }

bool FifoPerCpuScheduler::IdleCpuFor(const FifoTask& t) const {
  for (const auto& [cpu, c] : cpus_) {
    if (cpu != t.owner && t.AllowedOn(cpu) && !Taken(c) && c.retry_after_ns == 0) return true;
  }
  return false;
}

bool FifoPerCpuScheduler::MovedOffTakenCpu(FifoTask& t) {
  if (t.class_held || !t.Waiting() || t.owner < 0 || !t.AllowedOn(t.owner)) return false;
  auto it = cpus_.find(t.owner);
  if (it == cpus_.end() || !Taken(it->second) || !IdleCpuFor(t)) return false;
  ++stats_.wake_moves;
  NeedsPlacement(t);
  return true;
}

FifoTask* FifoPerCpuScheduler::StealableFor(const Cpu& c, uint64_t now) {
  if (Taken(c) || c.retry_after_ns != 0 || !unplaced_.empty()) return nullptr;
  FifoTask* take = nullptr;
  size_t deepest = 0;
  for (auto& [cpu, d] : cpus_) {
    if (cpu == c.cpu || (d.current == GHOST_TID_NONE && !d.busy) || d.rq.Size() <= deepest ||
        (now != 0 && now - d.held_since_ns < kStealAfterNs)) {
      continue;
    }
    for (Tid tid : d.rq.tids()) {
      FifoTask* t = tasks_.Find(tid);
      if (!WaitsOn(t, cpu) || t->not_before_ns != 0 || !t->AllowedOn(c.cpu)) continue;
      take = t;
      deepest = d.rq.Size();
      break;
    }
  }
  return take;
}

bool FifoPerCpuScheduler::StealFor(const Cpu& c) {
  FifoTask* take = StealableFor(c, opts_.clock());
  if (take == nullptr) return false;
  ++stats_.steals;
  NeedsPlacement(*take);
  return true;
}

void FifoPerCpuScheduler::Forget(Tid tid) {
  if (FifoTask* t = tasks_.Find(tid)) {
    OffCpu(*t);
    if (t->owner >= 0) cpus_[t->owner].rq.Remove(*t);
  }
  unplaced_.erase(std::remove(unplaced_.begin(), unplaced_.end(), tid),
                  unplaced_.end());
  tasks_.Erase(tid);
}

void FifoPerCpuScheduler::HandToClass(FifoTask& t) {
  if (t.owner >= 0) cpus_[t.owner].rq.Remove(t);
  unplaced_.erase(std::remove(unplaced_.begin(), unplaced_.end(), t.tid), unplaced_.end());
  class_held_.insert(t.tid);
}

void FifoPerCpuScheduler::HandOverPinned(Cpu& c) {
  if (!opts_.pinned_push || !hand_over_ok_) return;
  // Only the head of the runqueue: a thread behind one that is not pinned
  // would overtake it. The class queues them behind whatever is queued on
  // the CPU already (a commit of ours included), so the order holds.
  std::vector<KernelSide::HandOverEntry> batch;
  for (Tid tid : c.rq.tids()) {
    const FifoTask* t = tasks_.Find(tid);
    if (!WaitsOn(t, c.cpu)) continue;  // gone: TakeNext drops it
    if (t->not_before_ns != 0 || t->affinity.Size() != 1 || !t->AllowedOn(c.cpu)) break;
    batch.push_back({.tid = tid, .seqnum = t->seq});
    if (batch.size() == GHOST_HAND_OVER_MAX) break;
  }
  for (FifoTask* t : HandOverToClass(kernel_, tasks_, c.cpu, absl::MakeSpan(batch), &hand_over_ok_,
                                     &stats_.handed_over, &stats_.hand_over_refused)) {
    HandToClass(*t);
  }
}

void FifoPerCpuScheduler::CheckClassHeld() {
  for (auto it = class_held_.begin(); it != class_held_.end();) {
    FifoTask* t = tasks_.Find(*it);
    if (t != nullptr && t->class_held) {
      ++it;
      continue;
    }
    it = class_held_.erase(it);
    // A message without the flag made it ours again. Those that queue it
    // did; one that does not (AFFINITY_CHANGED widening its mask: the class
    // parks it for us) left it in no list: queue it now.
    if (t != nullptr && t->Waiting() && !t->queued &&
        std::find(unplaced_.begin(), unplaced_.end(), t->tid) == unplaced_.end()) {
      ++stats_.class_returned;
      Enqueue(*t, /*front=*/true);
    }
  }
}

void FifoPerCpuScheduler::NeedsPlacement(FifoTask& t) {
  if (t.class_held) {
    HandToClass(t);
    return;
  }
  if (t.owner >= 0) {
    cpus_[t.owner].rq.Remove(t);
    t.owner = -1;
  }
  if (std::find(unplaced_.begin(), unplaced_.end(), t.tid) == unplaced_.end()) {
    unplaced_.push_back(t.tid);
  }
}

// An off-CPU message (BLOCKED, PREEMPT, YIELD, DEAD, DEPARTED).
static void NoteLeftCpu(FifoTask& t, const Message& m) {
  // It left the CPU our pending transaction put it on: when that result is
  // read as COMMITTED, the CPU is already free again.
  if (t.inflight_cpu >= 0 &&
      m.raw().off_cpu.from_cpu == static_cast<uint32_t>(t.inflight_cpu)) {
    t.left_while_inflight = true;
  }
}

void FifoPerCpuScheduler::TaskNew(const Message& m) {
  absl::MutexLock l(&mu_);
  bool created = false;
  FifoTask& t = tasks_.Update(m, &created);
  // A thread we know: it left the class and came back, and this TASK_NEW
  // (in the default queue) was read before its earlier life's DEPARTED (in
  // its own queue, another agent's). That life's CPU is not this one's: kept,
  // it would hold the thread off every runqueue, and that CPU's agent would
  // wait for the thread to leave it.
  if (!created) OffCpu(t);
  t.queue = default_queue_;
  NeedsPlacement(t);
}

FifoTask* FifoPerCpuScheduler::Track(const Message& m) {
  if (tasks_.FromEarlierLife(m)) return nullptr;
  bool created = false;
  FifoTask& t = tasks_.Update(m, &created);
  // Queued on its one CPU by the class at this message (pinned push): not
  // ours to queue or commit until a newer message says otherwise. The
  // message says so itself: the status word says it only while at this
  // seqnum, and a thread that moves on quickly (the affinity stressor) has
  // a newer word by the time its messages are read.
  const bool held = opts_.pinned_push && m.class_held();
  if (held) ++stats_.class_held;
  t.class_held = held;
  // A thread we never saw TASK_NEW for (the agent started late): its queue
  // is unknown, so place it like a new one (AssociateQueue tells the kernel).
  if (created && m.type() != GHOST_MSG_TASK_NEW) NeedsPlacement(t);
  return &t;
}

void FifoPerCpuScheduler::TaskWakeup(const Message& m) {
  absl::MutexLock l(&mu_);
  FifoTask* found = Track(m);
  if (found == nullptr) return;  // about an earlier life
  FifoTask& t = *found;
  // A WAKEUP follows the thread's BLOCKED: it is on no CPU, whatever we
  // believed. Believing otherwise would leave it parked until the watchdog.
  if (t.on_cpu >= 0) {
    ++stats_.wakeups_on_cpu;
    stats_.last_wakeup_on_cpu = t.Describe();
    OffCpu(t);
  }
  t.runnable = true;
  if (!MovedOffTakenCpu(t)) Enqueue(t, /*front=*/false);
}

void FifoPerCpuScheduler::TaskBlocked(const Message& m) {
  absl::MutexLock l(&mu_);
  FifoTask* found = Track(m);
  if (found == nullptr) return;  // about an earlier life
  FifoTask& t = *found;
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = false;
  if (t.owner >= 0) cpus_[t.owner].rq.Remove(t);
}

void FifoPerCpuScheduler::TaskPreempt(const Message& m) {
  absl::MutexLock l(&mu_);
  FifoTask* found = Track(m);
  if (found == nullptr) return;  // about an earlier life
  FifoTask& t = *found;
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = true;
  // Without slices it was displaced (a higher class took the CPU): it keeps
  // its turn. With slices it used its turn up: the class renews a slice in
  // place while nothing waits here (pinned push on; bpf/progs/slices.bpf.h),
  // so a slice's end reaches us only when another thread waits for the CPU.
  Enqueue(t, /*front=*/opts_.slice == absl::ZeroDuration());
}

void FifoPerCpuScheduler::TaskYield(const Message& m) {
  absl::MutexLock l(&mu_);
  FifoTask* found = Track(m);
  if (found == nullptr) return;  // about an earlier life
  FifoTask& t = *found;
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = true;
  if (!MovedOffTakenCpu(t)) Enqueue(t, /*front=*/false);
}

void FifoPerCpuScheduler::TaskDead(const Message& m) {
  absl::MutexLock l(&mu_);
  if (tasks_.EndsAnEarlierLife(m)) return;
  FifoTask& t = tasks_.Update(m);
  NoteLeftCpu(t, m);
  Forget(m.tid());
}

void FifoPerCpuScheduler::TaskDeparted(const Message& m) { TaskDead(m); }

void FifoPerCpuScheduler::TaskAffinityChanged(const Message& m) {
  absl::MutexLock l(&mu_);
  FifoTask* found = Track(m);
  if (found == nullptr) return;  // about an earlier life
  FifoTask& t = *found;
  // Still running where it was (it changed its own mask; the class started
  // it, so we did not know): its move off that CPU sends the message that
  // queues it. Queued now, it would sit in a runqueue it cannot be committed
  // from, and keep pinned push off there meanwhile.
  if (!t.class_held && t.on_cpu < 0) {
    if (const int cpu = StatusWordCpuAt(kernel_, t, m.seqnum()); cpu >= 0) {
      ++stats_.running_at_affinity;
      if (t.owner >= 0) cpus_[t.owner].rq.Remove(t);
      t.on_cpu = cpu;
    }
  }
  // NeedsPlacement hands a class-held thread to the class.
  if (t.class_held || (t.owner >= 0 && !t.AllowedOn(t.owner))) NeedsPlacement(t);
}

void FifoPerCpuScheduler::TaskPriorityChanged(const Message& m) {
  absl::MutexLock l(&mu_);
  (void)Track(m);  // FIFO ignores priority; the seqnum still moved
}

void FifoPerCpuScheduler::TaskOnCpu(const Message& m) {
  absl::MutexLock l(&mu_);
  (void)Track(m);
}

void FifoPerCpuScheduler::CpuAvailable(const Message& m) {
  absl::MutexLock l(&mu_);
  auto it = cpus_.find(m.cpu());
  if (it == cpus_.end()) return;
  it->second.busy = false;
  it->second.retry_after_ns = 0;
}

void FifoPerCpuScheduler::CpuBusy(const Message& m) {
  absl::MutexLock l(&mu_);
  auto it = cpus_.find(m.cpu());
  if (it != cpus_.end() && !it->second.busy) {
    it->second.busy = true;
    it->second.held_since_ns = opts_.clock();
  }
}

// --- placement ----------------------------------------------------------------

int FifoPerCpuScheduler::PickCpu(const FifoTask& t) {
  // Least loaded allowed CPU (available ones first); ties go round-robin.
  const int n = static_cast<int>(cpus_.size());
  std::vector<Cpu*> order;
  order.reserve(n);
  for (auto& [cpu, c] : cpus_) order.push_back(&c);
  int best = -1;
  size_t best_load = std::numeric_limits<size_t>::max();
  size_t best_idx = 0;
  for (int i = 0; i < n; ++i) {
    const size_t idx = (rr_ + i) % n;
    const Cpu& c = *order[idx];
    if (!t.AllowedOn(c.cpu)) continue;
    size_t load = Load(c);
    if (c.busy) load += n * 1024;  // a higher class has it: last resort
    if (load < best_load) {
      best = c.cpu;
      best_load = load;
      best_idx = idx;
    }
  }
  if (best >= 0) rr_ = best_idx + 1;
  return best;
}

void FifoPerCpuScheduler::PlacePending() {
  std::vector<Tid> keep;
  for (Tid tid : unplaced_) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr) continue;
    const int dest = PickCpu(*t);
    if (dest < 0) {
      // No enclave CPU is allowed: leave it to the kernel side's fallback
      // until its affinity changes.
      keep.push_back(tid);
      continue;
    }
    const QueueId q = cpus_[dest].queue;
    if (q != t->queue) {
      absl::Status s = kernel_.AssociateQueue(tid, q);
      if (absl::IsNotFound(s)) {
        // Gone (the kernel side finds every thread it reported until its
        // DEAD/DEPARTED): that message, on its old queue, forgets it.
        t->runnable = false;
        continue;
      }
      if (!s.ok()) {
        // FailedPrecondition: its old queue still holds messages about it.
        ++stats_.associate_retries;
        keep.push_back(tid);
        continue;
      }
      ++stats_.migrations;
      t->queue = q;
    }
    t->owner = dest;
    Enqueue(*t, /*front=*/false);
  }
  unplaced_ = std::move(keep);
}

// --- decisions ----------------------------------------------------------------

bool FifoPerCpuScheduler::HandleResult(Cpu& c) {
  const Tid tid = c.req->target();
  const uint32_t r = c.req->Done() ? c.req->result() : GHOST_TXN_ABORTED;
  const bool remote = c.remote;
  c.req->Release();
  c.req_active = false;
  c.remote = false;
  const FifoTaskTable::Settled settled =
      tasks_.SettleInflight(tid, c.req->target_barrier(), r, c.cpu);
  FifoTask* t = settled.task;
  const bool newer = settled.newer, left = settled.left;
  if (t != nullptr) {
    t->last_result = r;
    t->failed_commits = r == GHOST_TXN_COMMITTED ? 0 : t->failed_commits + 1;
  }
  if (r == GHOST_TXN_COMMITTED) {
    ++stats_.commits;
    if (t != nullptr && !left) {
      t->on_cpu = c.cpu;
      c.current = tid;
      c.held_since_ns = opts_.clock();
    } else if (t != nullptr) {
      // It ran and left (blocked, was preempted, yielded) before we read
      // this: whatever the messages since said about it stands.
      Enqueue(*t, t->requeue_front);
    }
    return true;
  }
  ++stats_.failed_commits;
  switch (r) {
    case GHOST_TXN_TARGET_STALE:
    case GHOST_TXN_AGENT_STALE:
      // We acted on old state: drop the decision, keep its place, and decide
      // again once the newer message has been read.
      ++stats_.stale;
      if (t != nullptr) Enqueue(*t, /*front=*/true);
      return false;
    case GHOST_TXN_NOT_FOUND:
      // Gone: the kernel side finds every thread it has reported until it
      // sends DEAD/DEPARTED, and that message forgets it. Until then it is
      // as good as blocked.
    case GHOST_TXN_NOT_RUNNABLE:
      if (t == nullptr) return true;
      if (newer) {
        Enqueue(*t, /*front=*/true);  // we know more than that commit did
      } else {
        t->runnable = false;  // a WAKEUP (or DEAD) will follow
      }
      return true;
    case GHOST_TXN_RUNNING_ELSEWHERE:
      if (t == nullptr) return true;
      // Running (fallback, a race): its off-CPU message brings it back. Not
      // running (newer messages, or the kernel side is moving it): retry.
      if (newer || StatusWordCpu(kernel_, *t) < 0) {
        if (!newer) t->not_before_ns = opts_.clock() + kElsewhereBackoffNs;
        Enqueue(*t, /*front=*/true);
      }
      return true;
    case GHOST_TXN_CPU_UNAVAILABLE:
      // A remote commit meets the CPU's own agent awake there as often as
      // a higher class: that agent will commit it.
      if (!remote) c.retry_after_ns = opts_.clock() + kUnavailableBackoffNs;
      if (t != nullptr) Enqueue(*t, /*front=*/true);
      return false;
    case GHOST_TXN_NOT_ALLOWED:
      if (t == nullptr) return true;
      // With a newer message, AFFINITY_CHANGED told us.
      if (!newer) {
        CpuList enclave;
        for (const auto& [cpu, unused] : cpus_) enclave.Set(cpu);
        if (!t->RefuseAfterNotAllowed(c.cpu, enclave, opts_.clock() + kNotAllowedBackoffNs)) {
          ++stats_.not_allowed_retries;
        }
      }
      if (t->AllowedOn(c.cpu)) {
        Enqueue(*t, /*front=*/true);
      } else {
        NeedsPlacement(*t);
      }
      return true;
    default:  // PREEMPTED, ABORTED, INVALID, a call error: retry later
      if (t != nullptr) Enqueue(*t, /*front=*/true);
      return false;
  }
}

FifoTask* FifoPerCpuScheduler::TakeNext(Cpu& c) {
  std::vector<Tid> gone;
  FifoTask* found = nullptr;
  uint64_t now = 0;
  for (Tid tid : c.rq.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (!WaitsOn(t, c.cpu)) {
      gone.push_back(tid);
      continue;
    }
    if (t->not_before_ns != 0) {
      if (now == 0) now = opts_.clock();
      if (now < t->not_before_ns) continue;
      t->not_before_ns = 0;
    }
    found = t;
    break;
  }
  for (Tid tid : gone) {
    FifoTask* t = tasks_.Find(tid);
    if (t != nullptr && t->owner == c.cpu) {
      c.rq.Remove(*t);
    } else {
      c.rq.RemoveTid(tid);
    }
  }
  if (found != nullptr) c.rq.Remove(*found);
  return found;
}

void FifoPerCpuScheduler::AttachAgent(Agent& agent) {
  absl::MutexLock l(&mu_);
  auto it = cpus_.find(agent.cpu());
  if (it != cpus_.end()) it->second.agent = &agent;
}

void FifoPerCpuScheduler::WakeReceivers(int self) {
  for (int cpu : receivers_) {
    auto it = cpus_.find(cpu);
    if (cpu != self && it != cpus_.end() && it->second.agent != nullptr) {
      it->second.agent->Wake();
    }
  }
  receivers_.clear();
}

void FifoPerCpuScheduler::UpdatePinnedPush(Cpu& c) {
  const bool want = opts_.pinned_push && c.rq.Empty();
  if (want == c.pinned_push) return;
  kernel_.SetPinnedPush(c.cpu, want);
  c.pinned_push = want;
}

void FifoPerCpuScheduler::Schedule(Agent& agent) {
  absl::MutexLock l(&mu_);
  ScheduleLocked(agent);
  if (auto it = cpus_.find(agent.cpu()); it != cpus_.end()) {
    // Pinned threads now at the head (behind what this round committed)
    // go to the class too: the runqueue empties and pinned push turns on.
    HandOverPinned(it->second);
    UpdatePinnedPush(it->second);
  }
  // A thread this round (or a message handler) put on another CPU's
  // runqueue: that agent may be blocked on an empty queue. As in ghOSt, it
  // is woken rather than left to its poll timeout.
  WakeReceivers(agent.cpu());
}

bool FifoPerCpuScheduler::OpenAndCommit(Cpu& c, FifoTask& t, Agent& agent) {
  absl::Status s = c.req->Open({.target = t.tid,
                                .target_barrier = t.seq,
                                .agent_barrier = agent.barrier(),
                                .queue = agent.queue(),
                                .slice = opts_.slice});
  if (!s.ok()) {
    Enqueue(t, /*front=*/true);
    return false;
  }
  t.inflight_cpu = c.cpu;
  t.left_while_inflight = false;
  t.Note(FifoTask::Event::kCommit, 0, c.cpu, t.seq);
  c.req_active = true;
  c.remote = c.cpu != agent.cpu();
  c.remote_by = c.remote ? agent.cpu() : -1;
  c.req->Commit();  // the result is read by the next round that looks
  return true;
}

bool FifoPerCpuScheduler::StillBusy(Cpu& c) {
  if (!c.busy) return false;
  if (!CpuFreeAgain(kernel_, c.cpu)) return true;
  c.busy = false;
  ++stats_.busy_cleared;
  return false;
}

bool FifoPerCpuScheduler::CommitRemote(Cpu& c, Agent& agent) {
  if (c.req_active || c.current != GHOST_TID_NONE || StillBusy(c) || c.retry_after_ns != 0 ||
      c.rq.Empty()) {
    return false;
  }
  FifoTask* t = TakeNext(c);
  if (t == nullptr || !OpenAndCommit(c, *t, agent)) return false;
  ++stats_.remote_commits;
  if (c.req->in_flight()) return true;
  // Settled already (a kernel side that commits synchronously): started,
  // or refused, and then its agent decides again.
  HandleResult(c);
  return c.current != GHOST_TID_NONE;
}

void FifoPerCpuScheduler::ScheduleLocked(Agent& agent) {
  if (!class_held_.empty()) CheckClassHeld();
  PlacePending();
  // Results of remote commits, whoever made them; then threads handed to
  // idle CPUs (an affinity change, a wake-up placed elsewhere) go there
  // without waking those CPUs' agents.
  for (auto& [cpu, other] : cpus_) {
    if (other.remote && other.req_active && !other.req->in_flight()) HandleResult(other);
  }
  for (auto r = receivers_.begin(); r != receivers_.end();) {
    auto d = cpus_.find(*r);
    bool done = false;
    if (*r != agent.cpu() && d != cpus_.end()) {
      // Handed to the class, the threads need no wake-up of that agent.
      HandOverPinned(d->second);
      UpdatePinnedPush(d->second);
      done = d->second.rq.Empty() || CommitRemote(d->second, agent);
    }
    r = done ? receivers_.erase(r) : std::next(r);
  }
  auto it = cpus_.find(agent.cpu());
  if (it == cpus_.end()) return;
  Cpu& c = it->second;
  HandOverPinned(c);
  if (StealFor(c)) PlacePending();
  for (int attempt = 0; attempt < kMaxAttemptsPerRound; ++attempt) {
    if (c.req_active) {
      if (c.req->in_flight()) return;  // result not in yet
      if (!HandleResult(c)) return;
    }
    if (StillBusy(c) || c.current != GHOST_TID_NONE || c.rq.Empty()) return;
    if (c.retry_after_ns != 0) {
      if (opts_.clock() < c.retry_after_ns) return;
      c.retry_after_ns = 0;
    }
    FifoTask* t = TakeNext(c);
    if (t == nullptr || !OpenAndCommit(c, *t, agent)) return;
  }
}

bool FifoPerCpuScheduler::Pending(const Agent& agent) {
  absl::MutexLock l(&mu_);
  auto it = cpus_.find(agent.cpu());
  if (it == cpus_.end()) return true;
  const Cpu& c = it->second;
  if ((c.req_active && !c.remote) || c.retry_after_ns != 0 || !unplaced_.empty()) return true;
  // A remote commit of ours not settled yet: a late failure sends no message,
  // and its CPU's agent sleeps, so we read the result (ScheduleLocked).
  for (const auto& [cpu, other] : cpus_) {
    if (other.remote && other.req_active && other.remote_by == agent.cpu()) return true;
  }
  if (c.current == GHOST_TID_NONE && !c.rq.Empty()) return true;
  // Idle, with a thread it may run waiting behind another CPU's: look again
  // soon (StealFor waits until that CPU has been held kStealAfterNs).
  return StealableFor(c, /*now=*/0) != nullptr;
}

FifoPerCpuScheduler::Stats FifoPerCpuScheduler::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

int FifoPerCpuScheduler::OwnerOf(Tid tid) const {
  absl::MutexLock l(&mu_);
  const FifoTask* t = tasks_.Find(tid);
  return t ? t->owner : -1;
}

size_t FifoPerCpuScheduler::RunqueueSize(int cpu) const {
  absl::MutexLock l(&mu_);
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? 0 : it->second.rq.Size();
}

// --- policy -------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Policy>> FifoPerCpuPolicy::Create(
    const PolicyOptions& opts, Enclave& enclave) {
  KernelSide& kernel = enclave.kernel();
  const std::vector<int> cpus = enclave.cpus().ToVector();
  if (cpus.size() > GHOST_MAX_QUEUES) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s needs a queue per CPU: at most %d CPUs, enclave has %d", kName,
        GHOST_MAX_QUEUES, cpus.size()));
  }
  std::map<int, QueueId> queues;
  // The first CPU's agent reads the default queue: threads it keeps need no
  // AssociateQueue.
  queues[cpus.front()] = enclave.default_queue();
  if (absl::Status s = kernel.ConfigQueueWakeup(enclave.default_queue(),
                                                cpus.front(), true);
      !s.ok()) {
    return s;
  }
  for (size_t i = 1; i < cpus.size(); ++i) {
    absl::StatusOr<QueueId> q = enclave.CreateQueue({.wake_cpu = cpus[i]});
    if (!q.ok()) return q.status();
    queues[cpus[i]] = *q;
  }
  std::unique_ptr<FifoPerCpuPolicy> p(new FifoPerCpuPolicy());
  p->sched_ = std::make_unique<FifoPerCpuScheduler>(
      kernel, enclave.default_queue(), queues, opts);
  for (int cpu : cpus) {
    p->agents_.push_back(std::make_unique<Agent>(
        kernel, *p->sched_, AgentOptions{.cpu = cpu, .queue = queues[cpu]}));
    p->sched_->AttachAgent(*p->agents_.back());
  }
  return std::unique_ptr<Policy>(std::move(p));
}

std::vector<Agent*> FifoPerCpuPolicy::agents() {
  std::vector<Agent*> out;
  for (auto& a : agents_) out.push_back(a.get());
  return out;
}

std::string FifoPerCpuScheduler::Describe(Tid tid) const {
  absl::MutexLock l(&mu_);
  const FifoTask* t = tasks_.Find(tid);
  if (t == nullptr) return tasks_.WhyUnknown(tid);
  std::string s = t->Describe();
  if (std::find(unplaced_.begin(), unplaced_.end(), tid) != unplaced_.end()) s += " unplaced";
  if (auto it = cpus_.find(t->owner); it != cpus_.end()) {
    const Cpu& c = it->second;
    s += absl::StrFormat("; owner CPU: current=%d req_active=%d remote=%d remote_by=%d busy=%d "
                         "retry_after_ns=%u rq=%u",
                         c.current, c.req_active, c.remote, c.remote_by, c.busy,
                         c.retry_after_ns, c.rq.Size());
  }
  return s;
}

std::string FifoPerCpuPolicy::StatsLine() const {
  const FifoPerCpuScheduler::Stats s = sched_->stats();
  return absl::StrFormat(
      "commits=%u failed_commits=%u stale=%u migrations=%u associate_retries=%u "
      "remote_commits=%u class_held=%u class_returned=%u handed_over=%u "
      "hand_over_refused=%u running_at_affinity=%u busy_cleared=%u wakeups_on_cpu=%u "
      "not_allowed_retries=%u wake_moves=%u steals=%u",
      s.commits, s.failed_commits, s.stale, s.migrations, s.associate_retries, s.remote_commits,
      s.class_held, s.class_returned, s.handed_over, s.hand_over_refused, s.running_at_affinity,
      s.busy_cleared, s.wakeups_on_cpu, s.not_allowed_retries, s.wake_moves, s.steals) +
         (s.last_wakeup_on_cpu.empty()
              ? ""
              : " (last wakeup on a CPU: " + s.last_wakeup_on_cpu + ")");
}

}  // namespace ghost
