// One simulated experiment, end to end: a machine preset, a policy (an agent
// library policy on SimKernelSide, or a built-in baseline), a workload, a
// duration; the result is a SimReport. ghost-sim is a thin shell over this.
#ifndef GHOST_SCX_USERSPACE_SIM_SIMULATION_H_
#define GHOST_SCX_USERSPACE_SIM_SIMULATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/sim/costs.h"
#include "userspace/sim/machine.h"
#include "userspace/sim/workload.h"

namespace ghost {
namespace sim {

struct SimOptions {
  std::string policy = "fifo-centralized";  // a library policy or baseline-fifo|baseline-fair
  std::string machine = "flat21";            // preset: 20 worker CPUs + the global agent's
  std::string cpus;                          // enclave CPUs; empty: all
  std::string workload = "dispersive";       // dispersive | antagonist | pingpong
  double load = 0.5;                         // offered load / worker CPUs (RPC workloads)
  absl::Duration duration = absl::Milliseconds(200);
  absl::Duration warmup = absl::InfiniteDuration();  // infinite: duration / 10
  uint64_t seed = 1;
  int64_t slice_us = 20000;                  // policy slice (ghost-agent's default); 0: run to block
  int workers = 0;                           // 0: 10 per worker CPU (200 on 20)
  std::string service = "dispersive";        // dispersive | exponential | fixed
  double service_us = 10;                    // mean for exponential / fixed
  int batch = -1;                            // antagonist threads; -1: one per 2 worker CPUs
  int pairs = -1;                            // pingpong pairs; -1: one per worker CPU
  double cfs_load = 0;                       // CFS share of every worker CPU
  double cfs_burst_us = 500;
  std::string costs = "paper";               // paper | zero
  int watchdog_ms = 1000;
  std::string trace;                         // Chrome/Perfetto trace file
  // Fast path (issue 9): "on"/"auto" give the simulated class per-node rings
  // (the centralized FIFO then pushes to them), "off": transactions only.
  std::string fast_path = "auto";
  std::string wakeup_push = "on";            // on or off: the class pushes woken threads
  std::string ring_steal = "off";            // on or off: idle CPUs take other nodes' entries
  std::string ring_depth = "all";            // idle or all: how deep the agent fills the rings
  // --agent-sleep-us: with the fast path, the global agent sleeps on its
  // queue for up to this long when idle, its CPU running threads; 0: it spins.
  int64_t agent_sleep_us = 1000;
  std::string ring_size = "256";             // --ring-size: N or NODE:N,...
  int64_t queue_bytes = 256 * 1024;          // --queue-bytes: message queue size
  std::string hints;                         // --hints: shinjuku's hint table
  // --worker-qos: the simulated RPC application makes its own hint table and
  // gives each of its workers this QoS class as it starts them (batch threads
  // make no entry: class 0); 0: no table (or the one --hints names).
  int64_t worker_qos = 0;
  int64_t batch_below = 0;                   // --batch-below: shinjuku's sharing
  // --deadline-factor: with --worker-qos, each RPC request is due this many
  // times its service time after it arrives, written into its worker's entry
  // before the worker wakes (edf orders by it); 0: no deadlines.
  double deadline_factor = 0;
  // --migration-us=CORE,LLC,NODE: extra compute, in us, of a run that starts
  // on another core of the thread's last LLC, another LLC of its node,
  // another node (MigrationCosts); "0,0,0": none.
  std::string migration_us = "0,0,0";
};

// "CORE,LLC,NODE" in us (--migration-us), each 0..1000000.
absl::StatusOr<MigrationCosts> ParseMigrationCosts(const std::string& text);

// Every check on the options: one clear message for the first problem.
absl::Status ValidateSimOptions(const SimOptions& opts);

struct SimReport {
  std::string policy, machine, workload;
  double load = 0;
  uint64_t seed = 0;
  double duration_s = 0;
  int enclave_cpus = 0, worker_cpus = 0;
  uint64_t completed = 0;       // measured requests (pingpong: wake-ups)
  double throughput = 0;        // per second of measured time
  LatencySummary latency;       // RPC: arrival -> completion; pingpong: wake -> run
  LatencySummary wait;          // RPC: arrival -> first run
  // Shares of the machine's CPU time (all CPUs) by occupant.
  double share_thread = 0, share_cfs = 0, share_agent = 0, share_idle = 0;
  double share_batch = 0;       // antagonist threads, of all CPU time
  double deadline_missed = 0;   // --deadline-factor: measured requests done late, a fraction
  double agent_utilization = 0; // agent busy time / (agents x duration)
  uint64_t events = 0;
  // Runs that started away from the thread's last CPU (MigrationKind).
  uint64_t migrations_core = 0, migrations_llc = 0, migrations_node = 0;
  uint64_t messages = 0, messages_dropped = 0, commits = 0, txns = 0, fallback_runs = 0;
  uint64_t slice_renewals = 0;  // slices the class renewed in place (nothing waited)
  uint64_t txn_committed = 0, txn_stale = 0, txn_other_failures = 0;
  // Fast path: the simulated class's side (entries claimed, run, dropped as
  // stale; doorbells) and the policy's counters (its --stats line).
  bool fast_path = false;
  uint64_t ring_claims = 0, ring_runs = 0, ring_stale = 0, doorbells = 0, wakeup_pushes = 0;
  uint64_t ring_steals = 0;
  uint64_t doorbell_steal_kicks = 0;  // doorbell kicks of another node's CPU (stealing on)
  // --agent-sleep-us: the global agent's sleeps, threads its CPU ran meanwhile.
  uint64_t agent_sleeps = 0, agent_cpu_runs = 0;
  std::string policy_stats;
};

absl::StatusOr<SimReport> RunSimulation(const SimOptions& opts);

// "text" (aligned key: value), "csv" (header + one row) or "json".
absl::StatusOr<std::string> FormatReport(const SimReport& r, const std::string& format);
// A load-vs-latency table, one row per report.
absl::StatusOr<std::string> FormatSweep(const std::vector<SimReport>& rows,
                                        const std::string& format);
// Parses "0.1,0.5,0.9" into loads, each checked like --load.
absl::StatusOr<std::vector<double>> ParseLoads(const std::string& text);

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_SIMULATION_H_
