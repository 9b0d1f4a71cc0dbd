#include "userspace/policies/placement.h"

#include <utility>
#include <vector>

namespace ghost {

Distance DistanceBetween(const Topology* topo, int last_cpu, int cpu) {
  if (last_cpu < 0) return Distance::kNoLastCpu;
  if (last_cpu == cpu) return Distance::kSameCpu;
  if (topo == nullptr || last_cpu >= topo->num_cpus() || cpu >= topo->num_cpus()) {
    return Distance::kUnknown;
  }
  if (topo->cpu(last_cpu).core == topo->cpu(cpu).core) return Distance::kSibling;
  // Some machines (and emulators) report an LLC that spans nodes: the node
  // decides first.
  if (topo->numa_node(last_cpu) != topo->numa_node(cpu)) return Distance::kRemote;
  return topo->llc(last_cpu) == topo->llc(cpu) ? Distance::kSameLlc : Distance::kSameNode;
}

std::function<int(const Placement&)> NearestSiblingPlacement(
    std::shared_ptr<const Topology> topo) {
  return [topo = std::move(topo)](const Placement& p) {
    const std::vector<int> idle = p.idle.ToVector();
    int best = idle.front();
    for (int cpu : idle) {
      const Distance d = DistanceBetween(topo.get(), p.last_cpu, cpu);
      if (d == Distance::kSameCpu) return cpu;
      if (d == Distance::kSibling && DistanceBetween(topo.get(), p.last_cpu, best) != d) {
        best = cpu;
      }
    }
    return best;
  };
}

std::function<int(const Placement&)> CacheAwarePlacement(std::shared_ptr<const Topology> topo,
                                                         uint64_t hold_ns) {
  std::vector<CpuList> cores;  // each CPU's core: itself and its SMT siblings
  for (int cpu = 0; topo != nullptr && cpu < topo->num_cpus(); cpu++) {
    cores.push_back(topo->siblings(cpu));
  }
  return [topo = std::move(topo), cores = std::move(cores), hold_ns](const Placement& p) {
    // Nearest first; among equals, one whose whole core is idle (no sibling
    // to share the core's caches and pipelines with), then the lowest.
    auto whole_core_idle = [&](int cpu) {
      return cpu >= static_cast<int>(cores.size()) || (cores[cpu] & p.idle) == cores[cpu];
    };
    int best = -1;
    Distance best_d = Distance::kNoLastCpu;
    bool best_whole = false;
    for (int cpu : p.idle.ToVector()) {
      const Distance d = DistanceBetween(topo.get(), p.last_cpu, cpu);  // nearest wins
      const bool whole = whole_core_idle(cpu);
      if (best < 0 || d < best_d || (d == best_d && whole && !best_whole)) {
        best = cpu;
        best_d = d;
        best_whole = whole;
      }
    }
    // Nothing idle shares its LLC: wait for one a little before crossing.
    if (best_d > Distance::kSameLlc && best_d != Distance::kNoLastCpu && p.waited_ns < hold_ns) {
      return -1;
    }
    return best;
  };
}

}  // namespace ghost
