// Cost of the fast-path ring protocol (kernel/ghost_ring_ops.h) on the host:
// in plain memory (the C++ build), and the BPF build run by the host's JIT
// through BPF_PROG_TEST_RUN of bpf/progs/ring_check.bpf.c's SEC("syscall")
// programs on a ring in their mmapped array map (needs root; docs/FAST_PATH.md).
//
//   BM_Push                  the agent's push alone (the ring drained untimed)
//   BM_PushClaimCompleteReap one entry's whole life on one thread
//   BM_PushRevokeReap        an entry the agent takes back
//   BM_Contended/threads:N   thread 0 is the agent (push, reap); the others
//                            are consumers (claim, complete). ran_per_s =
//                            entries that ran per second; full = the agent's
//                            push attempts that found the ring full.
//   BM_AgentPushIntoMap      the agent's Ring::Push into the BPF map's memory
//   BM_BpfConsume/N          one BPF_PROG_TEST_RUN of ring_consume claiming N
//                            entries (each validated against an array by tid:
//                            seqnum, run count; then completed); the ring is
//                            refilled untimed. /0 is the call alone (bpf_loop
//                            of 0): per entry = (time(N) - time(0)) / N.
//   BM_BpfConsumeClass/N     the same with ring_consume_class, which validates
//                            as the class does (thread by tid in a hash,
//                            enclave, seqnum, parked, taken with a CAS)
//   BM_BpfConsumeEmpty       a call that finds the ring empty (max 64)
//   BM_BpfPush/N             one call of ring_push pushing N entries (the
//                            ring drained untimed)
// items_per_second counts entries; per_entry is CPU seconds per entry (the
// BPF program runs in the calling thread's syscall, so CPU time includes it).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "benchmark/benchmark.h"
#include "bpf/progs/ring_check.h"
#include "kernel/ghost_ring_ops.h"
#include "skel/ring_check.skel.h"
#include "userspace/ring.h"

namespace ghost {
namespace {

void Drain(ghost_ring* r) {
  ghost_ring_entry e;
  while (ghost_ring_claim(r, 0, 0, &e) == 1) ghost_ring_complete(r, e.pos);
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
    if (!ring.Push(tid++, 1).ok() || ghost_ring_claim(mem.get(), 0, 0, &e) != 1 ||
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
      if (ghost_ring_claim(r, state.thread_index(), 0, &e) == 1) {
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

// --- the BPF build, through BPF_PROG_TEST_RUN --------------------------------

constexpr uint32_t kBpfRingSize = GHOST_RING_MAX_SLOTS;
constexpr uint64_t kBpfThreads = 1024;  // tids 1..kBpfThreads, reused

// ring_check loaded once for all the BPF benchmarks (the verifier takes a
// while), its ring 0 and thread tables mapped.
struct BpfRing {
  ring_check_bpf* skel = nullptr;
  ghost_ring* rings = nullptr;
  uint64_t* seq = nullptr;
  std::string error;
};

BpfRing& Bpf() {
  static BpfRing* b = [] {
    auto* b = new BpfRing;
    b->skel = ring_check_bpf__open_and_load();
    if (b->skel == nullptr) {
      b->error = "ring_check did not load (errno " + std::to_string(errno) +
                 "; BPF_PROG_TEST_RUN needs root)";
      return b;
    }
    const size_t ring_bytes = sizeof(ghost_ring) * GHOST_RING_MAX_NODES;
    const size_t seq_bytes = bpf_map__max_entries(b->skel->maps.thread_seq) * sizeof(uint64_t);
    void* r = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   bpf_map__fd(b->skel->maps.rings), 0);
    void* q = mmap(nullptr, seq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
                   bpf_map__fd(b->skel->maps.thread_seq), 0);
    if (r == MAP_FAILED || q == MAP_FAILED) {
      b->error = "mmap of ring_check's maps failed";
      return b;
    }
    b->rings = static_cast<ghost_ring*>(r);
    b->seq = static_cast<uint64_t*>(q);
    for (uint64_t tid = 1; tid <= kBpfThreads; ++tid) {
      b->seq[tid] = 1;
      ring_check_thread t = {.seq = 1, .runs = 0, .ring_cpu = -1, .state = RING_CHECK_HELD};
      if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.threads), &tid, &t, BPF_ANY) != 0) {
        b->error = "could not fill ring_check's threads";
        return b;
      }
    }
    return b;
  }();
  return *b;
}

// Runs one ring_check program on `a`; false on a failed call.
bool RunProg(bpf_program* prog, ring_check_args& a) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));
  return bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) == 0 && opts.retval == 0;
}

