// ghost_adversarial: an agent that commits garbage — random target CPUs (in
// and out of the enclave), stale and random seqnums, stale barriers, random
// flags, mismatched slot CPUs — 10 000 transactions, while other threads flip
// the workers' affinity and nice in a loop. The class must never be ejected,
// never run a thread on a CPU its affinity forbids, and every worker must
// finish (what the agent does not place runs through the watchdog fallback).
#include <sched.h>
#include <sys/resource.h>

#include <random>
#include <thread>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

namespace {
constexpr int kTxns = 10000;
constexpr int kFixed = 2;    // affinity {1}, never changed: checked on every burst
constexpr int kFlipped = 4;  // affinity and nice flipped by other threads
constexpr int kBursts = 150;
}  // namespace

int main(int argc, char** argv) {
  Failures f;
  // argv[1]: iterations between a commit's affinity check and its move
  // (widens the race the check closes; 0: production class).
  const uint32_t race_window = argc > 1 ? static_cast<uint32_t>(atoi(argv[1])) : 0;
  if (race_window) std::printf("race window: %u bpf_loop iterations\n", race_window);
  if (!HaveCpus(2)) return 1;
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  const cpu_set_t all = AllCpus();
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  // The enclave is every CPU but 0; the agent and the flippers may run
  // anywhere (above the class, and CFS beside it). A short watchdog so the
  // fallback keeps everyone moving.
  ghost::CpuList enclave_cpus;
  for (int c = 1; c < ncpus; c++) enclave_cpus.Set(c);
  auto setup = Setup::Create(
      {.cpus = enclave_cpus, .watchdog_ms = 30, .race_window_iters = race_window});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  const int nworkers = kFixed + kFlipped;
  std::atomic<int> done{0}, violations{0};
  std::vector<std::unique_ptr<SpinningWorker>> workers;
  for (int i = 0; i < nworkers; i++) {
    const bool fixed = i < kFixed;
    workers.push_back(std::make_unique<SpinningWorker>());
    workers[i]->Start(fixed ? CpuSet({1}) : all, [&, i, fixed](SpinningWorker&) {
      for (int b = 0; b < kBursts; b++) {
        SpinNs(500'000);
        int cpu = sched_getcpu();
        if (fixed && cpu != 1) {
          violations++;
          std::printf("FAIL: fixed worker %d ran on CPU %d, its affinity is {1}\n", i, cpu);
        }
        SleepUs(300);
      }
      done++;
    });
    if (auto s = workers[i]->Enroll(ks, setup->enclave); !s.ok()) {
      f.Fail(std::string(s.message()));
    }
  }

  // Flippers: CFS threads changing the flipped workers' affinity and nice.
  std::atomic<bool> stop_flip{false};
  std::atomic<uint64_t> flips{0};
  std::vector<std::thread> flippers;
  for (int k = 0; k < 2; k++) {
    flippers.push_back(StartCfsThread(all, [&, k] {
      std::mt19937 rng(1234 + k);
      while (!stop_flip.load()) {
        int w = kFixed + static_cast<int>(rng() % kFlipped);
        cpu_set_t set;
        CPU_ZERO(&set);
        unsigned bits = 1 + rng() % ((1u << ncpus) - 1);
        for (int c = 0; c < ncpus; c++)
          if (bits & (1u << c)) CPU_SET(c, &set);
        if (SetAffinity(set, workers[w]->pid())) flips++;
        if (setpriority(PRIO_PROCESS, workers[w]->pid(), static_cast<int>(rng() % 20) - 5) == 0) {
          flips++;
        }
        SleepUs(500);
      }
    }));
  }

  // The adversarial agent.
  std::mt19937_64 rng(42);
  int txns = 0, calls = 0;
  std::map<int, uint64_t> results;
  int64_t end = NowNs() + 120'000'000'000LL;
  auto settle = [&] {
    for (int c = 0; c < ncpus; c++) {
      ghost_txn* s = ks.TxnSlot(c);
      if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == GHOST_TXN_DONE) {
        results[static_cast<int>(s->result)]++;
        __atomic_store_n(&s->state, GHOST_TXN_FREE, __ATOMIC_RELEASE);
      }
    }
  };
  while (txns < kTxns && NowNs() < end) {
    settle();
    agent.Drain();
    auto threads = agent.Threads();
    if (threads.empty()) {
      SleepUs(200);
      continue;
    }
    std::vector<uint64_t> tids;
    for (auto& [t, st] : threads) tids.push_back(t);
    ghost::CpuList group;
    int n = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < n; j++) {
      int cpu = static_cast<int>(rng() % ncpus);
      uint64_t tid = tids[rng() % tids.size()];
      ghost_txn t = {};
      t.tid = rng() % 16 == 0 ? rng() : tid;
      uint64_t seq = threads[tid].seq;
      switch (rng() % 4) {
        case 0: t.task_seqnum = seq; break;
        case 1: t.task_seqnum = seq - 1; break;
        case 2: t.task_seqnum = rng() % (seq + 3); break;
        default: t.task_seqnum = seq; break;
      }
      t.agent_barrier = rng() % 3 == 0 ? agent.barrier() - rng() % 3 : agent.barrier();
      t.queue = rng() % 8 == 0 ? static_cast<uint32_t>(rng()) : setup->queue;
      const uint32_t flag_choices[] = {0, GHOST_TXN_F_PREEMPT, GHOST_TXN_F_NO_BARRIER,
                                       GHOST_TXN_F_PREEMPT | GHOST_TXN_F_NO_BARRIER,
                                       GHOST_TXN_F_SYNC_GROUP, static_cast<uint32_t>(rng())};
      t.flags = flag_choices[rng() % std::size(flag_choices)];
      t.slice_ns = rng() % 2 ? 0 : rng() % 3'000'000;
      if (!OpenTxn(ks, cpu, t)) continue;
      if (rng() % 16 == 0) ks.TxnSlot(cpu)->cpu = static_cast<uint32_t>(rng());  // lie
      group.Set(cpu);
      txns++;
    }
    if (!group.Empty()) {
      calls++;
      if (auto s = ks.Commit(group); !s.ok()) f.Fail(std::string(s.message()));
    }
    SleepUs(100);
  }
  f.Check(txns >= kTxns, absl::StrFormat("%d adversarial transactions in %d group commits", txns,
                                         calls));
  stop_flip = true;
  for (auto& t : flippers) t.join();
  end = NowNs() + 120'000'000'000LL;
  while (done.load() < nworkers && NowNs() < end) {
    SleepUs(10'000);
    settle();
    agent.Drain();
  }
  settle();
  std::string dist;
  for (auto& [r, n] : results) absl::StrAppendFormat(&dist, " %s=%u", ResultName(r), n);
  absl::PrintF("results:%s; %u affinity/nice changes\n", dist, flips.load());
  int entered = 0;
  for (auto& w : workers) entered += w->entered();
  f.Check(entered == nworkers, "every worker entered SCHED_EXT");
  f.Check(done.load() == nworkers,
          absl::StrFormat("every worker finished (%d of %d)", done.load(), nworkers));
  f.Check(violations.load() == 0, "no fixed worker ever ran outside its affinity");
  f.Check(results[GHOST_TXN_NOT_ALLOWED] > 0 && results[GHOST_TXN_TARGET_STALE] > 0 &&
              results[GHOST_TXN_COMMITTED] > 0,
          "the agent hit NOT_ALLOWED, TARGET_STALE and COMMITTED (the test bites)");
  f.Check(ks.ClassInfo().fallback_runs > 0,
          absl::StrFormat("the fallback ran what the agent did not place (%u runs)",
                          ks.ClassInfo().fallback_runs));
  CheckClassAlive(ks, f);
  return ExitJoining(f, workers, done.load() == nworkers);
}
