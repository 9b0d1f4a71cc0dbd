#include "userspace/policies/fifo_centralized.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/status_word.h"

namespace ghost {
namespace {

// After CPU_UNAVAILABLE without a CPU_BUSY message, leave the CPU alone this
// long (or until CPU_AVAILABLE).
constexpr uint64_t kUnavailableBackoffNs = 1'000'000;

void NoteLeftCpu(FifoTask& t, const Message& m) {
  if (t.inflight_cpu >= 0 &&
      m.raw().off_cpu.from_cpu == static_cast<uint32_t>(t.inflight_cpu)) {
    t.left_while_inflight = true;
  }
}

}  // namespace

bool FifoCentralizedScheduler::LeftAgentCpu(const Message& m) const {
  return agent_.req != nullptr && m.raw().off_cpu.from_cpu == static_cast<uint32_t>(agent_.cpu);
}

FifoCentralizedScheduler::FifoCentralizedScheduler(KernelSide& kernel,
                                                   const CpuList& cpus,
                                                   int agent_cpu,
                                                   const PolicyOptions& opts)
    : kernel_(kernel), opts_(opts) {
  for (int cpu : cpus.ToVector()) {
    Cpu& c = cpu == agent_cpu ? agent_ : cpus_[cpu];
    c.cpu = cpu;
    c.req = std::make_unique<RunRequest>(kernel, cpu);
    kernel.SetPinnedPush(cpu, false);  // a predecessor's, until our first round
  }
}

FifoCentralizedScheduler::~FifoCentralizedScheduler() {
  // We no longer run: nothing may be queued for us by the class.
  for (const auto& [cpu, c] : cpus_) kernel_.SetPinnedPush(cpu, false);
  if (agent_.req != nullptr) kernel_.SetPinnedPush(agent_.cpu, false);
}

FifoCentralizedScheduler::Cpu* FifoCentralizedScheduler::FindCpu(int cpu) {
  if (agent_.req != nullptr && cpu == agent_.cpu) return &agent_;
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? nullptr : &it->second;
}

CpuList FifoCentralizedScheduler::UsableCpus() const {
  CpuList out;
  for (const auto& [cpu, c] : cpus_) out.Set(cpu);
  if (agent_.req != nullptr) out.Set(agent_.cpu);
  return out;
}

Tid FifoCentralizedScheduler::CurrentOn(int cpu) const {
  if (agent_.req != nullptr && cpu == agent_.cpu) return agent_.current;
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? GHOST_TID_NONE : it->second.current;
}

// --- message handlers ---------------------------------------------------------

void FifoCentralizedScheduler::CountPlacement(int last, int cpu) {
  switch (DistanceBetween(opts_.topology.get(), last, cpu)) {
    case Distance::kSameCpu:
      ++stats_.placed_last_cpu;
      return;
    case Distance::kSibling:
      ++stats_.placed_sibling;
      return;
    case Distance::kSameLlc:
      break;
    case Distance::kSameNode:
      ++stats_.placed_cross_llc;
      break;
    case Distance::kRemote:
      ++stats_.placed_cross_llc;
      ++stats_.placed_cross_node;
      break;
    case Distance::kUnknown:
    case Distance::kNoLastCpu:
      break;
  }
  ++stats_.placed_elsewhere;
}

void FifoCentralizedScheduler::OffCpu(FifoTask& t) {
  if (t.on_cpu < 0) return;
  Cpu* c = FindCpu(t.on_cpu);
  if (c != nullptr && c->current == t.tid) c->current = GHOST_TID_NONE;
  t.last_cpu = t.on_cpu;
  t.on_cpu = -1;
}

std::string FifoCentralizedScheduler::Describe(Tid tid) const {
  const FifoTask* t = tasks_.Find(tid);
  if (t == nullptr) return tasks_.WhyUnknown(tid);
  std::string out = t->Describe();
  const uint64_t now = opts_.clock();
  auto cpu_line = [&](const Cpu& c) {
    absl::StrAppendFormat(&out, "; cpu %d: current=%d req=%d (%dus) busy=%d retry_in=%dus run_for=%dus",
                          c.cpu, c.current, c.req_active ? c.req->target() : GHOST_TID_NONE,
                          c.req_active && now > c.req_open_ns ? (now - c.req_open_ns) / 1000 : 0,
                          c.busy, c.retry_after_ns > now ? (c.retry_after_ns - now) / 1000 : 0,
                          c.current != GHOST_TID_NONE && now > c.run_start_ns
                              ? (now - c.run_start_ns) / 1000
                              : 0);
  };
  for (const auto& [cpu, c] : cpus_) {
    if (t->affinity.IsSet(cpu)) cpu_line(c);
  }
  if (agent_.req != nullptr && t->affinity.IsSet(agent_.cpu)) cpu_line(agent_);
  if (auto it = narrow_since_.find(tid); it != narrow_since_.end() && now > it->second) {
    absl::StrAppendFormat(&out, "; narrow, waiting %dus", (now - it->second) / 1000);
  }
  return out;
}

void FifoCentralizedScheduler::Enqueue(FifoTask& t, bool front) {
  if (t.class_held) return;  // queued on its one CPU by the class itself
  if (t.runnable && t.on_cpu < 0 && (t.inflight_cpu >= 0 || t.ring_node >= 0)) {
    t.requeue_front = front;  // HandleResult/HandleOutcome queue it if it left
    return;
  }
  if (!t.Waiting()) return;
  if (opts_.rank) ReadRank(t);
  if (opts_.least_runtime_first && !t.queued) {
    const uint64_t weighted = t.runtime_ns * 100 / std::max<uint32_t>(t.weight, 1);
    t.order_ns = std::max(weighted, runtime_floor_ns_ - std::min(runtime_floor_ns_, kRuntimeCreditNs));
  }
  if (!t.queued) t.queued_ns = opts_.clock();
  if (front) {
    fifo_.PushFront(t);
  } else {
    fifo_.PushBack(t);
  }
}

void FifoCentralizedScheduler::Forget(Tid tid) {
  if (FifoTask* t = tasks_.Find(tid)) {
    RingMessage(*t, /*off_cpu=*/true);
    OffCpu(*t);
    fifo_.Remove(*t);
  }
  tasks_.Erase(tid);
}

FifoTask& FifoCentralizedScheduler::Track(const Message& m, bool* returned) {
  FifoTask& t = tasks_.Update(m);
  const bool was_held = t.class_held;
  // The message says so itself: the status word says it only while at this
  // seqnum, and a thread that moves on quickly has a newer word by now.
  t.class_held = opts_.pinned_push && m.class_held();
  if (t.class_held) {
    ++stats_.class_held;
    fifo_.Remove(t);
  }
  if (returned != nullptr) *returned = was_held && !t.class_held;
  return t;
}

void FifoCentralizedScheduler::TakeBackFromClass(FifoTask& t, const Message& m) {
  ++stats_.class_returned;
  if (!t.Waiting() || t.queued) return;
  if (StatusWordCpuAt(kernel_, t, m.seqnum()) >= 0) return;  // it runs: its next message tells
  Enqueue(t, /*front=*/true);
}

void FifoCentralizedScheduler::TaskNew(const Message& m) {
  FifoTask& t = Track(m);
  t.woke_ns = opts_.clock();
  Enqueue(t, /*front=*/false);
}

void FifoCentralizedScheduler::TaskWakeup(const Message& m) {
  FifoTask& t = Track(m);
  RingMessage(t, /*off_cpu=*/false);
  // A WAKEUP follows the thread's BLOCKED: it is on no CPU, whatever we
  // believed. Believing otherwise would leave it parked until the watchdog.
  if (t.on_cpu >= 0) {
    ++stats_.wakeups_on_cpu;
    stats_.last_wakeup_on_cpu = t.Describe();
    OffCpu(t);
  }
  t.runnable = true;
  t.woke_ns = opts_.clock();
  if (m.raw().wakeup.in_ring != 0 && AdoptWakeupEntry(t, m)) return;
  Enqueue(t, /*front=*/false);
}

void FifoCentralizedScheduler::TaskBlocked(const Message& m) {
  FifoTask& t = Track(m);
  RingMessage(t, /*off_cpu=*/true);
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = false;
  t.slice_preempted = false;
  fifo_.Remove(t);
}

void FifoCentralizedScheduler::TaskPreempt(const Message& m) {
  FifoTask& t = Track(m);
  RingMessage(t, /*off_cpu=*/true);
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = true;
  // Our slice preemption sends it to the tail; anything else (a higher class
  // took the CPU) keeps its turn, and so does a thread that ran on our own
  // CPU: it waits on our runqueue, and behind us the kernel counts it starved
  // (after about a second its ext server lends our CPU to the class, which
  // runs the thread without us).
  const bool front = !t.slice_preempted || LeftAgentCpu(m);
  t.slice_preempted = false;
  Enqueue(t, front);
}

void FifoCentralizedScheduler::TaskYield(const Message& m) {
  FifoTask& t = Track(m);
  RingMessage(t, /*off_cpu=*/true);
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = true;
  t.slice_preempted = false;
  Enqueue(t, /*front=*/LeftAgentCpu(m));
}

void FifoCentralizedScheduler::TaskDead(const Message& m) {
  if (tasks_.EndsAnEarlierLife(m)) return;
  Track(m);
  Forget(m.tid());
}

void FifoCentralizedScheduler::TaskDeparted(const Message& m) { TaskDead(m); }

void FifoCentralizedScheduler::TaskAffinityChanged(const Message& m) {
  // The new mask is used at the next pick; a running thread the kernel side
  // moves off a forbidden CPU reports a PREEMPT. An entry in a ring is
  // revoked (it may be on a node the thread may no longer use).
  bool returned = false;
  FifoTask& t = Track(m, &returned);
  RingMessage(t, /*off_cpu=*/false);
  if (returned) TakeBackFromClass(t, m);
}

void FifoCentralizedScheduler::TaskPriorityChanged(const Message& m) {
  bool returned = false;
  FifoTask& t = Track(m, &returned);
  RingMessage(t, /*off_cpu=*/false);
  if (returned) TakeBackFromClass(t, m);
}

void FifoCentralizedScheduler::TaskOnCpu(const Message& m) {
  RingMessage(Track(m), /*off_cpu=*/false);
}

void FifoCentralizedScheduler::CpuAvailable(const Message& m) {
  Cpu* c = FindCpu(m.cpu());
  if (c == nullptr) return;
  c->busy = false;
  c->retry_after_ns = 0;
}

void FifoCentralizedScheduler::CpuBusy(const Message& m) {
  // Not for our own CPU: the class sends CPU_AVAILABLE only when sched_ext
  // gets a CPU back, which ours does only while we step aside. A commit
  // there that meets a fair-class thread fails CPU_UNAVAILABLE instead.
  Cpu* c = FindCpu(m.cpu());
  if (c != nullptr && c != &agent_) c->busy = true;
}

void FifoCentralizedScheduler::RefreshBusy() {
  for (auto& [cpu, c] : cpus_) {
    if (!c.busy || !CpuFreeAgain(kernel_, cpu)) continue;
    c.busy = false;
    ++stats_.busy_cleared;
  }
}

// --- decisions ----------------------------------------------------------------

bool FifoCentralizedScheduler::Usable(Cpu& c, uint64_t now) {
  if (c.busy) return false;
  if (c.retry_after_ns != 0) {
    if (now < c.retry_after_ns) return false;
    c.retry_after_ns = 0;
  }
  return true;
}

bool FifoCentralizedScheduler::ReadRank(FifoTask& t) {
  const ThreadRank r = t.pid != 0 ? opts_.rank(t.pid) : ThreadRank{};
  uint64_t deadline = r.deadline_ns;
  if (deadline == ThreadRank::kNoDeadline && r.relative_deadline_ns != ThreadRank::kNoDeadline &&
      t.woke_ns != 0) {
    deadline = t.woke_ns + r.relative_deadline_ns;
  }
  const bool changed = r.qos != t.qos || deadline != t.order_ns;
  t.qos = r.qos;
  t.order_ns = deadline;
  return changed;
}

void FifoCentralizedScheduler::RefreshRanks(uint64_t now) {
  if (rank_read_ns_ != 0 && now >= rank_read_ns_ && now - rank_read_ns_ < kRankRereadNs) return;
  rank_read_ns_ = now;
  for (auto& [cpu, c] : cpus_) {
    if (FifoTask* t = tasks_.Find(c.current)) ReadRank(*t);
  }
  const std::vector<Tid> order(fifo_.tids().begin(), fifo_.tids().end());
  bool changed = false;
  for (Tid tid : order) {
    if (FifoTask* t = tasks_.Find(tid)) changed |= ReadRank(*t);
  }
  if (!changed) return;
  // Queued again in the order they waited: first come, first served within
  // each class still.
  for (Tid tid : order) {
    if (FifoTask* t = tasks_.Find(tid)) {
      fifo_.Remove(*t);
    } else {
      fifo_.RemoveTid(tid);
    }
  }
  for (Tid tid : order) {
    if (FifoTask* t = tasks_.Find(tid)) fifo_.PushBack(*t);
  }
}

uint32_t FifoCentralizedScheduler::RunningQos(const Cpu& c) const {
  const FifoTask* t = tasks_.Find(c.current);
  return t == nullptr ? 0 : t->qos;
}

FifoTask* FifoCentralizedScheduler::TakeFor(int cpu, uint64_t now, bool narrow_only,
                                            uint32_t min_qos) {
  std::vector<Tid> gone;
  FifoTask* found = nullptr;
  for (Tid tid : fifo_.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr) {
      gone.push_back(tid);
      continue;
    }
    if (t->qos < min_qos) break;  // the rest are of lower classes
    if (t->Waiting() && t->AllowedOn(cpu) && now >= t->not_before_ns &&
        !(narrow_only && RingEligible(*t))) {
      found = t;
      break;
    }
  }
  for (Tid tid : gone) fifo_.RemoveTid(tid);
  if (found != nullptr) {
    fifo_.Remove(*found);
    runtime_floor_ns_ = std::max(runtime_floor_ns_, found->order_ns);
  }
  return found;
}

