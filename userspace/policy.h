// Policies by name: what ghost-agent and ghost-sim instantiate. A policy owns
// its scheduler(s) and agents; the caller runs them (threads on a real kernel)
// or drives them (the simulator calls Agent::RunOnce).
#ifndef GHOST_SCX_USERSPACE_POLICY_H_
#define GHOST_SCX_USERSPACE_POLICY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/agent.h"
#include "userspace/cpu_list.h"
#include "userspace/enclave.h"
#include "userspace/ring_config.h"
#include "userspace/topology.h"

namespace ghost {

// What a thread's hints rank it by (PolicyOptions::rank).
struct ThreadRank {
  static constexpr uint64_t kNoDeadline = ~0ULL;
  uint32_t qos = 0;                     // higher runs first
  uint64_t deadline_ns = kNoDeadline;   // the policy's clock (CLOCK_MONOTONIC for real threads)
  // Without a deadline: due this long after the thread last woke up (a hint
  // class's relative deadline; kNoDeadline: none).
  uint64_t relative_deadline_ns = kNoDeadline;
  bool operator==(const ThreadRank&) const = default;
};

// What PolicyOptions::place decides from, for one waiting thread.
struct Placement {
  int last_cpu = -1;     // where it last ran (-1: never)
  CpuList idle;          // idle CPUs it may run on; never empty
  uint64_t waited_ns = 0;  // since it was queued
};

struct PolicyOptions {
  std::string name;                             // "fifo-per-cpu", "fifo-centralized"
  // A thread that has run this long is preempted when another waits for its
  // CPU (both FIFOs); 0: threads run until they block or yield.
  absl::Duration slice = absl::ZeroDuration();
  int global_cpu = -1;                          // centralized: agent CPU (-1: first enclave CPU)
  // Now, in ns on the clock of message time_ns and txn commit_time_ns (the
  // kernel's CLOCK_MONOTONIC; the simulator's clock). Used for slices and
  // retry back-off. Empty: CLOCK_MONOTONIC.
  std::function<uint64_t()> clock;
  // Centralized FIFO's fast path (issue 9, docs/FAST_PATH.md): kAuto is on
  // when the kernel side has rings, kOn asks for it (a note on stderr if the
  // kernel side has none), kOff commits every placement as a transaction.
  enum class FastPath { kAuto, kOn, kOff };
  FastPath fast_path = FastPath::kAuto;
  RingSizes ring_sizes;  // entries per node's ring
  // Fast path: the class pushes threads it wakes into the rings itself (a BPF
  // producer at ops.enqueue), while the agent has no older thread waiting
  // for them; the agent still gets the TASK_WAKEUP and may revoke.
  bool wakeup_push = true;
  // Centralized FIFO with the fast path: an idle CPU whose own node's ring is
  // empty may take entries from the other nodes' rings (GHOST_RING_F_STEAL).
  // Off by default: an entry runs on the node the agent chose; the agent
  // rebalances between nodes itself.
  bool ring_steal = false;
  // Centralized FIFO with the fast path: its global agent sleeps on its queue
  // for up to this long when it has nothing to do (its CPU runs threads from
  // the rings meanwhile) instead of spinning. Zero: it spins (ghOSt's way).
  // 1 ms by default, with deep rings (docs/FAST_PATH.md, "The defaults since
  // 2026-12-06").
  absl::Duration agent_sleep = absl::Milliseconds(1);
  // Centralized FIFO with the fast path: push every thread a ring may take
  // (up to the ring's size), not just what the nodes' idle CPUs need: the
  // rings hold the backlog in FIFO order, so wake-ups pushed by the class
  // queue behind it, and idle CPUs never wait for the agent. The default;
  // false keeps each ring as deep as its node's idle CPUs plus one.
  bool deep_rings = true;
  // Per-CPU FIFO: while a CPU's agent has nothing waiting for its CPU, the
  // class queues a thread that may run only there on it itself (its turn is
  // all there is to decide), with no round trip (bpf/progs/pinned.bpf.h,
  // docs/FAST_PATH.md "Threads pinned to one CPU").
  bool pinned_push = true;
  // Centralized scheduler: how the thread whose kernel thread id is `pid`
  // (TASK_NEW's) ranks: its QoS class (higher runs first; a thread of a
  // higher class that waits takes the CPU of a lower one at once; a slice
  // ends only for a thread of the same class or a higher one) and, within its
  // class, its deadline (earliest first; a relative one counts from the
  // thread's wake-up; none: after every deadline, first come first served;
  // no preemption for one). Read whenever the thread is
  // queued and every millisecond while it waits or runs; a thread whose pid
  // is unknown ranks {0, no deadline}. Empty: one class, the plain FIFO.
  std::function<ThreadRank(uint32_t pid)> rank;
  // Centralized scheduler with `rank`: classes below this one are a batch
  // application's (Shinjuku's Shenango-style sharing): they run on the CPUs
  // no higher class wants, yield them at once to a higher class (as every
  // class does), and take turns among themselves every `batch_slice`, not
  // every `slice`. 0: no batch classes.
  uint32_t batch_below = 0;
  absl::Duration batch_slice = absl::Milliseconds(20);
  // Centralized scheduler: where each waiting thread goes, first in the
  // queue first: one of `Placement::idle` (CPUs it may run on that nothing of
  // ours runs on), or -1 to keep it waiting this round. Empty: each idle CPU
  // takes the first waiting thread it may run (the FIFO's way). SOL and
  // search (userspace/policies/placement.h).
  std::function<int(const Placement&)> place;
  // Centralized scheduler: within a class, the thread that has run least
  // (its runtime over its weight, as CFS's vruntime: nice counts) first,
  // instead of arrival order (search).
  bool least_runtime_first = false;
  // The machine's CPUs, caches and nodes (null: unknown), for placement and
  // its counters (placed_last_cpu, placed_sibling, ... in --stats).
  std::shared_ptr<const Topology> topology;
  // Shinjuku: the hint table (docs/HINTS.md) its threads' QoS classes come
  // from, as HintWriter::path() names it; empty: every thread in class 0.
  std::string hints;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::vector<Agent*> agents() = 0;  // to run (threads) or drive (simulator)
  virtual const char* name() const = 0;
  // The policy's own counters, "name=value" pairs on one line (ghost-agent
  // --stats); call only while its agents do not run.
  virtual std::string StatsLine() const { return ""; }
  // What the policy knows of thread `tid` (for a diagnostic: a thread the
  // class's watchdog had to move); empty if it has nothing to say.
  virtual std::string DescribeThread(Tid tid) const { return ""; }
  // Whether it places threads through the fast path's rings (reports).
  virtual bool UsesRings() const { return false; }
};

// The policies by name (PolicyNames, MakePolicy): userspace/policies/registry.h.

// "on", "off" or "auto" (--fast-path); anything else: one-line InvalidArgument.
absl::StatusOr<PolicyOptions::FastPath> ParseFastPath(absl::string_view text);

// "on" or "off" (--wakeup-push); anything else: one-line InvalidArgument.
absl::StatusOr<bool> ParseWakeupPush(absl::string_view text);
// "on" or "off" (--pinned-push); anything else: one-line InvalidArgument.
absl::StatusOr<bool> ParsePinnedPush(absl::string_view text);
// "on" or "off" (--ring-steal); anything else: one-line InvalidArgument.
absl::StatusOr<bool> ParseRingSteal(absl::string_view text);
// "idle" or "all" (--ring-depth): true for "all" (PolicyOptions::deep_rings).
absl::StatusOr<bool> ParseRingDepth(absl::string_view text);

// CLOCK_MONOTONIC in ns: the default PolicyOptions::clock.
uint64_t MonotonicNowNs();

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICY_H_
