#include "userspace/workloads/mixed.h"

#include <time.h>

#include <atomic>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/str_format.h"
#include "userspace/workloads/bench_threads.h"

namespace ghost {
namespace {

// A worker's futex word. Only its waker moves it IDLE -> POSTED, only the
// worker POSTED -> BUSY -> IDLE, only the stopper IDLE -> STOP (terminal), so a
// posted wake-up is always served before the worker can stop.
enum : uint32_t { kIdle = 0, kPosted = 1, kBusy = 2, kStop = 3 };

struct alignas(64) Worker {
  std::atomic<uint32_t> state{kIdle};
  std::atomic<int64_t> wake_ns{0};
  std::atomic<int64_t> completions{0};
  // Owned by the worker thread until it finishes.
  LatencyRecorder wakeup;
  LatencyRecorder long_runtime;
};

struct alignas(64) Waker {
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> saturated{0};  // arrivals that found every worker busy
};

struct State {
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::unique_ptr<Waker>> wakers;
};

void SleepUntilNs(int64_t t) {
  timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void WorkerLoop(Worker& w, const MixedOptions& o, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution is_long(o.long_fraction);
  const int64_t short_ns = absl::ToInt64Nanoseconds(o.short_burst);
  const int64_t long_ns = absl::ToInt64Nanoseconds(o.long_burst);
  for (;;) {
    uint32_t s = w.state.load(std::memory_order_acquire);
    if (s == kIdle) {
      FutexWait(&w.state, kIdle);
      continue;
    }
    if (s == kStop) return;
    const int64_t start = MonotonicNs();
    w.wakeup.Record(start - w.wake_ns.load(std::memory_order_relaxed));
    w.state.store(kBusy, std::memory_order_relaxed);
    const bool lng = is_long(rng);
    ComputeFor(lng ? long_ns : short_ns);
    if (lng) w.long_runtime.Record(MonotonicNs() - start);
    w.completions.fetch_add(1, std::memory_order_relaxed);
    w.state.store(kIdle, std::memory_order_release);
  }
}

// Waker k serves workers k, k + W, k + 2W, ...
void WakerLoop(State& st, Waker& me, int k, double rate, int64_t end_ns, uint64_t seed) {
  std::vector<Worker*> mine;
  for (size_t i = k; i < st.workers.size(); i += st.wakers.size()) mine.push_back(st.workers[i].get());
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap_s(rate / st.wakers.size());
  size_t cursor = 0;
  int64_t next = MonotonicNs();
  for (;;) {
    next += static_cast<int64_t>(gap_s(rng) * 1e9);
    if (next >= end_ns) return;
    SleepUntilNs(next);
    bool woke = false;
    for (size_t n = 0; n < mine.size() && !woke; n++) {
      Worker* w = mine[(cursor + n) % mine.size()];
      if (w->state.load(std::memory_order_acquire) != kIdle) continue;
      w->wake_ns.store(MonotonicNs(), std::memory_order_relaxed);
      uint32_t idle = kIdle;
      if (w->state.compare_exchange_strong(idle, kPosted, std::memory_order_release)) {
        FutexWake(&w->state, 1);
        woke = true;
        cursor = (cursor + n + 1) % mine.size();
      }
    }
    (woke ? me.issued : me.saturated).fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

absl::Status ValidateMixedOptions(const MixedOptions& o) {
  if (absl::Status s = CheckRange("threads", o.threads, 1, 4096); !s.ok()) return s;
  if (absl::Status s = CheckRange("load", o.load, 0.001, 64); !s.ok()) return s;
  if (absl::Status s = CheckRange("wakers", o.wakers, 1, o.threads); !s.ok()) return s;
  if (absl::Status s = CheckRange("long-fraction", o.long_fraction, 0, 1); !s.ok()) return s;
  if (absl::Status s = CheckDuration("short-burst", o.short_burst, absl::Nanoseconds(1),
                                     absl::Seconds(10));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDuration("long-burst", o.long_burst, absl::Nanoseconds(1),
                                     absl::Seconds(10));
      !s.ok()) {
    return s;
  }
  if (o.cpus < 0 || o.cpus > 4096) return CheckRange("cpus", o.cpus, 0, 4096);
  double rate = MixedWakeRate(o, o.cpus > 0 ? o.cpus : AvailableCpus());
  if (rate > 1e6 * o.wakers) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--load=%g needs %.0f wake-ups/s, more than 1e6 per waker: raise --wakers or the bursts",
        o.load, rate));
  }
  return absl::OkStatus();
}

double MixedWakeRate(const MixedOptions& o, int cpus) {
  double mean_ns = (1 - o.long_fraction) * absl::ToDoubleNanoseconds(o.short_burst) +
                   o.long_fraction * absl::ToDoubleNanoseconds(o.long_burst);
  return o.load * cpus / (mean_ns / 1e9);
}

BenchResult RunMixed(const MixedOptions& o, const RunOptions& run) {
  BenchResult r{.workload = "mixed", .label = run.label, .metric = "wakeup", .threads = o.threads};
  const int cpus = o.cpus > 0 ? o.cpus : AvailableCpus();
  const double rate = MixedWakeRate(o, cpus);
  auto st = std::make_shared<State>();
  for (int i = 0; i < o.threads; i++) st->workers.push_back(std::make_unique<Worker>());
  for (int i = 0; i < o.wakers; i++) st->wakers.push_back(std::make_unique<Waker>());

  const absl::Time deadline = absl::Now() + run.duration + run.grace;
  ThreadGroup workers(run.sched_ext, run.expect_class, run.enroll), wakers(/*sched_ext=*/false);
  for (int i = 0; i < o.threads; i++) {
    workers.Add([st, o, i] { WorkerLoop(*st->workers[i], o, o.seed * 1000003 + i); });
  }
  if (absl::Status s = workers.Start(deadline); !s.ok()) {
    r.error = std::string(s.message());
    r.unfinished_threads = workers.JoinUntil(deadline);
    return r;
  }
  const int64_t start = MonotonicNs();
  const int64_t end = start + absl::ToInt64Nanoseconds(run.duration);
  for (int k = 0; k < o.wakers; k++) {
    wakers.Add([st, k, rate, end, seed = o.seed] {
      WakerLoop(*st, *st->wakers[k], k, rate, end, seed * 7919 + k);
    });
  }
  if (absl::Status s = wakers.Start(deadline); !s.ok()) r.error = std::string(s.message());
  int stuck = wakers.JoinUntil(deadline);

  // Stop idle workers; busy ones are stopped once they are idle again.
  for (auto& w : st->workers) {
    for (;;) {
      uint32_t idle = kIdle;
      if (w->state.compare_exchange_strong(idle, kStop, std::memory_order_acq_rel)) {
        FutexWake(&w->state, 1);
        break;
      }
      if (idle == kStop || absl::Now() > deadline) break;
      absl::SleepFor(absl::Microseconds(200));
    }
  }
  stuck += workers.JoinUntil(deadline);
  if (std::string e = workers.ClassError(); !e.empty() && r.error.empty()) r.error = e;
  const int64_t elapsed = MonotonicNs() - start;
  r.unfinished_threads = stuck;

  LatencyRecorder long_runtime;
  int64_t issued = 0, saturated = 0;
  for (auto& k : st->wakers) {
    issued += k->issued.load();
    saturated += k->saturated.load();
  }
  for (int i = 0; i < o.threads; i++) {
    Worker& w = *st->workers[i];
    r.completions += w.completions.load();
    if (!workers.Finished(i)) continue;
    r.latency.Merge(w.wakeup);
    long_runtime.Merge(w.long_runtime);
  }
  r.lost = issued - r.completions;
  r.throughput = r.completions / (elapsed / 1e9);
  r.extras = {{"target_wakeups_per_s", rate},
              {"wakeups", static_cast<double>(issued)},
              {"saturated", static_cast<double>(saturated)},
              {"long_bursts", static_cast<double>(long_runtime.Count())},
              {"long_runtime_p50_us", long_runtime.Percentile(50) / 1e3},
              {"long_runtime_p99_us", long_runtime.Percentile(99) / 1e3}};
  return r;
}

}  // namespace ghost
