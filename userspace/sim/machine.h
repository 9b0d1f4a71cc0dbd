// The simulated machine: CPUs of a Topology, threads with compute bursts, a
// competing CFS load, and the discrete-event loop that drives them. Which
// runnable thread runs where is not decided here but by a SchedClass: the
// ghOSt kernel side (SimKernelSide, with agents) or a built-in baseline.
//
// Each CPU runs at most one thing; priority is agent > CFS > scheduled
// thread, as on the real kernel (agents are SCHED_FIFO, ghost threads sit
// below CFS).
#ifndef GHOST_SCX_USERSPACE_SIM_MACHINE_H_
#define GHOST_SCX_USERSPACE_SIM_MACHINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "userspace/cpu_list.h"
#include "userspace/sim/event_queue.h"
#include "userspace/sim/random.h"
#include "userspace/topology.h"

namespace ghost {
namespace sim {

class TraceWriter;

enum class ThreadState : uint8_t { kBlocked, kRunnable, kRunning, kDead };
enum class StopReason : uint8_t { kBlocked, kPreempted, kYield, kDead };
// What a thread does when its compute burst ends (Workload decides).
enum class Next : uint8_t { kBlock, kContinue, kYield, kExit };
// Who occupies a CPU, for CPU-share accounting and the trace.
enum Occupant : uint8_t { kIdle = 0, kThread, kCfs, kAgent, kNumOccupants };

struct SimThread {
  ThreadState state = ThreadState::kBlocked;
  int cpu = -1;                 // CPU it runs on, or last ran on
  uint32_t gen = 0;             // invalidates stale burst-end events
  uint32_t owner = 0;           // the workload's index for it
  uint8_t kind = 0;             // the workload's class of thread (metrics)
  uint64_t remaining_ns = 0;    // of the current compute burst
  uint64_t run_start_ns = 0;    // when it last went on a CPU
  uint64_t slice_end_ns = 0;    // 0: no slice
  uint64_t runtime_ns = 0;
  uint64_t woken_ns = 0;        // last wake-up (wake-to-run latency)
};

struct SimCpu {
  int thread = -1;              // running scheduled thread, or -1
  bool cfs = false;             // a CFS task holds it
  bool agent = false;           // an agent runs on it
  Occupant occ = kIdle;
  int occ_thread = -1;
  uint64_t occ_since = 0;
  uint32_t cfs_gen = 0;
};

class Machine;

// The scheduling class that owns the simulated threads.
class SchedClass {
 public:
  virtual ~SchedClass() = default;
  virtual void ThreadNew(int t) = 0;                 // created; runnable or blocked
  virtual void ThreadRunnable(int t, int waker_cpu) = 0;
  // `t` left `cpu` (already off it). The CPU is not yet offered: CpuFree follows.
  virtual void ThreadStopped(int t, int cpu, StopReason why) = 0;
  virtual void ThreadStarted(int t, int cpu) {}
  // `t`'s slice on `cpu` ran out: a new slice to go on with in place (no
  // stop, no message), or 0: it is preempted.
  virtual uint64_t RenewSlice(int t, int cpu) { return 0; }
  virtual void CpuFree(int cpu) = 0;                  // nothing runs there now
  virtual void CpuBusy(int cpu) {}                    // CFS took it
  virtual void CpuAvailable(int cpu) {}               // CFS gave it back
  virtual void OnEvent(const Event& e) = 0;           // events it scheduled
};

// Threads and their behaviour.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual void Start(Machine& m) = 0;                 // create threads, first events
  virtual void OnEvent(Machine& m, const Event& e) = 0;
  // The running thread `t` finished its burst. kContinue/kYield: set the next
  // burst with SetBurst first.
  virtual Next OnBurstEnd(Machine& m, int t) = 0;
  virtual void OnRun(Machine& m, int t) {}            // went on a CPU
};

// Extra compute a thread pays when it runs where its caches are cold: on
// another core of its last CPU's LLC (its L1/L2 refill), on another LLC of
// its node (L3), on another node (remote memory too). An SMT sibling shares
// the core's caches: free. Not from the paper (docs/SIMULATOR.md); 0 by
// default.
struct MigrationCosts {
  uint64_t core_ns = 0, llc_ns = 0, node_ns = 0;
};
// Runs that started away from the thread's last CPU, by how far.
enum MigrationKind : uint8_t { kMigratedCore = 0, kMigratedLlc, kMigratedNode, kMigrationKinds };

struct CfsLoad {
  CpuList cpus;             // CPUs that get CFS load
  double fraction = 0;      // share of each CPU's time CFS holds
  uint64_t mean_burst_ns = 500'000;
};

class Machine {
 public:
  enum EventKind : uint32_t { kBurstEnd = 0, kCfsToggle, kWorkloadEvent, kClassEvent };

