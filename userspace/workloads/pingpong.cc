#include "userspace/workloads/pingpong.h"

#include <atomic>
#include <memory>
#include <vector>

#include "userspace/workloads/bench_threads.h"

namespace ghost {
namespace {

// The pair's futex word: whose turn it is.
enum : uint32_t { kPing = 0, kPong = 1, kDone = 2 };

struct alignas(64) Pair {
  std::atomic<uint32_t> turn{kPing};
  std::atomic<int64_t> round_trips{0};
  LatencyRecorder rtt;  // owned by the pinger until it finishes
};

void Pinger(Pair& p, int64_t rounds) {
  for (int64_t i = 0; i < rounds; i++) {
    const int64_t t0 = MonotonicNs();
    p.turn.store(kPong, std::memory_order_release);
    FutexWake(&p.turn, 1);
    while (p.turn.load(std::memory_order_acquire) == kPong) FutexWait(&p.turn, kPong);
    p.rtt.Record(MonotonicNs() - t0);
    p.round_trips.fetch_add(1, std::memory_order_relaxed);
  }
  p.turn.store(kDone, std::memory_order_release);
  FutexWake(&p.turn, 1);
}

void Ponger(Pair& p) {
  for (;;) {
    uint32_t t = p.turn.load(std::memory_order_acquire);
    if (t == kDone) return;
    if (t == kPing) {
      FutexWait(&p.turn, kPing);
      continue;
    }
    p.turn.store(kPing, std::memory_order_release);
    FutexWake(&p.turn, 1);
  }
}

}  // namespace

absl::Status ValidatePingpongOptions(const PingpongOptions& o) {
  if (absl::Status s = CheckRange("pairs", o.pairs, 1, 2048); !s.ok()) return s;
  return CheckRange("rounds", static_cast<double>(o.rounds), 1, 1e9);
}

BenchResult RunPingpong(const PingpongOptions& o, const RunOptions& run) {
  BenchResult r{.workload = "pingpong",
                .label = run.label,
                .metric = "round_trip",
                .threads = 2 * o.pairs};
  std::vector<std::shared_ptr<Pair>> pairs;
  for (int i = 0; i < o.pairs; i++) pairs.push_back(std::make_shared<Pair>());
  const absl::Time deadline = absl::Now() + run.duration + run.grace;
  ThreadGroup group(run.sched_ext, run.expect_class, run.enroll);
  std::vector<int> pingers;
  for (auto& p : pairs) {
    pingers.push_back(group.Add([p, rounds = o.rounds] { Pinger(*p, rounds); }));
    group.Add([p] { Ponger(*p); });
  }
  if (absl::Status s = group.Start(deadline); !s.ok()) {
    r.error = std::string(s.message());
    r.unfinished_threads = group.JoinUntil(deadline);
    return r;
  }
  const int64_t start = MonotonicNs();
  r.unfinished_threads = group.JoinUntil(deadline);
  if (std::string e = group.ClassError(); !e.empty() && r.error.empty()) r.error = e;
  const int64_t elapsed = MonotonicNs() - start;
  for (int i = 0; i < o.pairs; i++) {
    r.completions += pairs[i]->round_trips.load();
    if (group.Finished(pingers[i])) r.latency.Merge(pairs[i]->rtt);
  }
  r.lost = static_cast<int64_t>(o.pairs) * o.rounds - r.completions;
  r.throughput = r.completions / (elapsed / 1e9);
  return r;
}

}  // namespace ghost
