// ghost_policy NAME: the library's policy NAME (fifo-per-cpu, fifo-centralized)
// schedules SCHED_EXT workers through BpfKernelSide on the real class, its
// agent threads started as ghost-agent starts them (BecomeAgentThread:
// registered with the class, pinned, SCHED_FIFO): every worker finishes, the
// class is never ejected, and the agent placed the runs: runs committed by its
// transactions (at least half as many as the workers' bursts, each of which
// follows a sleep), none by the class's fallback (no fault is injected); any
// other run is a resumption after a higher class took the CPU for a moment.
// Enclave: CPUs 1..N-1 (the test's main thread lives on CPU 0).
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"
#include "userspace/agent.h"
#include "userspace/agent_thread.h"
#include "userspace/enclave.h"
#include "userspace/ghost_skel.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"

using namespace ghost_test;

int main(int argc, char** argv) {
  Failures f;
  const std::string name = argc > 1 ? argv[1] : "fifo-per-cpu";
  if (!HaveCpus(3)) return 1;
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  PinToCpu(0);
  // A 5 s watchdog (ghost-agent's scenarios use the same): only a thread the
  // agent really left unplaced is the fallback's, however slow the host.
  auto ks = ghost::BpfKernelSide::Create({.kernel_timeout = absl::Seconds(30)});
  if (!ks.ok()) {
    std::printf("FAIL: %s\n", std::string(ks.status().message()).c_str());
    return 1;
  }
  ghost::CpuList cpus;
  for (int c = 1; c < ncpus; c++) cpus.Set(c);
  auto enclave = ghost::Enclave::Create(**ks, {.cpus = cpus, .watchdog_ms = 5000});
  if (!enclave.ok()) {
    std::printf("FAIL: enclave: %s\n", std::string(enclave.status().message()).c_str());
    return 1;
  }
  auto policy = ghost::MakePolicy({.name = name, .slice = absl::Milliseconds(2)}, **enclave);
  if (!policy.ok()) {
    std::printf("FAIL: policy: %s\n", std::string(policy.status().message()).c_str());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> agents;
  for (ghost::Agent* a : (*policy)->agents()) {
    agents.emplace_back([a, &stop, &f, k = ks->get()] {
      constexpr int kAgentPriority = 50;  // ghost-agent's default --agent-priority
      if (absl::Status s = ghost::BecomeAgentThread(*k, *a, kAgentPriority); !s.ok()) {
        f.Fail(absl::StrFormat("starting the agent thread of CPU %d: %s", a->cpu(), s.message()));
        return;
      }
      a->Run(stop);
    });
  }
  std::printf("policy %s: %zu agent(s) on enclave CPUs %s\n", (*policy)->name(), agents.size(),
              cpus.ToString().c_str());

  constexpr int kWorkers = 6, kBursts = 60;
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<SpinningWorker>> workers;
  for (int i = 0; i < kWorkers; i++) {
    workers.push_back(std::make_unique<SpinningWorker>());
    workers[i]->Start(AllCpus(), [&](SpinningWorker&) {
      for (int b = 0; b < kBursts; b++) {
        SpinNs(1'000'000);
        SleepUs(500);
      }
      done++;
    });
    if (auto s = workers[i]->Enroll(**ks, (*enclave)->id()); !s.ok()) {
      f.Fail(std::string(s.message()));
    }
  }
  WaitUntil([&] { return done.load() == kWorkers; }, absl::Seconds(120), 10'000);
  const auto* bss = (*ks)->bpf_class().skel()->bss;
  const uint64_t committed = bss->nr_txn_results[GHOST_TXN_COMMITTED];
  const uint64_t runs_committed = bss->nr_runs_committed, runs_fallback = bss->nr_runs_fallback,
                 runs_resumed = bss->nr_runs_resumed, runs_ring = bss->nr_runs_ring;
  const uint64_t fallback = (*ks)->ClassInfo().fallback_runs;
  absl::PrintF("runs: %u committed, %u by ring entries, %u fallback (class_info: %u), %u "
               "resumed; %u COMMITTED transactions, %u group-commit calls\n",
               runs_committed, runs_ring, runs_fallback, fallback, runs_resumed, committed,
               (*ks)->commit_syscalls());
  std::string dist;
  for (int r = 0; r <= GHOST_TXN_RESULT_LAST; r++) {
    uint64_t n = bss->nr_txn_results[r];
    if (n) absl::StrAppendFormat(&dist, " %s=%u", ResultName(r), n);
  }
  std::printf("results:%s\n", dist.c_str());
  int entered = 0;
  for (auto& w : workers) entered += w->entered();
  f.Check(entered == kWorkers, "every worker entered SCHED_EXT");
  f.Check(done.load() == kWorkers,
          absl::StrFormat("every worker finished (%d of %d)", done.load(), kWorkers));
  // Each burst follows a sleep, so nearly each needs a placement (a wake-up
  // that beats the thread off its CPU needs none): the agent's commits or its
  // ring entries (the centralized FIFO's fast path) made them, the fallback none.
  f.Check(runs_committed + runs_ring >= static_cast<uint64_t>(kWorkers * kBursts / 2),
          absl::StrFormat("the agent placed the bursts (%u committed runs and %u by ring entries "
                          "for %d bursts)",
                          runs_committed, runs_ring, kWorkers * kBursts));
  f.Check(runs_fallback == 0 && fallback == 0,
          absl::StrFormat("no run was the fallback's (%u)", runs_fallback));
  f.Check(runs_committed <= committed,
          absl::StrFormat("every committed run has its COMMITTED transaction (%u runs, %u)",
                          runs_committed, committed));
  CheckClassAlive(**ks, f);
  stop = true;
  for (auto& a : agents) a.join();
  return ExitJoining(f, workers, done.load() == kWorkers);
}