std::vector<std::pair<FifoTask*, FifoCentralizedScheduler::Cpu*>>
FifoCentralizedScheduler::TakeNarrowToPreempt(uint64_t now) {
  std::map<Tid, uint64_t> since;
  std::vector<std::pair<uint64_t, FifoTask*>> due;  // (waiting since, thread)
  for (Tid tid : fifo_.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || !t->Waiting() || now < t->not_before_ns || RingEligible(*t)) continue;
    auto it = narrow_since_.find(tid);
    const uint64_t first = it == narrow_since_.end() ? now : it->second;
    since[tid] = first;
    if (now - first >= kNarrowWaitNs) due.emplace_back(first, t);
  }
  // Longest wait first, not FIFO order: threads displaced from their CPU go
  // back to the FIFO's head, so under affinity churn (movers that pin
  // themselves to one CPU after another) a thread pinned behind them was
  // passed over round after round: 5 s watchdog moves with deep rings.
  std::stable_sort(due.begin(), due.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<FifoTask*, Cpu*>> picks;
  CpuList picked;  // one thread per CPU
  for (auto [first, t] : due) {
    // Any CPU it may run on, also one we believe idle: the rings may keep it
    // busy with threads whose outcome we have not reaped yet (a plain commit
    // there fails CPU_UNAVAILABLE). Not one whose thread has just started:
    // two threads pinned to one CPU would take it from each other every
    // round.
    for (auto& [c, cs] : cpus_) {
      if (cs.req_active || picked.IsSet(c) || !t->AllowedOn(c) || !Usable(cs, now)) continue;
      if (cs.current != GHOST_TID_NONE && now >= cs.run_start_ns &&
          now - cs.run_start_ns < kNarrowWaitNs) {
        continue;
      }
      picks.emplace_back(t, &cs);
      picked.Set(c);
      break;
    }
  }
  // The wait counts across commits that failed meanwhile, this round's
  // preempting ones too: a thread whose commit is in flight keeps its clock
  // until it runs (HandleResult). (Restarting it at every failed commit kept
  // threads pinned to a ring-fed CPU waiting 5 s.)
  for (const auto& [tid, first] : narrow_since_) {
    const FifoTask* t = tasks_.Find(tid);
    if (t != nullptr && t->runnable && t->on_cpu < 0 && t->inflight_cpu >= 0) {
      since.emplace(tid, first);
    }
  }
  narrow_since_ = std::move(since);
  for (auto& [t, c] : picks) fifo_.Remove(*t);
  return picks;
}

