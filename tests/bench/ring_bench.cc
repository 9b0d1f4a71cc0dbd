// Cost of the fast-path ring protocol (kernel/ghost_ring_ops.h) on the host,
// in plain memory (the BPF side's own cost is measured through
// BPF_PROG_TEST_RUN; see docs/FAST_PATH.md).
//
//   BM_Push                  the agent's push alone (the ring drained untimed)
//   BM_PushClaimCompleteReap one entry's whole life on one thread
//   BM_PushRevokeReap        an entry the agent takes back
//   BM_Contended/threads:N   thread 0 is the agent (push, reap); the others
//                            are consumers (claim, complete). ran_per_s =
//                            entries that ran per second; full = the agent's
//                            push attempts that found the ring full.
#include <linux/types.h>

#include <atomic>
#include <thread>

#include "benchmark/benchmark.h"
#include "kernel/ghost_ring_ops.h"
#include "userspace/ring.h"

namespace ghost {
namespace {

void Drain(ghost_ring* r) {
  ghost_ring_entry e;
  while (ghost_ring_claim(r, 0, &e) == 1) ghost_ring_complete(r, e.pos);
  ghost_ring_outcome o;
  while (ghost_ring_reap(r, &o) == 1) {
  }
}

void BM_Push(benchmark::State& state) {
  RingMemory mem = AllocateRingMemory();
  Ring ring = *Ring::Create(mem.get(), GHOST_RING_MAX_SLOTS, 0);
  uint64_t tid = 1;
  for (auto _ : state) {
    if (!ring.Push(tid++, 1).ok()) {
      state.PauseTiming();
      Drain(mem.get());
      state.ResumeTiming();
      if (!ring.Push(tid++, 1).ok()) state.SkipWithError("push failed after drain");
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Push);

void BM_PushClaimCompleteReap(benchmark::State& state) {
  RingMemory mem = AllocateRingMemory();
  Ring ring = *Ring::Create(mem.get(), 1024, 0);
  uint64_t tid = 1;
  for (auto _ : state) {
    ghost_ring_entry e;
    if (!ring.Push(tid++, 1).ok() || ghost_ring_claim(mem.get(), 0, &e) != 1 ||
        ghost_ring_complete(mem.get(), e.pos) != 0 || !ring.ReapOne()) {
      state.SkipWithError("protocol step failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushClaimCompleteReap);

void BM_PushRevokeReap(benchmark::State& state) {
  RingMemory mem = AllocateRingMemory();
  Ring ring = *Ring::Create(mem.get(), 1024, 0);
  uint64_t tid = 1;
  for (auto _ : state) {
    RingPush p = ring.Push(tid++, 1);
    if (!p.ok() || ring.Revoke(p.pos) != RingRevoke::kRevoked || !ring.ReapOne()) {
      state.SkipWithError("protocol step failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PushRevokeReap);

// Shared by the threads of one BM_Contended run.
struct Shared {
  RingMemory mem = AllocateRingMemory();
  std::atomic<uint64_t> ran{0};
};
Shared* shared = nullptr;

void BM_Contended(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new Shared;
    (void)Ring::Create(shared->mem.get(), 256, 0);
  }
  // Google Benchmark starts every thread's loop together, after the setup.
  ghost_ring* r = nullptr;
  if (state.thread_index() == 0) {
    absl::StatusOr<Ring> ring = Ring::Attach(shared->mem.get());
    uint64_t tid = 1;
    for (auto _ : state) {
      // One push attempt per iteration; a full ring is reaped, never waited on.
      if (!ring->Push(tid, 1).ok()) {
        ring->Reap([](const RingOutcomeRecord&) {});
        std::this_thread::yield();  // a loaded host may run us on one core
      } else {
        ++tid;
      }
    }
    state.counters["full"] = static_cast<double>(ring->stats().full);
  } else {
    for (auto _ : state) {
      if (r == nullptr) r = shared->mem.get();
      ghost_ring_entry e;
      if (ghost_ring_claim(r, state.thread_index(), &e) == 1) {
        ghost_ring_complete(r, e.pos);
        shared->ran.fetch_add(1, std::memory_order_relaxed);
      } else {
        std::this_thread::yield();
      }
    }
  }
  if (state.thread_index() == 0) {  // every thread has left its loop (a barrier)
    // Entries that ran per second of wall time (consumers' empty claims and
    // the agent's full-ring attempts are iterations too, so no items count).
    state.counters["ran_per_s"] =
        benchmark::Counter(static_cast<double>(shared->ran.load()), benchmark::Counter::kIsRate);
    delete shared;
    shared = nullptr;
  }
}
BENCHMARK(BM_Contended)->Threads(2)->Threads(3)->UseRealTime();

}  // namespace
}  // namespace ghost

BENCHMARK_MAIN();