  Machine(const Topology& topo, uint64_t seed);

  void SetClass(SchedClass* c) { class_ = c; }
  void SetWorkload(Workload* w) { workload_ = w; }
  void SetTrace(TraceWriter* t) { trace_ = t; }
  void SetCfsLoad(const CfsLoad& load);
  void SetMigrationCosts(const MigrationCosts& c) { migration_costs_ = c; }

  // Starts the workload (first call only) and runs events up to `end_ns`.
  void RunUntil(uint64_t end_ns);

  uint64_t now() const { return now_; }
  const Topology& topology() const { return topo_; }
  int num_cpus() const { return static_cast<int>(cpus_.size()); }
  Rng& rng() { return rng_; }
  void Schedule(uint64_t time, EventKind kind, uint32_t a, uint64_t b) {
    events_.Push(time, kind, a, b);
  }

  // Threads (workloads) ---------------------------------------------------
  int CreateThread(uint8_t kind, uint32_t owner, bool runnable, uint64_t burst_ns);
  void SetBurst(int t, uint64_t ns) { threads_[t].remaining_ns = ns; }
  // Blocked -> runnable. Waking a thread that is not blocked does nothing.
  void Wake(int t, int waker_cpu);
  int num_threads() const { return static_cast<int>(threads_.size()); }
  const SimThread& thread(int t) const { return threads_[t]; }

  // CPUs (scheduling classes) ----------------------------------------------
  const SimCpu& cpu(int c) const { return cpus_[c]; }
  bool IsFree(int c) const { return cpus_[c].thread < 0 && !cpus_[c].cfs && !cpus_[c].agent; }
  // Puts runnable `t` on free `cpu`. slice_ns > 0: preempted after that long;
  // extra_ns: switch cost the thread's CPU pays first.
  void RunThread(int cpu, int t, uint64_t slice_ns, uint64_t extra_ns = 0);
  // Takes the running thread off `cpu` (kPreempted). Returns it, or -1.
  int Preempt(int cpu);
  // An agent takes (true) or leaves (false) `cpu`. Taking preempts the thread
  // there; leaving offers the CPU to the class.
  void SetAgent(int cpu, bool on);

  // Statistics ----------------------------------------------------------------
  uint64_t events_processed() const { return events_processed_; }
  // CPU time by occupant over [0, now], summed over `cpus`.
  uint64_t OccupantNs(Occupant o) const { return occ_ns_[o]; }
  uint64_t KindRuntimeNs(uint8_t kind) const;
  uint64_t migrations(MigrationKind k) const { return migrations_[k]; }
  // Closes the accounting at now() (call once, after the last RunUntil).
  void Finish();

 private:
  void Dispatch(const Event& e);
  void BurstEnd(int t);
  void CfsToggle(int cpu);
  void StopThread(int cpu, StopReason why);
  void UpdateOccupant(int cpu);

  Topology topo_;
  Rng rng_;
  Rng cfs_rng_;
  EventQueue events_;
  std::vector<SimCpu> cpus_;
  std::vector<SimThread> threads_;
  SchedClass* class_ = nullptr;
  Workload* workload_ = nullptr;
  TraceWriter* trace_ = nullptr;
  CfsLoad cfs_;
  MigrationCosts migration_costs_;
  uint64_t migrations_[kMigrationKinds] = {};
  uint64_t now_ = 0;
  bool started_ = false;
  uint64_t events_processed_ = 0;
  uint64_t occ_ns_[kNumOccupants] = {};
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_MACHINE_H_
