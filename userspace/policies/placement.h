// Where a waiting thread goes (PolicyOptions::place): the decisions of SOL
// and of the search policy, nothing else. Both start from the CPU the thread
// last ran on, whose caches hold its data, and widen the circle; they differ
// in how wide and in whether a thread may wait for its circle.
#ifndef GHOST_SCX_USERSPACE_POLICIES_PLACEMENT_H_
#define GHOST_SCX_USERSPACE_POLICIES_PLACEMENT_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "userspace/policy.h"
#include "userspace/topology.h"

namespace ghost {

// How far a CPU is from a thread's last one, nearest first (kUnknown:
// another CPU of a machine whose topology is unknown).
enum class Distance { kSameCpu, kSibling, kSameLlc, kSameNode, kRemote, kUnknown, kNoLastCpu };
Distance DistanceBetween(const Topology* topo, int last_cpu, int cpu);

// SOL: the last CPU, else an idle SMT sibling of it, else the lowest idle CPU.
std::function<int(const Placement&)> NearestSiblingPlacement(
    std::shared_ptr<const Topology> topo);

// Search (the ghOSt paper, 4.4): the idle CPU nearest the last one (itself,
// an SMT sibling, its LLC (an AMD CCX), its NUMA node, then any; within a
// ring, a CPU whose SMT siblings are idle too first). When nothing in its LLC
// is idle the thread waits for one up to `hold_ns` before it crosses: a
// cache refill costs more than a short wait.
std::function<int(const Placement&)> CacheAwarePlacement(std::shared_ptr<const Topology> topo,
                                                         uint64_t hold_ns);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_PLACEMENT_H_
