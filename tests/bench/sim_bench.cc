// Simulator speed: simulated events per second of wall time on one core.
//   make build/bench/sim_bench && build/bench/sim_bench
// The "events_per_s" counter is the figure docs/SIMULATOR.md reports.
#include <benchmark/benchmark.h>

#include "userspace/sim/event_queue.h"
#include "userspace/sim/random.h"
#include "userspace/sim/simulation.h"

namespace {

// The bare event heap: push/pop with a steady population of 4096 events.
void BM_EventQueue(benchmark::State& state) {
  ghost::sim::EventQueue q;
  ghost::sim::Rng rng(1);
  uint64_t now = 0;
  for (int i = 0; i < 4096; i++) q.Push(rng.Below(1'000'000), 0, 0, 0);
  for (auto _ : state) {
    const ghost::sim::Event e = q.Pop();
    now = e.time;
    q.Push(now + rng.Below(1'000'000), 0, 0, 0);
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EventQueue);

// A whole simulation; counts the events it processed.
void RunSim(benchmark::State& state, ghost::sim::SimOptions o) {
  uint64_t events = 0;
  for (auto _ : state) {
    absl::StatusOr<ghost::sim::SimReport> r = ghost::sim::RunSimulation(o);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    events += r->events;
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}

void BM_DispersiveCentralized(benchmark::State& state) {
  ghost::sim::SimOptions o;  // ghost-sim's defaults: flat21, 200 workers
  o.duration = absl::Milliseconds(100);
  RunSim(state, o);
}
BENCHMARK(BM_DispersiveCentralized)->Unit(benchmark::kMillisecond);

void BM_DispersivePerCpu(benchmark::State& state) {
  ghost::sim::SimOptions o;
  o.policy = "fifo-per-cpu";
  o.duration = absl::Milliseconds(100);
  RunSim(state, o);
}
BENCHMARK(BM_DispersivePerCpu)->Unit(benchmark::kMillisecond);

// No agent in the loop: the simulator core alone.
void BM_DispersiveBaselineFifo(benchmark::State& state) {
  ghost::sim::SimOptions o;
  o.policy = "baseline-fifo";
  o.duration = absl::Milliseconds(100);
  RunSim(state, o);
}
BENCHMARK(BM_DispersiveBaselineFifo)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
