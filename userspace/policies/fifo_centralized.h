// Centralized FIFO (ghOSt's centralized FIFO policy): one global agent reads
// the enclave's default queue, keeps one FIFO of runnable threads, and each
// round hands the head threads to the idle CPUs in ONE group commit. With a
// slice, a thread that ran longer than it while others wait is preempted
// (GHOST_TXN_F_PREEMPT) and goes to the tail. The agent's CPU runs only
// threads that may run on no other CPU of the enclave it can get (pinned there,
// or allowed elsewhere only on CPUs a higher class holds): the agent commits
// such a thread to its own CPU and steps aside (Agent::RequestYield) until a
// message comes or AgentOptions::yield_for passes, then preempts it by waking.
#ifndef GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_
#define GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/policies/fifo_task.h"
#include "userspace/policy.h"
#include "userspace/run_request.h"
#include "userspace/scheduler.h"

namespace ghost {

class FifoCentralizedScheduler : public Scheduler {
 public:
  // `cpus`: the enclave's CPUs; `agent_cpu` is left out of scheduling.
  FifoCentralizedScheduler(KernelSide& kernel, const CpuList& cpus,
                           int agent_cpu, const PolicyOptions& opts);

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

  struct Stats {
    uint64_t rounds_committed = 0;  // Schedule() rounds that made a group commit
    uint64_t commits = 0;           // transactions that reached COMMITTED
    uint64_t failed_commits = 0;
    uint64_t stale = 0;             // TARGET_STALE or AGENT_STALE
    uint64_t preemptions = 0;       // slice preemptions committed
    uint64_t agent_cpu_commits = 0; // committed to the agent's own CPU
  };
  Stats stats() const { return stats_; }
  // The thread's entry (diagnostics).
  std::string Describe(Tid tid) const {
    const FifoTask* t = tasks_.Find(tid);
    return t == nullptr ? "unknown to the policy" : t->Describe();
  }
  size_t Waiting() const { return fifo_.Size(); }
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
    Tid preempting = GHOST_TID_NONE;  // the running thread req displaces
  };

  void OffCpu(FifoTask& t);
  void Enqueue(FifoTask& t, bool front);
  // The thread left the agent's own CPU (a message with off_cpu.from_cpu).
  bool LeftAgentCpu(const Message& m) const;
  void Forget(Tid tid);
  // Reads a finished transaction of `c`; puts a failed target back in front.
  void HandleResult(Cpu& c);
  // First waiting thread allowed on `cpu` (and not backing off at `now`),
  // taken out of the FIFO.
  FifoTask* TakeFor(int cpu, uint64_t now);
  bool Usable(Cpu& c, uint64_t now);
  // The scheduled CPU `cpu`, or the agent's own; nullptr if neither.
  Cpu* FindCpu(int cpu);
  // First waiting thread that may run on the agent's CPU and on no scheduled
  // CPU a higher class does not hold, taken out of the FIFO.
  FifoTask* TakeForAgentCpu(uint64_t now);

  KernelSide& kernel_;
  const PolicyOptions opts_;
  FifoTaskTable tasks_;
  FifoRunqueue fifo_;
  std::map<int, Cpu> cpus_;  // scheduled CPUs (the agent's excluded)
  Cpu agent_;                // the agent's own CPU (see the top of this file)
  Stats stats_;
};

class FifoCentralizedPolicy : public Policy {
 public:
  static constexpr const char* kName = "fifo-centralized";
  static absl::StatusOr<std::unique_ptr<Policy>> Create(
      const PolicyOptions& opts, Enclave& enclave);

  std::vector<Agent*> agents() override { return {agent_.get()}; }
  const char* name() const override { return kName; }
  std::string StatsLine() const override;
  std::string DescribeThread(Tid tid) const override { return sched_->Describe(tid); }
  FifoCentralizedScheduler& scheduler() { return *sched_; }

 private:
  FifoCentralizedPolicy() = default;
  std::unique_ptr<FifoCentralizedScheduler> sched_;
  std::unique_ptr<Agent> agent_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_FIFO_CENTRALIZED_H_
