// A producer stalled between its head CAS and its publish (issue 9;
// docs/FAST_PATH.md, "A stalled producer"): how long the push's window lasts
// when the pushing thread shares its CPU with busy threads, and how long a
// consumer sees an unpublished slot at its index.
//
//   BM_ProducerStall/fifo:F/second:S/pass:P   one run of --stall_ms (default 1000)
//     CPU 0: the agent's pusher (SCHED_OTHER, or SCHED_FIFO 50 as ghost-agent
//            makes it when F=1) pushing and reaping as the agent does (and
//            claiming its own entries when the ring is full, so that it keeps
//            pushing), beside two busy SCHED_OTHER threads: 3 runnable
//            threads on one CPU
//     CPU 1: a consumer (claim, complete), SCHED_OTHER; with S=1 it also
//            pushes one entry per claim, as ops.enqueue pushes wake-ups on
//            consumer CPUs, so that entries pile up behind the agent's gap;
//            with P=1 it claims with its clock, as the class's consumers do,
//            and so passes a gap older than GHOST_RING_GAP_NS (P=0: never,
//            the protocol before the bound)
//
// Counters (ns unless named otherwise; percentiles are LatencyRecorder's:
// log-linear bucket upper bounds, within 1/128; max is exact):
//   pushes         the agent pusher's successful pushes
//   win_p50 / win_p99 / win_p999 / win_max, win_gt10us, win_gt1ms
//                  the agent pusher's window: head CAS to READY publish
//   gaps           unpublished slots the consumer found at its index
//   gap_p99 / gap_p999 / gap_max
//                  how long it kept seeing one (from its first look to its
//                  first look after the publish: includes the consumer's own
//                  time off its CPU, see cons_iter_max)
//   hidden_max     most pushed entries a consumer could not see while one gap
//                  sat at its index (beyond GHOST_RING_SCAN)
//   cons_iter_max  the consumer's longest loop iteration (its own stalls)
//   busy_cpu_pct   CPU share the two busy threads got on CPU 0
//   skipped        the agent pusher's pushes whose position the consumer passed
//
// Only this binary's copy of the protocol is timed: the header's accessors are
// defined here before it is included (its functions are static inline, so the
// agent's Ring::Push in libghost.a is untouched).
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "benchmark/benchmark.h"
#include "userspace/workloads/latency_recorder.h"

namespace ghost {
namespace {

// TSC at the head CAS of this thread's push in progress (0: none).
thread_local uint64_t tls_cas_tsc = 0;
thread_local LatencyRecorder* tls_window = nullptr;

}  // namespace
}  // namespace ghost

// The window opens at the push's pause point 0 (right after its head CAS)
// and closes at its READY CAS, or at its ABANDONED publish when the consumer
// passed it.
#define GHOST_RING_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GHOST_RING_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GHOST_RING_PUSH_PAUSE(at) ((at) == 0 ? (void)(ghost::tls_cas_tsc = __rdtsc()) : (void)0)
#define GHOST_RING_CAS(p, old, new) ghost::CasTimed((p), (old), (new))
#define GHOST_RING_PUBLISH(p, v) ghost::PublishTimed((p), (v))

#include <linux/types.h>

#include "kernel/ghost_ring.h"

namespace ghost {
namespace {

inline void WindowEnds(__u64 w) {
  const __u32 st = static_cast<__u32>(w & GHOST_RING_STATE_MASK);
  if (tls_cas_tsc == 0 || (st != GHOST_RING_READY && st != GHOST_RING_ABANDONED)) return;
  if (tls_window != nullptr) tls_window->Record(static_cast<int64_t>(__rdtsc() - tls_cas_tsc));
  tls_cas_tsc = 0;
}

inline __u64 CasTimed(__u64* p, __u64 old, __u64 v) {
  const __u64 seen = __sync_val_compare_and_swap(p, old, v);
  if (seen == old) WindowEnds(v);
  return seen;
}

inline void PublishTimed(__u64* p, __u64 v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
  WindowEnds(v);
}

}  // namespace
}  // namespace ghost

#include "kernel/ghost_ring_ops.h"

