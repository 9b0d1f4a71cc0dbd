// ghost_agent_cpu MODE: threads that may run only on the CPU where a global
// agent spins still run, and the class is never ejected (issue: cyclictest's
// measuring thread, pinned to CPU 0 where ghost-agent's global agent sat, got
// the class ejected within seconds).
//
// The enclave is CPUs 0-1; a SCHED_FIFO thread registered as a GLOBAL agent
// spins on CPU 0; enclave threads pinned to CPU 0 run 20 ms bursts and sleeps.
//   hostile  the agent spins and never commits, never yields (not the agent
//            library: a broken or hostile agent). Only the class can help: the
//            kernel's ext deadline server lends CPU 0 to sched_ext now and
//            then, and the class must hand it a thread then (starved-CPU
//            runs) or the server stops and the stall detector ejects the
//            class.
//   library  the agent is the library's Agent::Run with a policy that never
//            commits: the class asks it to step aside (ghost_cpu_word), it
//            does, and the fallback runs the threads.
// In both, CPU 0's pinned_push is set, as a policy whose agent sleeps sets it
// (the centralized FIFO): the class must not queue the pinned threads there
// itself while the agent spins (pinned.bpf.h), where they would wait behind it.
// Kernel stall timeout 5 s (ghost-agent's default), watchdog 1 s.
#include <bpf/bpf.h>

#include "tests/vm/test_agent.h"
#include "userspace/agent.h"
#include "userspace/ghost_skel.h"
#include "userspace/scheduler.h"

using namespace ghost_test;

namespace {

// A policy that reads its messages and decides nothing.
class SilentScheduler : public ghost::Scheduler {
 public:
  void Schedule(ghost::Agent&) override {}
};

constexpr int kBursts = 3;
// Longer than the class's 5 ms fallback slice: a slice ending on the
// starved CPU must not leave the ext server empty-handed.
constexpr int64_t kBurstNs = 20'000'000;

}  // namespace

int main(int argc, char** argv) {
  Failures f;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "hostile" && mode != "library") {
    std::printf("FAIL: usage: ghost_agent_cpu hostile|library\n");
    return 2;
  }
  if (!HaveCpus(2)) return 1;
  auto setup = Setup::Create({.cpus = ghost::CpuList({0, 1}),
                              .watchdog_ms = 1000,
                              .kernel_timeout = absl::Seconds(5)});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  // Hostile: one thread, so that when its slice ends nothing else is parked
  // there for the server (the thread itself must be kept running).
  const int kWorkers = mode == "hostile" ? 1 : 2;
  auto* bss = ks.bpf_class().skel()->bss;

  std::atomic<int> done{0};
  std::vector<std::unique_ptr<SpinningWorker>> workers;
  for (int i = 0; i < kWorkers; i++) {
    workers.push_back(std::make_unique<SpinningWorker>());
    workers[i]->Start(CpuSet({0}), [&](SpinningWorker&) {
      for (int b = 0; b < kBursts; b++) {
        SpinCpuNs(kBurstNs);
        SleepUs(1000);
      }
      done++;
    });
  }

  std::atomic<bool> stop{false};
  std::atomic<bool> ejected{false};
  SilentScheduler silent;
  ghost::Agent agent(ks, silent, {.cpu = 0, .queue = setup->queue, .global = true});
  std::thread agent_thread([&] {
    BecomeAgent(0, 50);
    if (auto s = ks.RegisterAgentThread(Gettid(), /*global=*/true); !s.ok()) {
      f.Fail(absl::StrFormat("registering the agent: %s", s.message()));
      return;
    }
    if (mode == "library") {
      agent.Run(stop);
      return;
    }
    // Hostile: spin, decide nothing, never step aside.
    while (!stop.load(std::memory_order_relaxed)) {
      if (!ks.Health().ok()) ejected = true;
    }
  });
  // Enrol only once the agent spins on CPU 0.
  SleepUs(200'000);
  ks.SetPinnedPush(0, true);
  for (auto& w : workers) {
    if (auto s = w->Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  }
  // Each burst needs CPU 0; hostile: ~1 s each (the ext server's period).
  const bool finished = WaitUntil([&] { return done.load() == kWorkers || !ks.Health().ok(); },
                                  absl::Seconds(120), 10'000);
  stop = true;
  agent_thread.join();
  const absl::Status health = ks.Health();
  f.Check(health.ok(), health.ok() ? "the class was never ejected" : absl::StrFormat("the class was ejected: %s", health.message()));
  if (!health.ok()) {
    std::printf("%s\n", ks.bpf_class().ExitDump().c_str());
  }
  f.Check(finished && done.load() == kWorkers,
          absl::StrFormat("%d threads pinned to the agent's CPU finished %d bursts each (%d did)",
                          kWorkers, kBursts, done.load()));
  for (auto& w : workers) f.Check(w->entered(), "a worker entered SCHED_EXT");
  const ghost_class_info& ci = ks.ClassInfo();
  absl::PrintF("runs: committed %u, fallback %u (starved CPU %u), resumed %u; watchdog moves %u; "
               "yield requests %u; agent stepped aside %u times for the class\n",
               bss->nr_runs_committed, bss->nr_runs_fallback, bss->nr_starved_runs,
               bss->nr_runs_resumed, bss->nr_watchdog_moves, bss->nr_yield_requests,
               agent.kernel_yields());
  f.Check(bss->nr_runs_committed == 0, "no commit placed them (the agent never commits)");
  f.Check(bss->nr_pinned_pushes == 0,
          absl::StrFormat("the class queued no thread on the spinning agent's CPU itself, its "
                          "pinned_push set (%d did)",
                          bss->nr_pinned_pushes));
  f.Check(ci.fallback_runs > 0, "the class ran them (fallback runs)");
  if (mode == "hostile") {
    f.Check(bss->nr_starved_runs > 0,
            "some ran on CPU 0 lent by the kernel's ext deadline server (starved-CPU runs)");
  } else {
    f.Check(bss->nr_yield_requests > 0 && agent.kernel_yields() > 0,
            "the class asked the agent to step aside, and it did");
  }
  for (auto& w : workers) w->Join();
  if (!ejected.load()) CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
