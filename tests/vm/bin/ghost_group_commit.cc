// ghost_group_commit: a group commit to K CPUs is one bpf() syscall and all K
// threads start, each on its own target CPU. Destroying the enclave then hands
// the threads it still holds to the class's FIFO at once.
// Needs >= 4 CPUs: the agent on CPU 0, the enclave (and K) is the rest.
#include <sched.h>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

int main() {
  Failures f;
  if (!HaveCpus(4)) return 1;
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  const int k = ncpus - 1;
  ghost::CpuList enclave_cpus;
  std::vector<int> targets;
  for (int c = 1; c < ncpus; c++) {
    enclave_cpus.Set(c);
    targets.push_back(c);
  }
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = enclave_cpus});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  std::vector<std::unique_ptr<SpinningWorker>> w;
  std::vector<uint64_t> tid(k);
  for (int i = 0; i < k; i++) {
    w.push_back(std::make_unique<SpinningWorker>());
    w[i]->Start(AllCpus());
    if (auto s = w[i]->Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  }
  bool all_new = true;
  for (int i = 0; i < k; i++) all_new = all_new && (tid[i] = agent.WaitTid(w[i]->pid())) != 0;
  f.Check(all_new, absl::StrFormat("%d threads reported TASK_NEW", k));
  // Each entered while running and was sent back at once (PREEMPT): parked.
  bool parked = true;
  for (int i = 0; i < k; i++) {
    parked = parked && agent.WaitMessage(tid[i], GHOST_MSG_TASK_PREEMPT) >= 0;
  }
  f.Check(parked, "every thread waits for its agent (TASK_PREEMPT after entering)");

  agent.Drain();
  const size_t log_mark = agent.Log().size();
  const uint64_t calls_before = ks.bpf_class().skel()->bss->nr_commit_calls;
  const uint64_t sys_before = ks.commit_syscalls();
  int rounds = 0, other_failures = 0;
  std::vector<int> result(k, -1);
  // A member can bounce off a CPU that something else holds at that moment
  // (CPU_UNAVAILABLE: a kworker, an interrupt): the members still waiting go
  // again in the next group, until a deadline (a loaded host makes bounces
  // more likely, not a different result).
  const int64_t end = NowNs() + 10'000'000'000LL;
  while (NowNs() < end) {
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
    if (rounds == 0) {
      f.Check(group.Size() == k, absl::StrFormat("one group of %d transactions (CPUs %s)",
                                                 group.Size(), group.ToString()));
    }
    rounds++;
    if (auto s = ks.Commit(group); !s.ok()) f.Fail(std::string(s.message()));
    for (int i = 0; i < k; i++) {
      if (group.IsSet(targets[i])) result[i] = WaitTxn(ks, targets[i], absl::Seconds(5));
    }
    int ok = 0;
    for (int i = 0; i < k; i++) ok += result[i] == GHOST_TXN_COMMITTED;
    std::printf("group commit %d: %d of %d committed\n", rounds, ok, k);
    if (ok == k) break;
    for (int i = 0; i < k; i++) {
      if (result[i] == GHOST_TXN_COMMITTED) continue;
      // A message produced between our barrier read and the commit (a CPU
      // event under a loaded host) makes the whole group AGENT_STALE: acted
      // on old state, retried like a bounce.
      other_failures += result[i] != GHOST_TXN_CPU_UNAVAILABLE &&
                        result[i] != GHOST_TXN_AGENT_STALE && result[i] != GHOST_TXN_TARGET_STALE;
      std::printf("note: CPU %d: %s, retrying\n", targets[i], ResultName(result[i]));
    }
    SleepUs(1000);
  }
  const uint64_t calls = ks.bpf_class().skel()->bss->nr_commit_calls - calls_before;
  const uint64_t sys = ks.commit_syscalls() - sys_before;
  f.Check(calls == static_cast<uint64_t>(rounds) && sys == static_cast<uint64_t>(rounds),
          absl::StrFormat("each group commit was one bpf() call (%u program runs, %u syscalls, "
                          "%d groups)", calls, sys, rounds));
  f.Check(other_failures == 0,
          absl::StrFormat("every member of every group was committed, bounced off a busy CPU "
                          "or raced a newer message (%d other results)", other_failures));
  // A higher class can take a target CPU the moment a thread starts there,
  // before its first instruction in user space: the thread comes back to us
  // (PREEMPT, and CPU_BUSY for that CPU) and is placed on the same CPU again.
  // Sent back without a CPU_BUSY, it stays put and fails below.
  int replaced = 0;
  WaitUntil(
      [&] {
        agent.Drain();
        const auto log = agent.Log();
        auto threads = agent.Threads();
        bool all = true;
        for (int i = 0; i < k; i++) {
          if (w[i]->spins() > 0) continue;
          all = false;
          const ThreadState& st = threads[tid[i]];
          if (st.runnable && st.last == GHOST_MSG_TASK_PREEMPT && replaced < 10 &&
              !CpuMessages(log, GHOST_MSG_CPU_BUSY, targets[i], log_mark).empty() &&
              agent.CommitCurrent(targets[i], tid[i]) == GHOST_TXN_COMMITTED) {
            replaced++;
            std::printf("note: a higher class took CPU %d as thread %d started: placed again\n",
                        targets[i], i);
          }
        }
        return all;
      },
      absl::Seconds(10));
  for (int i = 0; i < k; i++) {
    f.Check(result[i] == GHOST_TXN_COMMITTED && w[i]->first_cpu() == targets[i] &&
                w[i]->spins() > 0,
            absl::StrFormat("thread %d: %s, started on CPU %d (target %d)", i,
                            ResultName(result[i]), w[i]->first_cpu(), targets[i]));
  }
  // A thread the fallback ran first would "start" off its target: the
  // watchdog must not have fired (a CI run once took past a 4 s one).
  f.Check(ks.ClassInfo().fallback_runs == 0,
          absl::StrFormat("only the group commits ran threads: the fallback ran nothing (%u)",
                          ks.ClassInfo().fallback_runs));
  // Without their enclave, threads parked for it go to the class's FIFO at
  // once, not after its 15 s watchdog.
  for (auto& t : w) t->Quit();
  ReleaseEnclave(ks, setup->enclave, f);
  f.Check(WaitUntil(
              [&] {
                for (auto& t : w) {
                  if (!t->done()) return false;
                }
                return true;
              },
              absl::Seconds(7)),
          "destroying the enclave let every thread finish well before its watchdog");
  for (auto& t : w) t->Join();
  CheckClassAlive(ks, f);
  if (f.n != 0) PrintLog(agent);
  return f.n == 0 ? 0 : 1;
}
