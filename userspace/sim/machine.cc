#include "userspace/sim/machine.h"

#include <algorithm>

#include "userspace/sim/trace_writer.h"

namespace ghost {
namespace sim {

Machine::Machine(const Topology& topo, uint64_t seed)
    : topo_(topo), rng_(seed), cfs_rng_(seed ^ 0xc0ffee0dd15ea5e5ULL),
      cpus_(topo.num_cpus()) {
  events_.Reserve(1 << 12);
}

void Machine::SetCfsLoad(const CfsLoad& load) {
  cfs_ = load;
  if (cfs_.fraction <= 0) return;
  // Start every loaded CPU at a random point of its off period.
  for (int c : cfs_.cpus.ToVector()) {
    if (c >= num_cpus()) continue;
    const double off_mean =
        static_cast<double>(cfs_.mean_burst_ns) * (1 - cfs_.fraction) / cfs_.fraction;
    Schedule(now_ + cfs_rng_.ExponentialNs(off_mean), kCfsToggle, c, cpus_[c].cfs_gen);
  }
}

int Machine::CreateThread(uint8_t kind, uint32_t owner, bool runnable, uint64_t burst_ns) {
  SimThread th;
  th.kind = kind;
  th.owner = owner;
  th.remaining_ns = burst_ns;
  th.state = runnable ? ThreadState::kRunnable : ThreadState::kBlocked;
  th.woken_ns = now_;
  threads_.push_back(th);
  const int t = static_cast<int>(threads_.size()) - 1;
  class_->ThreadNew(t);
  return t;
}

void Machine::Wake(int t, int waker_cpu) {
  SimThread& th = threads_[t];
  if (th.state != ThreadState::kBlocked) return;
  th.state = ThreadState::kRunnable;
  th.woken_ns = now_;
  class_->ThreadRunnable(t, waker_cpu);
}

void Machine::RunThread(int cpu, int t, uint64_t slice_ns, uint64_t extra_ns) {
  SimThread& th = threads_[t];
  SimCpu& c = cpus_[cpu];
  th.state = ThreadState::kRunning;
  // Another core (SMT siblings share one): its caches are cold there.
  if (th.cpu >= 0 && topo_.cpu(th.cpu).core != topo_.cpu(cpu).core) {
    const MigrationKind k = topo_.numa_node(th.cpu) != topo_.numa_node(cpu) ? kMigratedNode
                            : topo_.llc(th.cpu) != topo_.llc(cpu)           ? kMigratedLlc
                                                                            : kMigratedCore;
    ++migrations_[k];
    th.remaining_ns += k == kMigratedNode  ? migration_costs_.node_ns
                       : k == kMigratedLlc ? migration_costs_.llc_ns
                                           : migration_costs_.core_ns;
  }
  th.cpu = cpu;
  th.gen++;
  th.remaining_ns += extra_ns;
  th.run_start_ns = now_;
  th.slice_end_ns = slice_ns > 0 ? now_ + slice_ns : 0;
  c.thread = t;
  UpdateOccupant(cpu);
  uint64_t end = now_ + th.remaining_ns;
  if (th.slice_end_ns != 0) end = std::min(end, th.slice_end_ns);
  Schedule(end, kBurstEnd, t, th.gen);
  workload_->OnRun(*this, t);
  class_->ThreadStarted(t, cpu);
}

// Takes the running thread off `cpu` and charges what it ran.
void Machine::StopThread(int cpu, StopReason why) {
  SimCpu& c = cpus_[cpu];
  const int t = c.thread;
  SimThread& th = threads_[t];
  const uint64_t ran = now_ - th.run_start_ns;
  th.runtime_ns += ran;
  th.remaining_ns -= std::min(th.remaining_ns, ran);
  th.gen++;
  c.thread = -1;
  th.state = why == StopReason::kBlocked ? ThreadState::kBlocked
             : why == StopReason::kDead  ? ThreadState::kDead
                                         : ThreadState::kRunnable;
  UpdateOccupant(cpu);
  class_->ThreadStopped(t, cpu, why);
}

int Machine::Preempt(int cpu) {
  const int t = cpus_[cpu].thread;
  if (t < 0) return -1;
  StopThread(cpu, StopReason::kPreempted);
  return t;
}

void Machine::SetAgent(int cpu, bool on) {
  SimCpu& c = cpus_[cpu];
  if (c.agent == on) return;
  if (on) {
    if (c.thread >= 0) StopThread(cpu, StopReason::kPreempted);
    c.agent = true;
    UpdateOccupant(cpu);
  } else {
    c.agent = false;
    UpdateOccupant(cpu);
    if (IsFree(cpu)) class_->CpuFree(cpu);
  }
}

void Machine::BurstEnd(int t) {
  SimThread& th = threads_[t];
  const int cpu = th.cpu;
  const uint64_t ran = now_ - th.run_start_ns;
  if (ran < th.remaining_ns) {  // the slice ran out first
    if (const uint64_t renew = class_->RenewSlice(t, cpu); renew > 0) {
      th.runtime_ns += ran;
      th.remaining_ns -= ran;
      th.run_start_ns = now_;
      th.slice_end_ns = now_ + renew;
      th.gen++;
      Schedule(std::min(now_ + th.remaining_ns, th.slice_end_ns), kBurstEnd, t, th.gen);
      return;
    }
    StopThread(cpu, StopReason::kPreempted);
    if (IsFree(cpu)) class_->CpuFree(cpu);
    return;
  }
  // The burst is done: account it and ask the workload what comes next.
  th.runtime_ns += ran;
  th.remaining_ns = 0;
  th.run_start_ns = now_;
  const Next next = workload_->OnBurstEnd(*this, t);
  if (next == Next::kContinue) {
    th.gen++;
    uint64_t end = now_ + th.remaining_ns;
    if (th.slice_end_ns != 0) end = std::min(end, std::max(th.slice_end_ns, now_));
    Schedule(end, kBurstEnd, t, th.gen);
    return;
  }
  StopThread(cpu, next == Next::kBlock   ? StopReason::kBlocked
                  : next == Next::kYield ? StopReason::kYield
                                         : StopReason::kDead);
  if (IsFree(cpu)) class_->CpuFree(cpu);
}

void Machine::CfsToggle(int cpu) {
  SimCpu& c = cpus_[cpu];
  const double on_mean = static_cast<double>(cfs_.mean_burst_ns);
  const double off_mean = on_mean * (1 - cfs_.fraction) / cfs_.fraction;
  if (!c.cfs) {
    // CFS outranks scheduled threads; an agent on the CPU keeps it until it
    // leaves (SetAgent(false) then sees CFS and does not offer the CPU).
    if (c.thread >= 0) StopThread(cpu, StopReason::kPreempted);
    c.cfs = true;
    UpdateOccupant(cpu);
    class_->CpuBusy(cpu);
    Schedule(now_ + cfs_rng_.ExponentialNs(on_mean), kCfsToggle, cpu, c.cfs_gen);
  } else {
    c.cfs = false;
    UpdateOccupant(cpu);
    class_->CpuAvailable(cpu);
    if (IsFree(cpu)) class_->CpuFree(cpu);
    Schedule(now_ + cfs_rng_.ExponentialNs(off_mean), kCfsToggle, cpu, c.cfs_gen);
  }
}

void Machine::UpdateOccupant(int cpu) {
  SimCpu& c = cpus_[cpu];
  const Occupant o = c.agent ? kAgent : c.cfs ? kCfs : c.thread >= 0 ? kThread : kIdle;
  const int ot = o == kThread ? c.thread : -1;
  if (o == c.occ && ot == c.occ_thread) return;
  occ_ns_[c.occ] += now_ - c.occ_since;
  if (trace_ != nullptr) trace_->Slice(cpu, c.occ, c.occ_thread, c.occ_since, now_);
  c.occ = o;
  c.occ_thread = ot;
  c.occ_since = now_;
}

void Machine::Dispatch(const Event& e) {
  switch (e.kind) {
    case kBurstEnd:
      if (threads_[e.a].gen == e.b && threads_[e.a].state == ThreadState::kRunning) {
        BurstEnd(static_cast<int>(e.a));
      }
      break;
    case kCfsToggle:
      if (cpus_[e.a].cfs_gen == e.b) CfsToggle(static_cast<int>(e.a));
      break;
    case kWorkloadEvent:
      workload_->OnEvent(*this, e);
      break;
    default:
      class_->OnEvent(e);
      break;
  }
}

void Machine::RunUntil(uint64_t end_ns) {
  if (!started_) {
    started_ = true;
    workload_->Start(*this);
  }
  while (!events_.Empty() && events_.Top().time <= end_ns) {
    const Event e = events_.Pop();
    now_ = e.time;
    events_processed_++;
    Dispatch(e);
  }
  now_ = std::max(now_, end_ns);
}

void Machine::Finish() {
  for (int c = 0; c < num_cpus(); c++) {
    SimCpu& cpu = cpus_[c];
    occ_ns_[cpu.occ] += now_ - cpu.occ_since;
    if (trace_ != nullptr) trace_->Slice(c, cpu.occ, cpu.occ_thread, cpu.occ_since, now_);
    cpu.occ_since = now_;
  }
}

uint64_t Machine::KindRuntimeNs(uint8_t kind) const {
  uint64_t sum = 0;
  for (const SimThread& th : threads_) {
    if (th.kind != kind) continue;
    sum += th.runtime_ns;
    if (th.state == ThreadState::kRunning) sum += now_ - th.run_start_ns;
  }
  return sum;
}

}  // namespace sim
}  // namespace ghost
