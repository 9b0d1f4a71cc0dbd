#include "userspace/workloads/antagonist.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "userspace/workloads/bench_threads.h"

namespace ghost {
namespace {

struct alignas(64) Spinner {
  std::atomic<int64_t> cpu_ns{-1};
  std::atomic<int64_t> wall_ns{-1};
};

struct State {
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Spinner>> spinners;
};

}  // namespace

absl::Status ValidateAntagonistOptions(const AntagonistOptions& o) {
  return CheckRange("threads", o.threads, 1, 4096);
}

double JainFairness(const std::vector<double>& shares) {
  double sum = 0, sq = 0;
  for (double s : shares) {
    sum += s;
    sq += s * s;
  }
  if (shares.empty() || sq == 0) return 0;
  return sum * sum / (shares.size() * sq);
}

BenchResult RunAntagonist(const AntagonistOptions& o, const RunOptions& run) {
  BenchResult r{
      .workload = "antagonist", .label = run.label, .metric = "cpu_time", .threads = o.threads};
  auto st = std::make_shared<State>();
  for (int i = 0; i < o.threads; i++) st->spinners.push_back(std::make_unique<Spinner>());
  const absl::Time deadline = absl::Now() + run.duration + run.grace;
  ThreadGroup group(run.sched_ext, run.expect_class, run.enroll);
  for (int i = 0; i < o.threads; i++) {
    group.Add([st, i] {
      const int64_t cpu0 = ThreadCpuNs(), wall0 = MonotonicNs();
      volatile uint64_t sink = 0;
      while (!st->stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 4096; k++) sink = sink * 6364136223846793005ULL + 1;
      }
      st->spinners[i]->cpu_ns.store(ThreadCpuNs() - cpu0);
      st->spinners[i]->wall_ns.store(MonotonicNs() - wall0);
    });
  }
  if (absl::Status s = group.Start(deadline); !s.ok()) {
    r.error = std::string(s.message());
    r.unfinished_threads = group.JoinUntil(deadline);
    return r;
  }
  const int64_t start = MonotonicNs();
  absl::SleepFor(run.duration);
  st->stop.store(true);
  r.unfinished_threads = group.JoinUntil(deadline);
  if (std::string e = group.ClassError(); !e.empty() && r.error.empty()) r.error = e;
  const int64_t elapsed = MonotonicNs() - start;

  std::vector<double> shares;
  int64_t total_cpu = 0;
  for (int i = 0; i < o.threads; i++) {
    if (!group.Finished(i)) continue;
    const int64_t cpu = st->spinners[i]->cpu_ns.load(), wall = st->spinners[i]->wall_ns.load();
    r.latency.Record(cpu);
    total_cpu += cpu;
    shares.push_back(wall > 0 ? static_cast<double>(cpu) / wall : 0);
    r.completions++;
  }
  r.throughput = static_cast<double>(total_cpu) / elapsed;
  r.extras = {{"min_share", shares.empty() ? 0 : *std::min_element(shares.begin(), shares.end())},
              {"max_share", shares.empty() ? 0 : *std::max_element(shares.begin(), shares.end())},
              {"jain_fairness", JainFairness(shares)},
              {"cpus", static_cast<double>(AvailableCpus())}};
  return r;
}

}  // namespace ghost
