// Scheduling classes the simulator has built in, to compare policies with:
//   baseline-fifo: non-preemptive global FIFO (the paper's "CFS-Shinjuku": a
//     thread runs until it blocks or yields; a CFS preemption keeps its turn).
//   baseline-fair: fair share, CFS-like: the runnable thread with the least
//     CPU time runs next, for a slice of sched_latency / nr_running (at least
//     the minimum granularity); woken threads get at most half a latency of
//     credit. No agent, no messages; switches cost context_switch_ns.
#ifndef GHOST_SCX_USERSPACE_SIM_BASELINE_H_
#define GHOST_SCX_USERSPACE_SIM_BASELINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/cpu_list.h"
#include "userspace/sim/machine.h"

namespace ghost {
namespace sim {

class BaselineClass : public SchedClass {
 public:
  // `cpus`: where its threads may run.
  static absl::StatusOr<std::unique_ptr<BaselineClass>> Create(const std::string& name,
                                                               Machine& machine,
                                                               const CpuList& cpus,
                                                               uint64_t switch_ns);
  static std::vector<std::string> Names();
  static bool IsBaseline(const std::string& name);
  int Spawn(uint8_t kind, uint32_t owner, bool runnable, uint64_t burst) {
    return machine_.CreateThread(kind, owner, runnable, burst);
  }

 protected:
  BaselineClass(Machine& machine, const CpuList& cpus, uint64_t switch_ns);
  // Offers every free CPU of ours to Pick.
  void Kick();
  virtual bool HasWaiting() const = 0;
  virtual void RunNext(int cpu) = 0;
  void CpuFree(int cpu) override {
    if (cpus_.IsSet(cpu)) RunNext(cpu);
  }
  void OnEvent(const Event& e) override {}

  Machine& machine_;
  CpuList cpus_;
  std::vector<int> cpu_vec_;
  uint64_t switch_ns_;
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_BASELINE_H_
