// ghost_policy NAME: the library's policy NAME (fifo-per-cpu, fifo-centralized)
// schedules SCHED_EXT workers through BpfKernelSide on the real class: every
// worker finishes, the class is never ejected, and the agent (not only the
// fallback) placed threads.
// Enclave: CPUs 1..N-1 (the test's main thread lives on CPU 0).
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/ghost_skel.h"
#include "userspace/policy.h"

using namespace ghost_test;

int main(int argc, char** argv) {
  Failures f;
  const std::string name = argc > 1 ? argv[1] : "fifo-per-cpu";
  if (!HaveCpus(3)) return 1;
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  PinToCpu(0);
  auto ks = ghost::BpfKernelSide::Create({.kernel_timeout = absl::Seconds(10)});
  if (!ks.ok()) {
    std::printf("FAIL: %s\n", std::string(ks.status().message()).c_str());
    return 1;
  }
  ghost::CpuList cpus;
  for (int c = 1; c < ncpus; c++) cpus.Set(c);
  auto enclave = ghost::Enclave::Create(**ks, {.cpus = cpus, .watchdog_ms = 1000});
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
    agents.emplace_back([a, &stop] {
      if (a->cpu() >= 0) PinToCpu(a->cpu());
      EnterFifo(50);
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
  const uint64_t committed = (*ks)->bpf_class().skel()->bss->nr_txn_results[GHOST_TXN_COMMITTED];
  const uint64_t fallback = (*ks)->ClassInfo().fallback_runs;
  absl::PrintF("commits: %u committed, %u fallback runs, %u group-commit calls\n", committed,
               fallback, (*ks)->commit_syscalls());
  std::string dist;
  for (int r = 0; r <= GHOST_TXN_RESULT_LAST; r++) {
    uint64_t n = (*ks)->bpf_class().skel()->bss->nr_txn_results[r];
    if (n) absl::StrAppendFormat(&dist, " %s=%u", ResultName(r), n);
  }
  std::printf("results:%s\n", dist.c_str());
  int entered = 0;
  for (auto& w : workers) entered += w->entered();
  f.Check(entered == kWorkers, "every worker entered SCHED_EXT");
  f.Check(done.load() == kWorkers,
          absl::StrFormat("every worker finished (%d of %d)", done.load(), kWorkers));
  f.Check(committed > static_cast<uint64_t>(kWorkers),
          absl::StrFormat("the agent placed threads (%u committed transactions)", committed));
  CheckClassAlive(**ks, f);
  stop = true;
  for (auto& a : agents) a.join();
  return ExitJoining(f, workers, done.load() == kWorkers);
}
