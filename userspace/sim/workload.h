// The simulated applications: the paper's dispersive RPC service (Poisson
// arrivals served by a pool of worker threads), batch antagonists that soak
// up CPU, and a wake-heavy ping-pong. They create threads through a spawner
// (the ghOSt kernel side or a baseline class) and record request latencies.
#ifndef GHOST_SCX_USERSPACE_SIM_WORKLOAD_H_
#define GHOST_SCX_USERSPACE_SIM_WORKLOAD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/sim/machine.h"

namespace ghost {
namespace sim {

// Thread kinds, for CPU shares.
enum ThreadKind : uint8_t { kWorkerThread = 0, kBatchThread = 1, kPingPongThread = 2 };

// Service-time distributions of the RPC workload.
struct ServiceDist {
  enum Kind { kDispersive, kExponential, kFixed } kind = kDispersive;
  // kDispersive: `long_fraction` of requests take long_ns, the rest short_ns
  // (the paper: 0.5 % of 10 ms, 99.5 % of 4 us). Others: mean_ns.
  uint64_t short_ns = 4'000;
  uint64_t long_ns = 10'000'000;
  double long_fraction = 0.005;
  uint64_t mean_ns = 10'000;
  double Mean() const;
  uint64_t Sample(Rng& rng) const;
};

struct LatencySummary {
  uint64_t count = 0;
  double mean_ns = 0;
  uint64_t p50_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
};
// Sorts `samples` in place.
LatencySummary Summarize(std::vector<uint64_t>& samples);

using Spawner = std::function<int(uint8_t kind, uint32_t owner, bool runnable, uint64_t burst)>;

struct WorkloadOptions {
  std::string name = "dispersive";  // dispersive | antagonist | pingpong
  int workers = 200;                // RPC worker threads
  double arrival_rate = 0;          // requests per second (Poisson)
  ServiceDist service;
  int batch_threads = 0;            // antagonist: always-runnable threads
  uint64_t batch_burst_ns = 1'000'000;  // they yield after each burst
  int pairs = 0;                    // pingpong pairs
  uint64_t pingpong_work_ns = 2'000;
  uint64_t warmup_ns = 0;           // requests arriving earlier are not measured
  // RPC: each request is due `deadline_factor` times its service time after
  // it arrives (its kind, known on arrival, sets its cost and so its
  // deadline); 0: no deadlines. `set_deadline` is the application writing it
  // into the worker's hint entry before it wakes the worker.
  double deadline_factor = 0;
  std::function<void(int thread, uint64_t deadline_ns)> set_deadline;
};

class SimWorkload : public Workload {
 public:
  static absl::StatusOr<std::unique_ptr<SimWorkload>> Create(const WorkloadOptions& opts,
                                                             Spawner spawn, uint64_t seed);
  // Latency: arrival (or wake-up, pingpong) to completion (or first run).
  std::vector<uint64_t>& latencies() { return latency_; }
  // Queueing delay: arrival to first instant on a CPU (RPC requests).
  std::vector<uint64_t>& waits() { return wait_; }
  uint64_t completed() const { return completed_; }  // measured ones
  uint64_t missed() const { return missed_; }  // measured ones done after their deadline
  const WorkloadOptions& options() const { return opts_; }

 protected:
  SimWorkload(const WorkloadOptions& opts, Spawner spawn, uint64_t seed)
      : opts_(opts), spawn_(std::move(spawn)), rng_(seed) {}
  WorkloadOptions opts_;
  Spawner spawn_;
  Rng rng_;
  std::vector<uint64_t> latency_;
  std::vector<uint64_t> wait_;
  uint64_t completed_ = 0;
  uint64_t missed_ = 0;
};

std::vector<std::string> WorkloadNames();

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_WORKLOAD_H_
