// ghost_group_commit: a group commit to K CPUs is one bpf() syscall and all K
// threads start, each on its own target CPU.
// Needs >= 4 CPUs: the agent on CPU 0, the enclave (and K) is the rest.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

int main() {
  Failures f;
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (ncpus < 4) {
    std::printf("FAIL: needs at least 4 CPUs (have %d)\n", ncpus);
    return 1;
  }
  const int k = ncpus - 1;
  cpu_set_t all, cpu0;
  CPU_ZERO(&all);
  CPU_ZERO(&cpu0);
  for (int c = 0; c < ncpus; c++) CPU_SET(c, &all);
  CPU_SET(0, &cpu0);
  ghost::CpuList enclave_cpus;
  std::vector<int> targets;
  for (int c = 1; c < ncpus; c++) {
    enclave_cpus.Set(c);
    targets.push_back(c);
  }
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  auto setup = Setup::Create(enclave_cpus, /*watchdog_ms=*/4000);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  std::atomic<bool> quit{false};
  std::vector<std::atomic<int>> pid(k), first_cpu(k);
  std::vector<std::atomic<bool>> go(k);
  std::vector<std::thread> th;
  for (int i = 0; i < k; i++) {
    pid[i] = 0;
    first_cpu[i] = -1;
    go[i] = false;
    th.emplace_back([&, i] {
      sched_setaffinity(0, sizeof(all), &all);
      pid[i] = Gettid();
      while (!go[i].load()) SleepUs(100);
      EnterSchedExt();
      first_cpu[i] = sched_getcpu();
      while (!quit.load()) {
      }
    });
  }
  std::vector<uint64_t> tid(k);
  for (int i = 0; i < k; i++) {
    while (pid[i].load() == 0) SleepUs(100);
    if (auto s = ks.EnrollPid(pid[i], setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
    go[i] = true;
  }
  int64_t end = NowNs() + 3'000'000'000LL;
  bool all_new = false;
  while (NowNs() < end && !all_new) {
    agent.Drain();
    all_new = true;
    for (int i = 0; i < k; i++) all_new = all_new && (tid[i] = agent.TidOf(pid[i])) != 0;
    SleepUs(500);
  }
  f.Check(all_new, absl::StrFormat("%d threads reported TASK_NEW", k));
  SleepUs(20'000);  // let each reach its parking DSQ (PREEMPT after entering)

  const uint64_t calls_before = ks.bpf_class().skel()->bss->nr_commit_calls;
  const uint64_t sys_before = ks.commit_syscalls();
  int rounds = 0;
  std::vector<int> result(k, -1);
  for (int attempt = 0; attempt < 3; attempt++) {
    agent.Drain();
    ghost::CpuList group;
    auto threads = agent.Threads();
    for (int i = 0; i < k; i++) {
      if (result[i] == GHOST_TXN_COMMITTED) continue;
      ghost_txn t = {};
      t.tid = tid[i];
      t.task_seqnum = threads[tid[i]].seq;
      t.agent_barrier = agent.barrier();
      t.queue = setup->queue;
      if (OpenTxn(ks, targets[i], t)) group.Set(targets[i]);
    }
    if (group.Empty()) break;
    if (attempt == 0) {
      f.Check(group.Size() == k, absl::StrFormat("one group of %d transactions (CPUs %s)",
                                                 group.Size(), group.ToString()));
    }
    rounds++;
    if (auto s = ks.Commit(group); !s.ok()) f.Fail(std::string(s.message()));
    for (int i = 0; i < k; i++) {
      if (group.IsSet(targets[i])) result[i] = WaitTxn(ks, targets[i], absl::Seconds(2));
    }
    int ok = 0;
    for (int i = 0; i < k; i++) ok += result[i] == GHOST_TXN_COMMITTED;
    std::printf("group commit %d: %d of %d committed\n", rounds, ok, k);
    if (ok == k) break;
    for (int i = 0; i < k; i++) {
      if (result[i] != GHOST_TXN_COMMITTED)
        std::printf("note: CPU %d: %s, retrying\n", targets[i], ResultName(result[i]));
    }
  }
  const uint64_t calls = ks.bpf_class().skel()->bss->nr_commit_calls - calls_before;
  const uint64_t sys = ks.commit_syscalls() - sys_before;
  f.Check(calls == static_cast<uint64_t>(rounds) && sys == static_cast<uint64_t>(rounds),
          absl::StrFormat("each group commit was one bpf() call (%u program runs, %u syscalls, "
                          "%d groups)", calls, sys, rounds));
  f.Check(rounds >= 1 && rounds <= 2, absl::StrFormat("%d group commit(s) placed all %d", rounds, k));
  end = NowNs() + 2'000'000'000LL;
  bool started = false;
  while (NowNs() < end && !started) {
    started = true;
    for (int i = 0; i < k; i++) started = started && first_cpu[i].load() >= 0;
    SleepUs(1000);
  }
  for (int i = 0; i < k; i++) {
    f.Check(result[i] == GHOST_TXN_COMMITTED && first_cpu[i].load() == targets[i],
            absl::StrFormat("thread %d: %s, started on CPU %d (target %d)", i,
                            ResultName(result[i]), first_cpu[i].load(), targets[i]));
  }
  quit = true;
  for (auto& t : th) t.join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
