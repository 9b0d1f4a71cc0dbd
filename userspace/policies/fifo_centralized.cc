#include "userspace/policies/fifo_centralized.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
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
  }
}

FifoCentralizedScheduler::Cpu* FifoCentralizedScheduler::FindCpu(int cpu) {
  if (agent_.req != nullptr && cpu == agent_.cpu) return &agent_;
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? nullptr : &it->second;
}

Tid FifoCentralizedScheduler::CurrentOn(int cpu) const {
  if (agent_.req != nullptr && cpu == agent_.cpu) return agent_.current;
  auto it = cpus_.find(cpu);
  return it == cpus_.end() ? GHOST_TID_NONE : it->second.current;
}

// --- message handlers ---------------------------------------------------------

void FifoCentralizedScheduler::OffCpu(FifoTask& t) {
  if (t.on_cpu < 0) return;
  Cpu* c = FindCpu(t.on_cpu);
  if (c != nullptr && c->current == t.tid) c->current = GHOST_TID_NONE;
  t.on_cpu = -1;
}

void FifoCentralizedScheduler::Enqueue(FifoTask& t, bool front) {
  if (t.runnable && t.on_cpu < 0 && t.inflight_cpu >= 0) {
    t.requeue_front = front;  // HandleResult queues it if it already left
    return;
  }
  if (!t.Waiting()) return;
  if (front) {
    fifo_.PushFront(t);
  } else {
    fifo_.PushBack(t);
  }
}

void FifoCentralizedScheduler::Forget(Tid tid) {
  if (FifoTask* t = tasks_.Find(tid)) {
    OffCpu(*t);
    fifo_.Remove(*t);
  }
  tasks_.Erase(tid);
}

void FifoCentralizedScheduler::TaskNew(const Message& m) {
  FifoTask& t = tasks_.Update(m);
  Enqueue(t, /*front=*/false);
}

void FifoCentralizedScheduler::TaskWakeup(const Message& m) {
  FifoTask& t = tasks_.Update(m);
  t.runnable = true;
  Enqueue(t, /*front=*/false);
}

void FifoCentralizedScheduler::TaskBlocked(const Message& m) {
  FifoTask& t = tasks_.Update(m);
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = false;
  t.slice_preempted = false;
  fifo_.Remove(t);
}

void FifoCentralizedScheduler::TaskPreempt(const Message& m) {
  FifoTask& t = tasks_.Update(m);
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
  FifoTask& t = tasks_.Update(m);
  NoteLeftCpu(t, m);
  OffCpu(t);
  t.runnable = true;
  t.slice_preempted = false;
  Enqueue(t, /*front=*/LeftAgentCpu(m));
}

void FifoCentralizedScheduler::TaskDead(const Message& m) {
  if (tasks_.EndsAnEarlierLife(m)) return;
  tasks_.Update(m);
  Forget(m.tid());
}

void FifoCentralizedScheduler::TaskDeparted(const Message& m) { TaskDead(m); }

void FifoCentralizedScheduler::TaskAffinityChanged(const Message& m) {
  // The new mask is used at the next pick; a running thread the kernel side
  // moves off a forbidden CPU reports a PREEMPT.
  tasks_.Update(m);
}

void FifoCentralizedScheduler::TaskPriorityChanged(const Message& m) {
  tasks_.Update(m);
}

void FifoCentralizedScheduler::TaskOnCpu(const Message& m) { tasks_.Update(m); }

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

// --- decisions ----------------------------------------------------------------

bool FifoCentralizedScheduler::Usable(Cpu& c, uint64_t now) {
  if (c.busy) return false;
  if (c.retry_after_ns != 0) {
    if (now < c.retry_after_ns) return false;
    c.retry_after_ns = 0;
  }
  return true;
}

FifoTask* FifoCentralizedScheduler::TakeFor(int cpu, uint64_t now) {
  std::vector<Tid> gone;
  FifoTask* found = nullptr;
  for (Tid tid : fifo_.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr) {
      gone.push_back(tid);
      continue;
    }
    if (t->Waiting() && t->AllowedOn(cpu) && now >= t->not_before_ns) {
      found = t;
      break;
    }
  }
  for (Tid tid : gone) fifo_.RemoveTid(tid);
  if (found != nullptr) fifo_.Remove(*found);
  return found;
}

