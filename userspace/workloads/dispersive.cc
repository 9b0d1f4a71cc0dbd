#include "userspace/workloads/dispersive.h"

#include <time.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "userspace/workloads/bench_threads.h"

namespace ghost {
namespace {

enum : uint32_t { kIdle = 0, kPosted = 1, kStop = 2 };

struct Request {
  int64_t arrival_ns = 0;
  bool is_long = false;
};

struct alignas(64) Worker {
  std::atomic<uint32_t> state{kIdle};
  Request req;  // written under State::mu before state becomes kPosted
  std::atomic<int64_t> completions{0};
  LatencyRecorder latency;  // owned by the worker thread until it finishes
};

struct State {
  explicit State(int capacity) : queue(capacity) {}
  std::mutex mu;
  // Guarded by mu: waiting requests (ring), idle workers, stop.
  std::vector<Request> queue;
  size_t head = 0, count = 0;
  std::vector<int> idle;
  bool stop = false;
  int64_t arrivals = 0, long_arrivals = 0, dropped = 0;
  std::vector<std::unique_ptr<Worker>> workers;
};

void WorkerLoop(State& st, int i, int64_t short_ns, int64_t long_ns) {
  Worker& w = *st.workers[i];
  Request r;
  bool have = false;
  for (;;) {
    if (!have) {
      uint32_t s = w.state.load(std::memory_order_acquire);
      if (s == kIdle) {
        FutexWait(&w.state, kIdle);
        continue;
      }
      if (s == kStop) return;
      r = w.req;
      have = true;
    }
    ComputeFor(r.is_long ? long_ns : short_ns);
    w.latency.Record(MonotonicNs() - r.arrival_ns);
    w.completions.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> l(st.mu);
    if (st.count > 0) {
      r = st.queue[st.head];
      st.head = (st.head + 1) % st.queue.size();
      st.count--;
      continue;
    }
    have = false;
    if (st.stop) {
      w.state.store(kStop, std::memory_order_relaxed);
      return;
    }
    w.state.store(kIdle, std::memory_order_relaxed);
    st.idle.push_back(i);
  }
}

void GeneratorLoop(State& st, const DispersiveOptions& o, int64_t end_ns) {
  std::mt19937_64 rng(o.seed);
  std::exponential_distribution<double> gap_s(o.rps);
  std::bernoulli_distribution is_long(o.long_fraction);
  int64_t t = MonotonicNs();
  for (;;) {
    t += static_cast<int64_t>(gap_s(rng) * 1e9);
    if (t >= end_ns) return;
    timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    Request req{.arrival_ns = t, .is_long = is_long(rng)};
    Worker* wake = nullptr;
    {
      std::lock_guard<std::mutex> l(st.mu);
      st.arrivals++;
      st.long_arrivals += req.is_long;
      if (!st.idle.empty()) {
        wake = st.workers[st.idle.back()].get();
        st.idle.pop_back();
        wake->req = req;
        wake->state.store(kPosted, std::memory_order_release);
      } else if (st.count < st.queue.size()) {
        st.queue[(st.head + st.count) % st.queue.size()] = req;
        st.count++;
      } else {
        st.dropped++;
      }
    }
    if (wake) FutexWake(&wake->state, 1);
  }
}

}  // namespace

absl::Status ValidateDispersiveOptions(const DispersiveOptions& o) {
  if (absl::Status s = CheckRange("workers", o.workers, 1, 4096); !s.ok()) return s;
  if (absl::Status s = CheckRange("rps", o.rps, 0.001, 1e7); !s.ok()) return s;
  if (absl::Status s = CheckRange("long-request-fraction", o.long_fraction, 0, 1); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange("queue-capacity", o.queue_capacity, 1, 1 << 24); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDuration("short-request", o.short_request, absl::Nanoseconds(1),
                                     absl::Seconds(10));
      !s.ok()) {
    return s;
  }
  return CheckDuration("long-request", o.long_request, absl::Nanoseconds(1), absl::Seconds(10));
}

BenchResult RunDispersive(const DispersiveOptions& o, const RunOptions& run) {
  BenchResult r{
      .workload = "dispersive", .label = run.label, .metric = "request", .threads = o.workers};
  auto st = std::make_shared<State>(o.queue_capacity);
  for (int i = 0; i < o.workers; i++) {
    st->workers.push_back(std::make_unique<Worker>());
    st->idle.push_back(o.workers - 1 - i);  // worker 0 is handed work first
  }
  const absl::Time deadline = absl::Now() + run.duration + run.grace;
  const int64_t short_ns = absl::ToInt64Nanoseconds(o.short_request);
  const int64_t long_ns = absl::ToInt64Nanoseconds(o.long_request);
  ThreadGroup workers(run.sched_ext, run.expect_class, run.enroll), generator(/*sched_ext=*/false);
  for (int i = 0; i < o.workers; i++) {
    workers.Add([st, i, short_ns, long_ns] { WorkerLoop(*st, i, short_ns, long_ns); });
  }
  if (absl::Status s = workers.Start(deadline); !s.ok()) {
    r.error = std::string(s.message());
    r.unfinished_threads = workers.JoinUntil(deadline);
    return r;
  }
  const int64_t start = MonotonicNs();
  const int64_t end = start + absl::ToInt64Nanoseconds(run.duration);
  generator.Add([st, o, end] { GeneratorLoop(*st, o, end); });
  if (absl::Status s = generator.Start(deadline); !s.ok()) r.error = std::string(s.message());
  int stuck = generator.JoinUntil(deadline);
  std::vector<Worker*> to_wake;
  {
    std::lock_guard<std::mutex> l(st->mu);
    st->stop = true;
    for (int i : st->idle) {
      st->workers[i]->state.store(kStop, std::memory_order_release);
      to_wake.push_back(st->workers[i].get());
    }
    st->idle.clear();
  }
  for (Worker* w : to_wake) FutexWake(&w->state, 1);
  stuck += workers.JoinUntil(deadline);
  if (std::string e = workers.ClassError(); !e.empty() && r.error.empty()) r.error = e;
  const int64_t elapsed = MonotonicNs() - start;
  r.unfinished_threads = stuck;

  for (int i = 0; i < o.workers; i++) {
    r.completions += st->workers[i]->completions.load();
    if (workers.Finished(i)) r.latency.Merge(st->workers[i]->latency);
  }
  int64_t arrivals, long_arrivals, dropped;
  {
    std::lock_guard<std::mutex> l(st->mu);
    arrivals = st->arrivals;
    long_arrivals = st->long_arrivals;
    dropped = st->dropped;
  }
  r.lost = arrivals - r.completions;
  r.throughput = r.completions / (elapsed / 1e9);
  r.extras = {{"offered_rps", o.rps},
              {"arrivals", static_cast<double>(arrivals)},
              {"long_requests", static_cast<double>(long_arrivals)},
              {"dropped", static_cast<double>(dropped)}};
  return r;
}

}  // namespace ghost