FifoTask* FifoCentralizedScheduler::TakeForAgentCpu(uint64_t now, uint64_t min_wait_ns) {
  CpuList elsewhere;  // scheduled CPUs no higher class holds
  for (auto& [cpu, c] : cpus_) {
    if (!c.busy) elsewhere.Set(cpu);
  }
  // The one that has waited longest, not the FIFO's first: threads that
  // leave this CPU go back to the FIFO's head, so under affinity churn a
  // thread pinned here was passed over by movers again and again (5 s
  // watchdog moves once pinned push sped the movers up). Nor the policy's
  // first: one thread at a time runs here, and under search's least runtime
  // first a thread that had run more waited 5 s behind movers that had run
  // less. Its wait: since it became narrow (the rings), else since queued.
  FifoTask* best = nullptr;
  uint64_t best_since = 0;
  for (Tid tid : fifo_.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || !t->Waiting() || now < t->not_before_ns) continue;
    if (!t->AllowedOn(agent_.cpu) || !t->Allowed(elsewhere).Empty()) continue;
    auto it = narrow_since_.find(tid);
    const uint64_t since = std::min(it == narrow_since_.end() ? t->queued_ns : it->second, now);
    if (min_wait_ns > 0 && now - since < min_wait_ns) continue;
    if (best == nullptr || since < best_since) {
      best = t;
      best_since = since;
    }
  }
  if (best != nullptr) fifo_.Remove(*best);
  return best;
}

void FifoCentralizedScheduler::AgeRuntimeOrder(uint64_t now) {
  const uint64_t max_wait = absl::ToInt64Nanoseconds(kRuntimeMaxWait);
  std::vector<FifoTask*> aged;
  const std::deque<Tid>& q = fifo_.tids();
  for (size_t i = 0; i < q.size(); ++i) {
    FifoTask* t = tasks_.Find(q[i]);
    if (t != nullptr && !fifo_.Aged(i) && now >= t->queued_ns + max_wait) aged.push_back(t);
  }
  // Ahead of every thread not aged, behind those aged before: not just to
  // the floor, where threads that left a CPU and went back to the queue's
  // head overtook it again and again (under stress-ng's affinity stressor a
  // thread pinned to one CPU waited 5 s).
  for (FifoTask* t : aged) {
    fifo_.Remove(*t);
    fifo_.PushAged(*t);
    ++stats_.runtime_aged;
  }
}

void FifoCentralizedScheduler::HandleResult(Cpu& c) {
  const Tid tid = c.req->target();
  const uint32_t r = c.req->Done() ? c.req->result() : GHOST_TXN_ABORTED;
  const uint64_t start = c.req->commit_time_ns();
  c.req->Release();
  c.req_active = false;
  FifoTask* victim =
      c.preempting != GHOST_TID_NONE ? tasks_.Find(c.preempting) : nullptr;
  c.preempting = GHOST_TID_NONE;
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
    narrow_since_.erase(tid);  // it ran: a later wait starts afresh
    if (victim != nullptr) ++stats_.preemptions;
    if (t != nullptr && !left) {
      t->on_cpu = c.cpu;
      t->last_cpu = c.cpu;
      c.current = tid;
      c.run_start_ns = start != 0 ? start : opts_.clock();
    } else {
      c.current = GHOST_TID_NONE;  // it already came and went
      // Whatever the messages since said about it (WAKEUP, PREEMPT) stands.
      if (t != nullptr) Enqueue(*t, t->requeue_front);
    }
    return;
  }
  ++stats_.failed_commits;
  if (victim != nullptr) victim->slice_preempted = false;  // it keeps running
  if (t == nullptr) return;
  switch (r) {
    case GHOST_TXN_TARGET_STALE:
    case GHOST_TXN_AGENT_STALE:
      // Acted on old state: keep its place; the next round (after draining
      // the newer messages) decides again.
      ++stats_.stale;
      Enqueue(*t, /*front=*/true);
      return;
    case GHOST_TXN_NOT_FOUND:
      // Gone: the kernel side finds every thread it has reported until it
      // sends DEAD/DEPARTED, and that message forgets it. Until then it is
      // as good as blocked.
    case GHOST_TXN_NOT_RUNNABLE:
      if (newer) {
        Enqueue(*t, /*front=*/true);
      } else {
        t->runnable = false;  // a WAKEUP (or DEAD) will follow
      }
      return;
    case GHOST_TXN_RUNNING_ELSEWHERE: {
      if (newer) {  // it may have stopped since: its state says
        Enqueue(*t, /*front=*/true);
        return;
      }
      uint64_t since = 0;
      const int where = StatusWordCpu(kernel_, *t, &since);
      if (where < 0) {
        // Not on a CPU: the kernel side is moving it. Try again shortly.
        t->not_before_ns = opts_.clock() + kElsewhereBackoffNs;
        Enqueue(*t, /*front=*/true);
        return;
      }
      // Running (fallback, a race): note where, so no one else is put there;
      // its off-CPU message brings it back to the FIFO.
      Cpu* w = FindCpu(where);
      if (w != nullptr && w->current == GHOST_TID_NONE && !w->req_active) {
        w->current = tid;
        w->run_start_ns = since;
        t->on_cpu = where;
      }
      return;
    }
    case GHOST_TXN_CPU_UNAVAILABLE:
      c.retry_after_ns = opts_.clock() + kUnavailableBackoffNs;
      Enqueue(*t, /*front=*/true);
      return;
    case GHOST_TXN_NOT_ALLOWED:
      // Our view was behind the kernel's (with a newer message, that told).
      if (!newer && !t->RefuseAfterNotAllowed(c.cpu, UsableCpus(),
                                              opts_.clock() + kNotAllowedBackoffNs)) {
        ++stats_.not_allowed_retries;
      }
      Enqueue(*t, /*front=*/true);
      return;
    default:  // PREEMPTED, ABORTED, INVALID, a failed commit call
      Enqueue(*t, /*front=*/true);
      return;
  }
}

