// Agent-side cost of ghOSt transactions against an in-process kernel side
// (tests/unit/fake_kernel_side.h, which validates and applies at once): what
// the library spends per committed transaction, without any syscall. The
// real kernel's commit cost is measured in the VM benchmarks.
//
//   BM_SingleCommit      drain queue + read status word + Open + Commit
//   BM_GroupCommit/N     the same for N CPUs in one CommitGroup call
//   BM_CentralizedRound/N  one fifo-centralized agent round that re-places
//                        N threads after they were preempted
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"
#include "userspace/run_request.h"
#include "userspace/status_word.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

struct Setup {
  explicit Setup(int ncpus) : kernel(ncpus) {
    enclave = std::move(*Enclave::Create(kernel, {.cpus = CpuList::FirstN(ncpus)}));
    queue = enclave->default_queue();
  }
  // Drains the queue as an agent would and returns the barrier it read first.
  uint64_t Drain() {
    const uint64_t b = kernel.QueueWord(queue).barrier;
    kernel.ConsumeQueue(queue, [&](const ghost_msg& m) {
      benchmark::DoNotOptimize(m.seqnum);
    });
    return b;
  }
  uint64_t Seq(Tid tid) {
    return ReadStatusWord(kernel.StatusWords()[kernel.thread(tid).sw_index])
        ->seqnum;
  }
  FakeKernelSide kernel;
  std::unique_ptr<Enclave> enclave;
  QueueId queue;
};

// Two threads take turns on CPU 0: each commit preempts the other one.
void BM_SingleCommit(benchmark::State& state) {
  Setup s(1);
  const Tid tids[2] = {s.kernel.NewThread(), s.kernel.NewThread()};
  RunRequest req(s.kernel, 0);
  uint64_t i = 0;
  for (auto _ : state) {
    const Tid t = tids[i++ & 1];
    const uint64_t barrier = s.Drain();
    if (!req.Open({.target = t,
                   .target_barrier = s.Seq(t),
                   .agent_barrier = barrier,
                   .queue = s.queue,
                   .commit_flags = GHOST_TXN_F_PREEMPT})
             .ok() ||
        !req.Commit()) {
      state.SkipWithError("commit failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SingleCommit);

// N CPUs, 2N threads: every iteration swaps the whole set in one group commit.
void BM_GroupCommit(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n);
  std::vector<Tid> tids;
  for (int i = 0; i < 2 * n; ++i) tids.push_back(s.kernel.NewThread());
  std::vector<std::unique_ptr<RunRequest>> reqs;
  std::vector<RunRequest*> group;
  for (int c = 0; c < n; ++c) {
    reqs.push_back(std::make_unique<RunRequest>(s.kernel, c));
    group.push_back(reqs.back().get());
  }
  uint64_t round = 0;
  for (auto _ : state) {
    const int half = static_cast<int>(round++ & 1);
    const uint64_t barrier = s.Drain();
    for (int c = 0; c < n; ++c) {
      const Tid t = tids[half * n + c];
      (void)reqs[c]->Open({.target = t,
                           .target_barrier = s.Seq(t),
                           .agent_barrier = barrier,
                           .queue = s.queue,
                           .commit_flags = GHOST_TXN_F_PREEMPT});
    }
    if (!CommitGroup(s.kernel, group).ok()) {
      state.SkipWithError("group commit failed");
      break;
    }
    for (RunRequest* r : group) {
      if (!r->committed()) {
        state.SkipWithError(TxnResultName(r->result()));
        return;
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_GroupCommit)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(64);

// A whole policy round: N threads were preempted (N messages), the
// centralized agent drains them and re-places all N in one group commit.
void BM_CentralizedRound(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Setup s(n + 1);
  auto policy = MakePolicy(
      {.name = "fifo-centralized", .clock = [&] { return s.kernel.NowNs(); }},
      *s.enclave);
  if (!policy.ok()) {
    state.SkipWithError("no policy");
    return;
  }
  Agent* agent = (*policy)->agents()[0];
  std::vector<Tid> tids;
  for (int i = 0; i < n; ++i) tids.push_back(s.kernel.NewThread());
  agent->RunOnce();
  for (auto _ : state) {
    state.PauseTiming();
    for (Tid t : tids) s.kernel.Preempt(t);
    state.ResumeTiming();
    agent->RunOnce();
  }
  if (s.kernel.starts().size() != static_cast<size_t>(n) * (state.iterations() + 1)) {
    state.SkipWithError("not every thread was re-placed");
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_CentralizedRound)->Arg(1)->Arg(4)->Arg(16)->Arg(64);

}  // namespace
}  // namespace ghost

BENCHMARK_MAIN();