FifoTask* FifoCentralizedScheduler::TakeForAgentCpu(uint64_t now) {
  CpuList elsewhere;  // scheduled CPUs no higher class holds
  for (auto& [cpu, c] : cpus_) {
    if (!c.busy) elsewhere.Set(cpu);
  }
  for (Tid tid : fifo_.tids()) {
    FifoTask* t = tasks_.Find(tid);
    if (t == nullptr || !t->Waiting() || now < t->not_before_ns) continue;
    if (t->AllowedOn(agent_.cpu) && t->Allowed(elsewhere).Empty()) {
      fifo_.Remove(*t);
      return t;
    }
  }
  return nullptr;
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
  const FifoTaskTable::Settled settled = tasks_.SettleInflight(tid, c.req->target_barrier());
  FifoTask* t = settled.task;
  const bool newer = settled.newer, left = settled.left;
  if (r == GHOST_TXN_COMMITTED) {
    ++stats_.commits;
    if (victim != nullptr) ++stats_.preemptions;
    if (t != nullptr && !left) {
      t->on_cpu = c.cpu;
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
      if (!newer) t->refused.Set(c.cpu);  // our view was behind the kernel's
      Enqueue(*t, /*front=*/true);
      return;
    default:  // PREEMPTED, ABORTED, INVALID, a failed commit call
      Enqueue(*t, /*front=*/true);
      return;
  }
}

void FifoCentralizedScheduler::Schedule(Agent& agent) {
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
  if (fifo_.Empty()) return;
  const uint64_t now = opts_.clock();
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
    c.req_active = true;
    group.push_back(c.req.get());
    return true;
  };
  // Idle CPUs get the oldest waiting threads they may run.
  for (auto& [cpu, c] : cpus_) {
    if (fifo_.Empty()) break;
    if (c.req_active || c.current != GHOST_TID_NONE || !Usable(c, now)) continue;
    if (FifoTask* t = TakeFor(cpu, now)) open(c, *t, 0);
  }
  // Slices: threads that ran past theirs make room for waiting ones.
  if (opts_.slice > absl::ZeroDuration()) {
    const uint64_t slice_ns = absl::ToInt64Nanoseconds(opts_.slice);
    for (auto& [cpu, c] : cpus_) {
      if (fifo_.Empty()) break;
      if (c.req_active || c.current == GHOST_TID_NONE || !Usable(c, now)) continue;
      if (now < c.run_start_ns || now - c.run_start_ns < slice_ns) continue;
      FifoTask* t = TakeFor(cpu, now);
      if (t == nullptr) continue;
      if (!open(c, *t, GHOST_TXN_F_PREEMPT)) continue;
      c.preempting = c.current;
      if (FifoTask* v = tasks_.Find(c.current)) v->slice_preempted = true;
    }
  }
  // The agent's own CPU, for a thread that may run nowhere else.
  bool yield = false;
  if (agent_.req != nullptr && !agent_.req_active && agent_.current == GHOST_TID_NONE &&
      Usable(agent_, now)) {
    if (FifoTask* t = TakeForAgentCpu(now)) yield = open(agent_, *t, 0);
  }
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
  p->agent_ = std::make_unique<Agent>(
      kernel, *p->sched_,
      AgentOptions{.cpu = agent_cpu,
                   .queue = enclave.default_queue(),
                   .global = true});
  return std::unique_ptr<Policy>(std::move(p));
}

std::string FifoCentralizedPolicy::StatsLine() const {
  const FifoCentralizedScheduler::Stats s = sched_->stats();
  return absl::StrFormat(
      "rounds_committed=%u commits=%u failed_commits=%u stale=%u preemptions=%u "
      "agent_cpu_commits=%u",
      s.rounds_committed, s.commits, s.failed_commits, s.stale, s.preemptions,
      s.agent_cpu_commits);
}

}  // namespace ghost