void FifoCentralizedScheduler::Schedule(Agent& agent) {
  ReapRings();
  RefreshBusy();
  for (auto& [cpu, c] : cpus_) {
    if (c.req_active && !c.req->in_flight()) HandleResult(c);
  }
  if (agent_.req != nullptr && agent_.req_active) {
    if (agent_.req->in_flight()) {
      // Queued on our own CPU: it runs only while we are away.
      agent.RequestYield();
    } else {
      HandleResult(agent_);
    }
  }
  HandOverPinned();
  // Nothing waits, unless entries do in the rings: with slices, a CPU past
  // its slice must still be given the one that has waited longest (below).
  bool ring_entries = false;
  if (fast_path() && opts_.slice > absl::ZeroDuration()) {
    for (const auto& [node, n] : nodes_) ring_entries |= !n.entries.empty();
  }
  if (fifo_.Empty() && !ring_entries) {
    // No narrow thread waits: keep only the clocks of commits in flight (a
    // stale clock would keep a sleeping agent awake, IdleFor).
    std::erase_if(narrow_since_, [&](const auto& e) {
      const FifoTask* t = tasks_.Find(e.first);
      return t == nullptr || t->inflight_cpu < 0;
    });
    UpdateWakeupPush();
    UpdatePinnedPush();
    return;
  }
  const uint64_t now = opts_.clock();
  if (opts_.least_runtime_first) AgeRuntimeOrder(now);
  std::vector<RunRequest*> group;
  auto open = [&](Cpu& c, FifoTask& t, uint32_t flags) {
    absl::Status s = c.req->Open({.target = t.tid,
                                  .target_barrier = t.seq,
                                  .agent_barrier = agent.barrier(),
                                  .queue = agent.queue(),
                                  .commit_flags = flags});
    if (!s.ok()) {
      Enqueue(t, /*front=*/true);
      return false;
    }
    t.inflight_cpu = c.cpu;
    t.left_while_inflight = false;
    t.Note(FifoTask::Event::kCommit, flags, c.cpu, t.seq);
    c.req_active = true;
    c.req_open_ns = now;
    group.push_back(c.req.get());
    return true;
  };
  // Idle CPUs get the oldest waiting threads they may run: through the
  // rings (fast path), or by transactions.
  // A thread some CPU of a node may not run (a narrow mask) is not pushed:
  // that CPU's consumer would drop it, again and again. It is committed.
  if (fast_path()) FillRings(agent, now);
  // Narrow threads that have waited kNarrowWaitNs go first, preempting (one
  // per CPU): a plain commit (below) fails wherever the rings keep their
  // CPUs busy, and with deep rings that is everywhere.
  if (fast_path()) {
    for (auto [t, c] : TakeNarrowToPreempt(now)) {
      // Without the agent barrier: under churn a message arrives during
      // nearly every round, and these commits, retried round after round,
      // failed AGENT_STALE for seconds. The class still checks the thread's
      // seqnum and the CPU when it applies them.
      if (!open(*c, *t, GHOST_TXN_F_PREEMPT | GHOST_TXN_F_NO_BARRIER)) continue;
      ++stats_.narrow_preemptions;
      c->preempting = c->current;
      if (FifoTask* v = tasks_.Find(c->current)) v->slice_preempted = true;
    }
  }
  if (opts_.place) {
    // Each waiting thread, first in the queue first, where the policy's
    // placement puts it (or nowhere this round).
    CpuList idle;
    for (auto& [cpu, c] : cpus_) {
      if (!c.req_active && c.current == GHOST_TID_NONE && Usable(c, now)) idle.Set(cpu);
    }
    const std::vector<Tid> order(fifo_.tids().begin(), fifo_.tids().end());
    for (Tid tid : order) {
      if (idle.Empty()) break;
      FifoTask* t = tasks_.Find(tid);
      if (t == nullptr || !t->Waiting() || now < t->not_before_ns) continue;
      CpuList usable = idle & t->affinity;
      for (int cpu : t->refused.ToVector()) usable.Clear(cpu);
      if (usable.Empty()) continue;
      const int pick = opts_.place({.last_cpu = t->last_cpu,
                                    .idle = usable,
                                    .waited_ns = now - std::min(now, t->queued_ns)});
      if (pick < 0) {
        ++stats_.placements_held;
        continue;
      }
      if (!usable.IsSet(pick)) {
        // The policy's bug, not the thread's: it waits for a correct answer.
        ++stats_.placements_refused;
        continue;
      }
      fifo_.Remove(*t);
      if (opts_.least_runtime_first) runtime_floor_ns_ = std::max(runtime_floor_ns_, t->order_ns);
      const int last = t->last_cpu;
      if (open(cpus_.at(pick), *t, 0)) CountPlacement(last, pick);
      idle.Clear(pick);
    }
  } else {
    for (auto& [cpu, c] : cpus_) {
      if (fifo_.Empty()) break;
      if (c.req_active || c.current != GHOST_TID_NONE || !Usable(c, now)) continue;
      FifoTask* t = TakeFor(cpu, now, /*narrow_only=*/fast_path());
      if (t == nullptr) continue;
      const int last = t->last_cpu;
      if (open(c, *t, 0)) CountPlacement(last, cpu);
    }
  }
  // QoS classes (PolicyOptions::rank): a waiting thread of a higher class than
  // a running one takes its CPU at once, the lowest class's CPU first; the
  // thread it displaces keeps its turn (ahead of its equals in its class).
  if (opts_.rank && !fifo_.Empty()) {
    RefreshRanks(now);
    std::vector<Cpu*> running;
    for (auto& [cpu, c] : cpus_) {
      if (!c.req_active && c.current != GHOST_TID_NONE && Usable(c, now)) running.push_back(&c);
    }
    std::stable_sort(running.begin(), running.end(), [&](const Cpu* a, const Cpu* b) {
      return RunningQos(*a) < RunningQos(*b);
    });
    for (Cpu* c : running) {
      const uint32_t below = RunningQos(*c);
      if (fifo_.Empty() || fifo_.HeadQos() <= below) break;
      FifoTask* t = TakeFor(c->cpu, now, /*narrow_only=*/false, below + 1);
      if (t == nullptr || !open(*c, *t, GHOST_TXN_F_PREEMPT)) continue;
      ++stats_.qos_preemptions;
      c->preempting = c->current;
    }
  }
  // Slices: threads that ran past theirs make room for waiting ones (of their
  // QoS class or a higher one). With the rings, an entry of the CPU's node's
  // ring that has itself waited a slice
  // comes first: it is taken back and committed here. (Giving the CPU to the
  // FIFO's head ran younger threads first, again and again, while an entry
  // waited for a CPU that never went through ops.dispatch: a 5 s watchdog
  // move of an unpinned thread under stress-ng.) Entries that have waited
  // less are left to the CPUs' dispatch, as before.
  if (opts_.slice > absl::ZeroDuration()) {
    const uint64_t slice_ns = absl::ToInt64Nanoseconds(opts_.slice);
    const uint64_t batch_slice_ns = absl::ToInt64Nanoseconds(opts_.batch_slice);
    for (auto& [cpu, c] : cpus_) {
      if (c.req_active || c.current == GHOST_TID_NONE || !Usable(c, now)) continue;
      const bool batch = opts_.rank && RunningQos(c) < opts_.batch_below;
      const uint64_t s = batch ? batch_slice_ns : slice_ns;
      if (now < c.run_start_ns || now - c.run_start_ns < s) continue;
      FifoTask* t = fast_path() ? TakeFromRing(cpu, now) : nullptr;
      if (t != nullptr) {
        ++stats_.ring_slice_takes;
      } else if (!fifo_.Empty()) {
        t = TakeFor(cpu, now, /*narrow_only=*/false, RunningQos(c));
      }
      if (t == nullptr) continue;
      if (!open(c, *t, GHOST_TXN_F_PREEMPT)) continue;
      c.preempting = c.current;
      if (FifoTask* v = tasks_.Find(c.current)) v->slice_preempted = true;
    }
  }
  // The agent's own CPU, for a thread that may run nowhere else.
  // Also in place of a thread that has had it for kNarrowWaitNs, for one
  // that has waited as long: a thread committed here stays on this CPU's
  // runqueue (it runs only while we step aside), and threads pinned here
  // waited behind it for the watchdog (with the rings; and without them,
  // under search: stress-ng's affinity stressor, 5 s).
  bool yield = false;
  if (agent_.req != nullptr && !agent_.req_active && Usable(agent_, now)) {
    if (agent_.current == GHOST_TID_NONE) {
      if (FifoTask* t = TakeForAgentCpu(now)) yield = open(agent_, *t, 0);
    } else if (now >= agent_.run_start_ns && now - agent_.run_start_ns >= kNarrowWaitNs) {
      if (FifoTask* t = TakeForAgentCpu(now, kNarrowWaitNs)) {
        yield = open(agent_, *t, GHOST_TXN_F_PREEMPT | GHOST_TXN_F_NO_BARRIER);
        if (yield) {
          ++stats_.narrow_preemptions;
          agent_.preempting = agent_.current;
        }
      }
    }
  }
  UpdateWakeupPush();
  UpdatePinnedPush();
  if (group.empty()) return;
  ++stats_.rounds_committed;
  (void)CommitGroup(kernel_, group);  // failed calls abort the requests
  // Back to front, so failed targets return to the FIFO head in their order.
  for (auto it = group.rbegin(); it != group.rend(); ++it) {
    Cpu* c = FindCpu((*it)->cpu());
    if (!c->req->in_flight()) HandleResult(*c);
  }
  if (yield && agent_.req_active) {
    ++stats_.agent_cpu_commits;
    agent.RequestYield();
  }
}