// Reaps every outcome, then pushes until the ring is full (untimed).
void Refill(Ring& ring, uint64_t& tid) {
  ring.Reap([](const RingOutcomeRecord&) {});
  while (ring.Push(tid % kBpfThreads + 1, 1).ok()) ++tid;
}

void SetPerEntry(benchmark::State& state, int64_t per_iteration) {
  state.SetItemsProcessed(state.iterations() * per_iteration);
  if (per_iteration > 0) {
    state.counters["per_entry"] = benchmark::Counter(
        static_cast<double>(per_iteration),
        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  }
}

void BpfConsume(benchmark::State& state, bool class_like) {
  BpfRing& b = Bpf();
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  Ring ring = *Ring::Create(&b.rings[0], kBpfRingSize, 0);
  bpf_program* prog = class_like ? b.skel->progs.ring_consume_class : b.skel->progs.ring_consume;
  uint64_t tid = 0, ready = 0;
  for (auto _ : state) {
    if (ready < n) {
      state.PauseTiming();
      Refill(ring, tid);
      ready = ring.unreaped();
      state.ResumeTiming();
    }
    ring_check_args a = {.node = 0, .cpu = 0, .max = n};
    if (!RunProg(prog, a) || a.claimed != n) {
      state.SkipWithError("ring_consume failed or claimed fewer than asked");
      break;
    }
    ready -= n;
  }
  if (b.skel->bss->nr_errors != 0 || b.skel->bss->nr_stale != 0) {
    state.SkipWithError("BPF reported a protocol error or a stale entry");
  }
  SetPerEntry(state, n);
}

void BM_BpfConsume(benchmark::State& state) { BpfConsume(state, false); }
BENCHMARK(BM_BpfConsume)->Arg(0)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->Arg(256);

void BM_BpfConsumeClass(benchmark::State& state) { BpfConsume(state, true); }
BENCHMARK(BM_BpfConsumeClass)->Arg(0)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->Arg(256);

void BM_BpfConsumeEmpty(benchmark::State& state) {
  BpfRing& b = Bpf();
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  if (!Ring::Create(&b.rings[0], kBpfRingSize, 0).ok()) {
    state.SkipWithError("Ring::Create failed");
    return;
  }
  for (auto _ : state) {
    ring_check_args a = {.node = 0, .cpu = 0, .max = 64};
    if (!RunProg(b.skel->progs.ring_consume, a) || a.claimed != 0) {
      state.SkipWithError("ring_consume failed on an empty ring");
      break;
    }
  }
}
BENCHMARK(BM_BpfConsumeEmpty);

void BM_BpfPush(benchmark::State& state) {
  BpfRing& b = Bpf();
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  if (!Ring::Create(&b.rings[0], kBpfRingSize, 0).ok()) {
    state.SkipWithError("Ring::Create failed");
    return;
  }
  uint64_t free_slots = kBpfRingSize, tid = 0;
  for (auto _ : state) {
    if (free_slots < n) {
      state.PauseTiming();
      Drain(&b.rings[0]);
      free_slots = kBpfRingSize;
      state.ResumeTiming();
    }
    ring_check_args a = {.node = 0,
                         .max = n,
                         .flags = RING_CHECK_PUSH_DISTINCT,
                         .tid = tid % kBpfThreads + 1,
                         .seqnum = 1};
    if (!RunProg(b.skel->progs.ring_push, a) || a.pushed != n) {
      state.SkipWithError("ring_push failed or pushed fewer than asked");
      break;
    }
    tid += n;
    free_slots -= n;
  }
  SetPerEntry(state, n);
}
BENCHMARK(BM_BpfPush)->Arg(1)->Arg(16)->Arg(64);

// The agent's push (BM_Push) into the memory the class maps (the BPF array
// map), not the heap.
void BM_AgentPushIntoMap(benchmark::State& state) {
  BpfRing& b = Bpf();
  if (!b.error.empty()) {
    state.SkipWithError(b.error.c_str());
    return;
  }
  Ring ring = *Ring::Create(&b.rings[0], kBpfRingSize, 0);
  uint64_t tid = 0;
  for (auto _ : state) {
    if (!ring.Push(tid++ % kBpfThreads + 1, 1).ok()) {
      state.PauseTiming();
      Drain(&b.rings[0]);
      state.ResumeTiming();
      if (!ring.Push(tid++ % kBpfThreads + 1, 1).ok()) state.SkipWithError("push failed");
    }
  }
  SetPerEntry(state, 1);
}
BENCHMARK(BM_AgentPushIntoMap);

}  // namespace
}  // namespace ghost

BENCHMARK_MAIN();