namespace ghost {
namespace {

int64_t stall_ms = 1000;

constexpr uint32_t kRingSize = 256;  // ghost-agent's default --ring-size
constexpr int kAgentPriority = 50;   // ghost-agent's default --agent-priority
constexpr int kBusyThreads = 2;

bool Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

uint64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

bool Unpublished(__u64 w, uint64_t pos) {
  // EMPTY(pos) with pos < head: taken, not published yet.
  return w == GHOST_RING_WORD(pos, GHOST_RING_EMPTY);
}

struct Run {
  ghost_ring* ring = nullptr;
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::string error;
  LatencyRecorder window;  // the agent pusher's
  LatencyRecorder gap;     // as the consumer saw them
  uint64_t pushes = 0;
  uint64_t skipped = 0;
  uint64_t gaps = 0;
  uint64_t hidden_max = 0;
  uint64_t cons_iter_max = 0;  // TSC ticks
  std::atomic<uint64_t> busy_cpu_ns{0};
};

void Agent(Run& run, bool fifo) {
  LatencyRecorder h;
  tls_window = &h;
  if (!Pin(0)) ++run.errors;
  if (fifo) {
    sched_param p = {.sched_priority = kAgentPriority};
    if (sched_setscheduler(0, SCHED_FIFO, &p) != 0) {
      run.error = absl::StrCat("SCHED_FIFO: ", strerror(errno), " (needs root)");
      ++run.errors;
    }
  }
  while (!run.go.load(std::memory_order_acquire)) {
  }
  uint64_t tid = 1, pushes = 0, skipped = 0;
  ghost_ring_outcome o;
  while (!run.stop.load(std::memory_order_relaxed)) {
    __u64 pos;
    const int got = ghost_ring_push(run.ring, tid, 1, 0, 0, &pos);
    if (got == GHOST_RING_PUSH_OK) {
      ++tid;
      ++pushes;
    } else if (got == GHOST_RING_PUSH_SKIPPED) {
      ++skipped;
    } else {
      // Full: consume its own entries too, so that a consumer descheduled on
      // a loaded CPU 1 does not leave the pusher with nothing to push.
      ghost_ring_entry e;
      for (int i = 0; i < 64 && ghost_ring_claim(run.ring, 0, 0, &e) == 1; ++i) {
        ghost_ring_complete(run.ring, e.pos);
      }
      while (ghost_ring_reap(run.ring, &o) == 1) {
      }
    }
  }
  // Back to SCHED_OTHER before joining, so the teardown cannot starve anyone.
  sched_param p = {.sched_priority = 0};
  sched_setscheduler(0, SCHED_OTHER, &p);
  tls_window = nullptr;
  run.window = h;
  run.pushes = pushes;
  run.skipped = skipped;
}

void Busy(Run& run) {
  if (!Pin(0)) ++run.errors;
  while (!run.go.load(std::memory_order_acquire)) {
  }
  const uint64_t start = ThreadCpuNs();
  uint64_t x = 0;
  while (!run.stop.load(std::memory_order_relaxed)) benchmark::DoNotOptimize(++x);
  run.busy_cpu_ns += ThreadCpuNs() - start;
}

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

void Consumer(Run& run, bool second_producer, bool pass) {
  LatencyRecorder gap;
  if (!Pin(1)) ++run.errors;
  while (!run.go.load(std::memory_order_acquire)) {
  }
  const uint64_t mask = kRingSize - 1;
  uint64_t gap_pos = ~0ull, gap_start = 0, gaps = 0, hidden_max = 0, iter_max = 0, tid = 1 << 30;
  uint64_t last = __rdtsc();
  while (!run.stop.load(std::memory_order_relaxed)) {
    const uint64_t now = __rdtsc();
    iter_max = std::max(iter_max, now - last);
    last = now;
    if (second_producer) {
      __u64 pos;
      // Untimed: only the agent pusher's windows are recorded.
      ghost_ring_push(run.ring, tid++, 1, 0, 0, &pos);
    }
    ghost_ring_entry e;
    if (ghost_ring_claim(run.ring, 1, pass ? MonotonicNs() : 0, &e) == 1) {
      ghost_ring_complete(run.ring, e.pos);
    }
    const uint64_t tail = GHOST_RING_LOAD(&run.ring->tail.pos);
    const uint64_t head = GHOST_RING_LOAD(&run.ring->head.pos);
    const bool at_gap =
        tail < head && Unpublished(GHOST_RING_LOAD(&run.ring->slots[tail & mask].state), tail);
    if (at_gap) {
      if (gap_pos != tail) {
        if (gap_pos != ~0ull) gap.Record(static_cast<int64_t>(now - gap_start));  // the index moved to another gap
        gap_pos = tail;
        gap_start = now;
        ++gaps;
      }
      if (head - tail > GHOST_RING_SCAN) hidden_max = std::max(hidden_max, head - tail - GHOST_RING_SCAN);
    } else if (gap_pos != ~0ull) {
      gap.Record(static_cast<int64_t>(now - gap_start));
      gap_pos = ~0ull;
    }
  }
  run.gap = gap;
  run.gaps = gaps;
  run.hidden_max = hidden_max;
  run.cons_iter_max = iter_max;
}

void BM_ProducerStall(benchmark::State& state) {
  const bool fifo = state.range(0) != 0;
  const bool second = state.range(1) != 0;
  const bool pass = state.range(2) != 0;
  if (std::thread::hardware_concurrency() < 2) {
    state.SkipWithError("needs two CPUs");
    return;
  }
  for (auto _ : state) {
    Run run;
    void* mem = ::operator new(sizeof(ghost_ring), std::align_val_t{GHOST_RING_CACHELINE});
    std::memset(mem, 0, sizeof(ghost_ring));
    run.ring = static_cast<ghost_ring*>(mem);
    ghost_ring_init(run.ring, kRingSize, 0);
    std::vector<std::thread> threads;
    threads.emplace_back(Agent, std::ref(run), fifo);
    for (int i = 0; i < kBusyThreads; ++i) threads.emplace_back(Busy, std::ref(run));
    threads.emplace_back(Consumer, std::ref(run), second, pass);
    // Calibrates the TSC over the run itself.
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t c0 = __rdtsc();
    run.go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms));
    run.stop.store(true);
    const uint64_t c1 = __rdtsc();
    const auto t1 = std::chrono::steady_clock::now();
    for (std::thread& t : threads) t.join();
    ::operator delete(mem, std::align_val_t{GHOST_RING_CACHELINE});
    if (run.errors.load() != 0) {
      state.SkipWithError(run.error.empty() ? "could not pin a thread" : run.error.c_str());
      return;
    }
    const double wall_ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    const double ns_per_tick = wall_ns / static_cast<double>(c1 - c0);
    auto ns = [&](uint64_t ticks) { return static_cast<double>(ticks) * ns_per_tick; };
    auto ticks = [&](double n) { return static_cast<uint64_t>(n / ns_per_tick); };
    state.counters["pushes"] = static_cast<double>(run.pushes);
    state.counters["skipped"] = static_cast<double>(run.skipped);
    state.counters["win_p50"] = ns(run.window.Percentile(50));
    state.counters["win_p99"] = ns(run.window.Percentile(99));
    state.counters["win_p999"] = ns(run.window.Percentile(99.9));
    state.counters["win_max"] = ns(run.window.Max());
    state.counters["win_gt10us"] = static_cast<double>(run.window.CountAbove(static_cast<int64_t>(ticks(10'000))));
    state.counters["win_gt1ms"] = static_cast<double>(run.window.CountAbove(static_cast<int64_t>(ticks(1'000'000))));
    state.counters["gaps"] = static_cast<double>(run.gaps);
    state.counters["gap_p99"] = ns(run.gap.Percentile(99));
    state.counters["gap_p999"] = ns(run.gap.Percentile(99.9));
    state.counters["gap_max"] = ns(run.gap.Max());
    state.counters["hidden_max"] = static_cast<double>(run.hidden_max);
    state.counters["cons_iter_max"] = ns(run.cons_iter_max);
    state.counters["busy_cpu_pct"] = 100.0 * static_cast<double>(run.busy_cpu_ns.load()) / wall_ns;
  }
}
BENCHMARK(BM_ProducerStall)
    ->ArgsProduct({{0, 1}, {0, 1}, {0, 1}})
    ->ArgNames({"fifo", "second", "pass"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ghost

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::StartsWith(a, "--stall_ms=") &&
        absl::SimpleAtoi(a.substr(11), &ghost::stall_ms) && ghost::stall_ms > 0) {
      continue;
    }
    std::fprintf(stderr, "unknown argument %s (this binary adds --stall_ms=N)\n", argv[i]);
    return 2;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