void FifoCentralizedScheduler::HandOverPinned() {
  if (!opts_.pinned_push || !hand_over_ok_ || fifo_.Empty()) return;
  std::map<int, std::vector<KernelSide::HandOverEntry>> batches;
  CpuList passed;  // CPUs an older waiting thread may run on: not overtaken
  for (Tid tid : fifo_.tids()) {
    const FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || !t->Waiting()) continue;
    const int cpu = t->affinity.Size() == 1 ? t->affinity.ToVector()[0] : -1;
    if (cpu >= 0 && cpus_.contains(cpu) && !passed.IsSet(cpu) && t->AllowedOn(cpu) &&
        t->not_before_ns == 0 && batches[cpu].size() < GHOST_HAND_OVER_MAX) {
      batches[cpu].push_back({.tid = tid, .seqnum = t->seq});
      continue;
    }
    passed |= t->affinity;
  }
  for (auto& [cpu, batch] : batches) {
    if (!hand_over_ok_) return;
    for (FifoTask* t : HandOverToClass(kernel_, tasks_, cpu, absl::MakeSpan(batch),
                                       &hand_over_ok_, &stats_.handed_over,
                                       &stats_.hand_over_refused)) {
      fifo_.Remove(*t);
      narrow_since_.erase(t->tid);
    }
  }
}

void FifoCentralizedScheduler::UpdatePinnedPush() {
  if (!opts_.pinned_push) return;
  // The agent's own CPU too: the class queues a thread there only while the
  // agent sleeps on its queue (pinned.bpf.h), when the CPU is the threads'.
  const bool agent_cpu = agent_.req != nullptr;
  CpuList scheduled;
  for (const auto& [cpu, c] : cpus_) scheduled.Set(cpu);
  if (agent_cpu) scheduled.Set(agent_.cpu);
  CpuList waited;  // scheduled CPUs a thread of ours waits for
  for (auto& [node, n] : nodes_) {
    // Pruned here too: with nothing in the FIFO no round prunes them, and
    // the entries of every run would pile up.
    if (PruneEntries(n) > 0) {
      waited |= n.cpus;
      // A sleeping agent's CPU consumes from its node's ring.
      if (agent_cpu && kernel_.NodeOfCpu(agent_.cpu) == n.node) waited.Set(agent_.cpu);
    }
  }
  for (Tid tid : fifo_.tids()) {
    if ((waited & scheduled) == scheduled) break;  // a long FIFO: no need to read on
    const FifoTask* t = tasks_.Find(tid);
    if (t != nullptr && t->Waiting()) waited |= t->affinity;
  }
  auto update = [&](Cpu& c) {
    const bool want = !waited.IsSet(c.cpu);
    if (want == c.pinned_push) return;
    kernel_.SetPinnedPush(c.cpu, want);
    c.pinned_push = want;
  };
  for (auto& [cpu, c] : cpus_) update(c);
  if (agent_cpu) update(agent_);
}

absl::Duration FifoCentralizedScheduler::IdleFor(const Agent& agent) {
  if (!fast_path() || !fifo_.Empty() || !narrow_since_.empty()) return absl::ZeroDuration();
  if (agent_.req != nullptr && agent_.req_active) return absl::ZeroDuration();
  for (const auto& [cpu, c] : cpus_) {
    if (c.req_active) return absl::ZeroDuration();
  }
  // A running thread's slice is checked when the agent looks again.
  return opts_.slice > absl::ZeroDuration() ? opts_.slice : absl::InfiniteDuration();
}

// --- fast path ----------------------------------------------------------------

absl::StatusOr<bool> FifoCentralizedScheduler::SetUpRings(EnclaveId enclave) {
  std::map<int, Node> nodes;
  for (auto& [cpu, c] : cpus_) {
    const int node = kernel_.NodeOfCpu(cpu);
    // Beyond the rings' nodes: transactions only.
    if (node < 0 || node >= GHOST_RING_MAX_NODES) return false;
    nodes[node].node = node;
    nodes[node].cpus.Set(cpu);
  }
  for (auto& [node, n] : nodes) {
    ghost_ring* region = kernel_.RingRegion(enclave, node);
    if (region == nullptr) return false;  // no rings: transactions only
    if (Ring::InUse(region)) {
      // An earlier agent's ring (live upgrade, resync): continue it. Its
      // entries nobody claimed go back (the threads are ours through the
      // status words); claimed ones end as RAN or STALE and are reaped as
      // reports about (tid, seqnum) like ours.
      absl::StatusOr<Ring> r = Ring::Attach(region);
      if (!r.ok()) return r.status();
      n.ring.emplace(std::move(*r));
      stats_.attached_entries += n.ring->unreaped();
      // A position the earlier agent took and never published (killed in
      // its push) would hold the reaper for good. It is gone: we hold its
      // enclave's lock.
      if (absl::StatusOr<int> a = n.ring->AbandonDeadPushes(); a.ok()) {
        stats_.attached_abandoned += *a;
      } else {
        absl::FPrintF(stderr, "%s: node %d's ring keeps an earlier agent's unpublished push: %s\n",
                      FifoCentralizedPolicy::kName, node, a.status().message());
      }
      n.ring->RevokeAll();
    } else {
      absl::StatusOr<Ring> r = Ring::Create(region, opts_.ring_sizes.For(node), node);
      if (!r.ok()) return r.status();
      n.ring.emplace(std::move(*r));
    }
    n.ring->SetSteal(opts_.ring_steal);  // this agent's choice, an earlier one's or not
  }
  enclave_ = enclave;
  nodes_ = std::move(nodes);
  return true;
}

std::vector<int> FifoCentralizedScheduler::RingNodes() const {
  std::vector<int> out;
  for (const auto& [node, n] : nodes_) out.push_back(node);
  return out;
}

size_t FifoCentralizedScheduler::RingDepth(int node) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return 0;
  size_t depth = 0;
  for (auto [tid, pos] : it->second.entries) {
    const FifoTask* t = tasks_.Find(tid);
    if (t != nullptr && t->ring_node == node && t->ring_pos == pos) ++depth;
  }
  return depth;
}

FifoTask* FifoCentralizedScheduler::TakeFromRing(int cpu, uint64_t now) {
  const uint64_t slice_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(opts_.slice));
  auto it = nodes_.find(kernel_.NodeOfCpu(cpu));
  if (it == nodes_.end() || !it->second.ring.has_value()) return nullptr;
  Node& n = it->second;
  FifoTask* taken = nullptr;
  for (auto [tid, pos] : n.entries) {  // oldest first
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || t->ring_node != n.node || t->ring_pos != pos || t->ring_revoke_lost ||
        !t->AllowedOn(cpu)) {
      continue;
    }
    // Entries are in push order: the rest waited less than this one.
    if (now < t->ring_push_ns + slice_ns) break;
    if (RevokeEntry(n, *t)) {
      taken = t;
      break;
    }
  }
  PruneEntries(n);
  return taken;
}

void FifoCentralizedScheduler::ClearRing(FifoTask& t) {
  t.ring_node = -1;
  t.ring_left = false;
  t.ring_revoke_lost = false;
}

void FifoCentralizedScheduler::RingMessage(FifoTask& t, bool off_cpu) {
  if (t.ring_node < 0) return;
  if (off_cpu) t.ring_left = true;
  if (t.ring_revoke_lost) return;  // claimed: its outcome is on the way
  // Ours again: it keeps its turn, unless the message says otherwise.
  if (RevokeEntry(nodes_.at(t.ring_node), t)) Enqueue(t, /*front=*/true);
}

bool FifoCentralizedScheduler::RevokeEntry(Node& n, FifoTask& t) {
  switch (n.ring->Revoke(t.ring_pos)) {
    case RingRevoke::kRevoked:
      ++stats_.revokes_won;
      ClearRing(t);
      return true;
    case RingRevoke::kLost:
      ++stats_.revokes_lost;
      t.ring_revoke_lost = true;
      return false;
    case RingRevoke::kUnpublished:
    case RingRevoke::kGone:
      // Our pushes publish before they return and outcomes clear ring_node
      // when reaped: neither happens. Keep waiting for the outcome.
      t.ring_revoke_lost = true;
      return false;
  }
  return false;
}

void FifoCentralizedScheduler::ReapRings() {
  for (auto& [node, n] : nodes_) {
    n.ring->Reap([this, node = node](const RingOutcomeRecord& rec) { HandleOutcome(node, rec); });
  }
  if (!early_.empty()) PruneEarlyOutcomes();
}

bool FifoCentralizedScheduler::AdoptWakeupEntry(FifoTask& t, const Message& m) {
  const ghost_msg_task_wakeup& w = m.raw().wakeup;
  auto it = nodes_.find(static_cast<int>(w.ring_node));
  if (it == nodes_.end() || !it->second.ring.has_value()) return false;
  Node& n = it->second;
  auto early = early_.find({n.node, w.ring_pos});
  const bool reaped = early != early_.end();
  if (!reaped && !n.ring->Unreaped(w.ring_pos)) return false;  // not a live entry (an old ring's)
  ++stats_.wakeup_entries[n.node];
  fifo_.Remove(t);
  t.ring_node = n.node;
  t.ring_pos = w.ring_pos;
  t.ring_seq = m.seqnum();
  t.ring_push_ns = m.time_ns();
  t.ring_left = false;
  t.ring_revoke_lost = false;
  t.requeue_front = false;
  if (reaped) {
    const RingOutcomeRecord rec = early->second.rec;
    early_.erase(early);
    HandleOutcome(n.node, rec);
    return true;
  }
  // Entries in push order (TakeFromRing relies on it); ours may be older
  // than pushes of ours made since the class pushed it.
  auto pos = n.entries.end();
  while (pos != n.entries.begin() && std::prev(pos)->second > w.ring_pos) --pos;
  n.entries.insert(pos, {t.tid, w.ring_pos});
  return true;
}

void FifoCentralizedScheduler::PruneEarlyOutcomes() {
  const uint64_t now = opts_.clock();
  for (auto it = early_.begin(); it != early_.end();) {
    const RingOutcomeRecord& rec = it->second.rec;
    const FifoTask* t = tasks_.Find(rec.tid);
    // Its WAKEUP was read and did not name this entry: an old report nobody
    // will claim (should not happen). A thread never heard of: most often
    // one that died and was forgotten before its entry's outcome came.
    if (t != nullptr && t->seq >= rec.seqnum) {
      ++stats_.early_dropped;
      it = early_.erase(it);
    } else if (t == nullptr && now - it->second.kept_ns > kEarlyUnknownNs) {
      ++stats_.early_expired;
      it = early_.erase(it);
    } else {
      ++it;
    }
  }
  while (early_.size() > kMaxEarlyOutcomes) {
    ++stats_.early_expired;
    early_.erase(early_.begin());
  }
}

void FifoCentralizedScheduler::UpdateWakeupPush() {
  if (!fast_path()) return;
  bool on = opts_.wakeup_push;
  if (on) {
    const uint64_t now = opts_.clock();
    for (Tid tid : fifo_.tids()) {
      const FifoTask* t = tasks_.Find(tid);
      if (t != nullptr && t->Waiting() && RingEligible(*t) && now >= t->not_before_ns) {
        on = false;  // an older thread waits for the rings: wake-ups queue behind it
        break;
      }
    }
  }
  const uint64_t slice_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(opts_.slice));
  for (auto& [node, n] : nodes_) {
    if (n.ring->wakeup_push() == on) continue;
    n.ring->SetWakeupPush(on, slice_ns);
    if (on) ++stats_.wakeup_push_on;
  }
}

void FifoCentralizedScheduler::StartedOn(FifoTask& t, int cpu) {
  fifo_.Remove(t);
  t.on_cpu = cpu;
  t.last_cpu = cpu;
  if (Cpu* c = FindCpu(cpu)) {
    c->current = t.tid;  // whatever we thought ran there has left
    c->run_start_ns = opts_.clock();
  }
}

void FifoCentralizedScheduler::HandleOutcome(int node, const RingOutcomeRecord& rec) {
  FifoTask* t = tasks_.Find(rec.tid);
  const bool ours = t != nullptr && t->ring_node == node && t->ring_pos == rec.pos;
  if (t == nullptr && !opts_.wakeup_push) return;  // forgotten (DEAD/DEPARTED)
  if (!ours && (t == nullptr || rec.seqnum > t->seq)) {
    // Newer than anything we read about the thread (or a thread we have not
    // heard of yet): the class pushed it at a wake-up whose message we have
    // not read yet. Kept for that message.
    ++stats_.early_outcomes;
    early_[{node, rec.pos}] = {.rec = rec, .kept_ns = opts_.clock()};
    return;
  }
  switch (rec.outcome) {
    case RingOutcome::kRan:
      ++stats_.ring_ran;
      ++stats_.ran_per_cpu[static_cast<int>(rec.cpu)];
      break;
    case RingOutcome::kRevoked:
      ++stats_.ring_revoked;
      break;
    case RingOutcome::kStale:
      ++stats_.stale_by_reason[rec.stale_reason];
      ++stats_.stale_per_cpu[static_cast<int>(rec.cpu)];
      break;
  }
  // Our live entry, or one we gave up on (revoked) or an earlier agent's.
  const bool left = ours && t->ring_left;
  if (ours) ClearRing(*t);
  const bool current = rec.seqnum == t->seq;
  if (!current) ++stats_.old_outcomes;
  if (rec.outcome == RingOutcome::kRan) {
    // It reached a CPU. Still there unless a message since said it left.
    if (ours ? !left : current) {
      if (t->runnable && t->inflight_cpu < 0) StartedOn(*t, static_cast<int>(rec.cpu));
    } else if (ours) {
      Enqueue(*t, t->requeue_front);  // the messages since decide
    }
    return;
  }
  if (!ours && !current) return;  // an old report: the messages since decide
  if (rec.outcome == RingOutcome::kStale && current) {
    if (rec.stale_reason == GHOST_RING_STALE_NOT_PARKED) {
      // Running or being moved without a message of ours yet (the fallback
      // ran it): as a commit's RUNNING_ELSEWHERE.
      uint64_t since = 0;
      const int where = StatusWordCpu(kernel_, *t, &since);
      if (where >= 0) {
        if (t->Waiting() || t->queued) StartedOn(*t, where);
        return;
      }
      t->not_before_ns = opts_.clock() + kElsewhereBackoffNs;
    } else if (rec.stale_reason == GHOST_RING_STALE_AFFINITY && rec.cpu < GHOST_MAX_CPUS) {
      t->refused.Set(static_cast<int>(rec.cpu));  // our mask was behind the kernel's
    }
  }
  // Parked and ours again (revoked, stale, bounced): it keeps its turn.
  Enqueue(*t, /*front=*/ours ? true : t->requeue_front);
}

bool FifoCentralizedScheduler::Covers(const FifoTask& t, const CpuList& open) {
  return !open.Empty() && t.Allowed(open) == open;
}

bool FifoCentralizedScheduler::RingEligible(const FifoTask& t) const {
  for (const auto& [node, n] : nodes_) {
    CpuList open;
    for (int cpu : n.cpus.ToVector()) {
      if (!cpus_.at(cpu).busy) open.Set(cpu);
    }
    if (Covers(t, open)) return true;
  }
  return false;
}

int FifoCentralizedScheduler::IdleCpus(const Node& n, uint64_t now) {
  int idle = 0;
  for (int cpu : n.cpus.ToVector()) {
    Cpu& c = cpus_.at(cpu);
    if (!c.req_active && c.current == GHOST_TID_NONE && Usable(c, now)) ++idle;
  }
  return idle;
}

size_t FifoCentralizedScheduler::PruneEntries(Node& n) {
  std::deque<std::pair<Tid, uint64_t>> keep;
  for (auto [tid, pos] : n.entries) {
    const FifoTask* t = tasks_.Find(tid);
    if (t != nullptr && t->ring_node == n.node && t->ring_pos == pos && !t->ring_revoke_lost) {
      keep.emplace_back(tid, pos);
    }
  }
  n.entries = std::move(keep);
  return n.entries.size();
}

void FifoCentralizedScheduler::FillRings(Agent& agent, uint64_t now) {
  struct Want {
    int idle = 0;
    int depth = 0;
    int target = 0;       // what its idle CPUs need: idle + kRingMargin
    int cap = 0;          // pushes stop here: target, or the ring's size (deep rings)
    bool closed = false;  // full or contended this round
    CpuList open;         // CPUs no higher class holds
  };
  std::map<int, Want> want;
  bool needy = false;
  for (auto& [node, n] : nodes_) {
    Want& w = want[node];
    w.idle = IdleCpus(n, now);
    w.depth = static_cast<int>(PruneEntries(n));
    for (int cpu : n.cpus.ToVector()) {
      if (!cpus_.at(cpu).busy) w.open.Set(cpu);
    }
    w.target = w.open.Empty() ? 0 : w.idle + kRingMargin;
    w.cap = opts_.deep_rings && !w.open.Empty() ? static_cast<int>(n.ring->size()) : w.target;
    if (w.idle > 0 && w.depth < w.target) needy = true;
  }
  // Rebalance: entries beyond what their node needs go back to the FIFO head
  // while another node has idle CPUs; the pushes below place them there.
  if (needy && nodes_.size() > 1) {
    for (auto& [node, n] : nodes_) {
      Want& w = want[node];
      for (auto it = n.entries.rbegin(); it != n.entries.rend() && w.depth > w.target; ++it) {
        FifoTask* t = tasks_.Find(it->first);
        bool elsewhere = false;
        for (auto& [other, ow] : want) {
          if (other != node && ow.idle > 0 && ow.depth < ow.target && Covers(*t, ow.open)) {
            elsewhere = true;
          }
        }
        if (!elsewhere) continue;
        // Lost: claimed, it runs here after all. Either way it leaves the depth.
        if (RevokeEntry(n, *t)) {
          ++stats_.rebalanced;
          Enqueue(*t, /*front=*/true);
        }
        --w.depth;
      }
      PruneEntries(n);
    }
  }
  std::array<uint32_t, GHOST_RING_MAX_NODES> kicks = {};  // the first NumNodes() are sent
  bool ring = false;
  const uint64_t slice_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(opts_.slice));
  const std::vector<Tid> order(fifo_.tids().begin(), fifo_.tids().end());
  for (Tid tid : order) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || !t->Waiting() || now < t->not_before_ns) continue;
    // Its last CPU's node if that needs entries, else the node that needs
    // most; with deep rings, then its last CPU's node, else the shallowest.
    int best = -1;
    const int last = t->last_cpu >= 0 ? kernel_.NodeOfCpu(t->last_cpu) : -1;
    for (auto& [node, w] : want) {
      if (w.closed || w.depth >= w.target || !Covers(*t, w.open)) continue;
      if (node == last) {
        best = node;
        break;
      }
      if (best < 0 || w.target - w.depth > want[best].target - want[best].depth) best = node;
    }
    const bool needed = best >= 0;
    for (auto& [node, w] : want) {  // (only deep rings have room beyond the need)
      if (needed) break;
      if (w.closed || w.depth >= w.cap || !Covers(*t, w.open)) continue;
      if (node == last) {
        best = node;
        break;
      }
      if (best < 0 || w.depth < want[best].depth) best = node;
    }
    if (best < 0) continue;  // it waits (or the agent's CPU takes it)
    Node& n = nodes_.at(best);
    Want& w = want[best];
    const RingPush p = n.ring->Push(tid, t->seq, now, slice_ns);
    if (!p.ok()) {
      if (p.status == RingPushStatus::kFull) ++stats_.ring_full;
      w.closed = true;  // kept: it stays first in the FIFO
      continue;
    }
    fifo_.Remove(*t);
    t->ring_node = best;
    t->ring_pos = p.pos;
    t->ring_seq = t->seq;
    t->ring_push_ns = now;
    t->ring_left = false;
    t->ring_revoke_lost = false;
    t->requeue_front = false;
    n.entries.emplace_back(tid, p.pos);
    ++w.depth;
    ++stats_.pushes_per_node[best];
    if (kicks[best] < static_cast<uint32_t>(w.idle)) {
      ++kicks[best];
      ring = true;
    }
  }
  if (!ring) return;
  ++stats_.doorbells;
  for (uint32_t k : kicks) stats_.doorbell_kicks += k;
  const size_t nodes = std::min<size_t>(kicks.size(), std::max(kernel_.NumNodes(), 1));
  if (!kernel_.RingDoorbell(enclave_, absl::MakeConstSpan(kicks.data(), nodes)).ok()) {
    ++stats_.doorbell_errors;
  }
}

// --- policy -------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Policy>> FifoCentralizedPolicy::Create(
    const PolicyOptions& opts, Enclave& enclave) {
  const CpuList& cpus = enclave.cpus();
  if (cpus.Size() < 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s needs at least 2 CPUs (one for the agent), enclave has %s", kName,
        cpus.ToString()));
  }
  const int agent_cpu =
      opts.global_cpu >= 0 ? opts.global_cpu : cpus.ToVector().front();
  if (agent_cpu >= GHOST_MAX_CPUS || !cpus.IsSet(agent_cpu)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "agent CPU %d is not in the enclave (%s)", agent_cpu, cpus.ToString()));
  }
  KernelSide& kernel = enclave.kernel();
  // The global agent busy-polls: no wake-ups needed.
  if (absl::Status s =
          kernel.ConfigQueueWakeup(enclave.default_queue(), agent_cpu, false);
      !s.ok()) {
    return s;
  }
  std::unique_ptr<FifoCentralizedPolicy> p(new FifoCentralizedPolicy());
  p->sched_ = std::make_unique<FifoCentralizedScheduler>(kernel, cpus,
                                                         agent_cpu, opts);
  if (opts.fast_path != PolicyOptions::FastPath::kOff) {
    absl::StatusOr<bool> on = p->sched_->SetUpRings(enclave.id());
    if (!on.ok()) return on.status();
    if (!*on && opts.fast_path == PolicyOptions::FastPath::kOn) {
      absl::FPrintF(stderr,
                    "%s: --fast-path=on, but this kernel side has no rings: "
                    "transactions only\n",
                    kName);
    }
  }
  p->agent_ = std::make_unique<Agent>(
      kernel, *p->sched_,
      AgentOptions{.cpu = agent_cpu,
                   .queue = enclave.default_queue(),
                   .global = true,
                   .idle_sleep = p->sched_->fast_path() ? opts.agent_sleep : absl::ZeroDuration()});
  return std::unique_ptr<Policy>(std::move(p));
}

std::string FifoCentralizedPolicy::StatsLine() const {
  const FifoCentralizedScheduler::Stats s = sched_->stats();
  return absl::StrFormat(
      "rounds_committed=%u commits=%u failed_commits=%u stale=%u preemptions=%u "
      "agent_cpu_commits=%u busy_cleared=%u wakeups_on_cpu=%u not_allowed_retries=%u "
      "class_held=%u class_returned=%u handed_over=%u hand_over_refused=%u "
      "placed_last_cpu=%u placed_sibling=%u placed_elsewhere=%u placed_cross_llc=%u "
      "placed_cross_node=%u placements_held=%u placements_refused=%u runtime_aged=%u",
      s.rounds_committed, s.commits, s.failed_commits, s.stale, s.preemptions,
      s.agent_cpu_commits, s.busy_cleared, s.wakeups_on_cpu, s.not_allowed_retries,
      s.class_held, s.class_returned, s.handed_over, s.hand_over_refused, s.placed_last_cpu,
      s.placed_sibling, s.placed_elsewhere, s.placed_cross_llc, s.placed_cross_node,
      s.placements_held, s.placements_refused, s.runtime_aged) +
         sched_->FastPathStatsLine() +
         (s.last_wakeup_on_cpu.empty()
              ? ""
              : " (last wakeup on a CPU: " + s.last_wakeup_on_cpu + ")");
}

std::string FifoCentralizedScheduler::FastPathStatsLine() const {
  if (!fast_path()) return " fast_path=off";
  auto per = [](const std::map<int, uint64_t>& m) {
    std::vector<std::string> parts;
    for (auto [k, v] : m) parts.push_back(absl::StrCat(k, ":", v));
    return parts.empty() ? std::string("-") : absl::StrJoin(parts, ",");
  };
  std::map<int, uint64_t> pushes, bytes, sizes, wakeup, gaps;
  uint64_t pushes_skipped = 0;
  for (const auto& [node, n] : nodes_) {
    pushes[node] = stats_.pushes_per_node[node];
    gaps[node] = n.ring->gaps_skipped();
    pushes_skipped += n.ring->stats().skipped;
    wakeup[node] = stats_.wakeup_entries[node];
    sizes[node] = n.ring->size();
    bytes[node] = sizeof(ghost_ring);
  }
  std::vector<std::string> stale;
  for (uint32_t r = 0; r < kRingStaleReasons; ++r) {
    if (stats_.stale_by_reason[r] != 0) stale.push_back(absl::StrCat(r, ":", stats_.stale_by_reason[r]));
  }
  return absl::StrFormat(
      " fast_path=on ring_size=%s ring_bytes=%s pushes=%s ran_per_cpu=%s stale_per_cpu=%s "
      "ring_ran=%u ring_revoked=%u stale_by_reason=%s revokes_won=%u revokes_lost=%u "
      "rebalanced=%u ring_full=%u doorbells=%u doorbell_kicks=%u doorbell_errors=%u "
      "old_outcomes=%u attached_entries=%u attached_abandoned=%u narrow_preemptions=%u "
      "ring_slice_takes=%u "
      "wakeup_push=%s wakeup_entries=%s early_outcomes=%u early_dropped=%u early_expired=%u "
      "wakeup_push_on=%u gaps_skipped=%s pushes_skipped=%u ring_steal=%s",
      per(sizes), per(bytes), per(pushes), per(stats_.ran_per_cpu), per(stats_.stale_per_cpu),
      stats_.ring_ran, stats_.ring_revoked, stale.empty() ? "-" : absl::StrJoin(stale, ","),
      stats_.revokes_won, stats_.revokes_lost, stats_.rebalanced, stats_.ring_full,
      stats_.doorbells, stats_.doorbell_kicks, stats_.doorbell_errors, stats_.old_outcomes,
      stats_.attached_entries, stats_.attached_abandoned, stats_.narrow_preemptions,
      stats_.ring_slice_takes,
      opts_.wakeup_push ? "on" : "off", per(wakeup), stats_.early_outcomes,
      stats_.early_dropped, stats_.early_expired, stats_.wakeup_push_on, per(gaps),
      pushes_skipped, opts_.ring_steal ? "on" : "off");
}

}  // namespace ghost
