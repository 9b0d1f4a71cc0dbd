// ghost_txn_results: every transaction failure is reported with its own code
// and the thread does not run; a current transaction runs it.
//   old thread seqnum       -> TARGET_STALE      (and the thread does not run)
//   old agent barrier       -> AGENT_STALE
//   CPU outside affinity    -> NOT_ALLOWED
//   blocked thread          -> NOT_RUNNABLE
//   no such thread          -> NOT_FOUND
//   CPU outside the enclave -> CPU_UNAVAILABLE
//   unknown flag            -> INVALID
//   all current             -> COMMITTED         (the thread starts on that CPU)
// Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

namespace {

struct Worker {
  std::atomic<int> pid{0};
  std::atomic<bool> entered{false};
  std::atomic<uint64_t> spins{0};
  std::atomic<int> cpu{-1};
  std::thread th;
};

}  // namespace

int main() {
  Failures f;
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::printf("FAIL: needs 2 CPUs\n");
    return 1;
  }
  cpu_set_t cpu0;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  // A long watchdog: nothing may run these threads but a transaction.
  auto setup = Setup::Create(ghost::CpuList({1}), /*watchdog_ms=*/4000);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});  // never commits by itself

  std::atomic<bool> quit{false};
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  Worker spinner, pinned, sleeper, spinner2;
  cpu_set_t all;
  CPU_ZERO(&all);
  CPU_SET(0, &all);
  CPU_SET(1, &all);
  auto spin_body = [&](Worker* w, bool pin0) {
    w->pid = Gettid();
    sched_setaffinity(0, sizeof(cpu0), pin0 ? &cpu0 : &all);
    while (!w->entered.load()) SleepUs(100);
    EnterSchedExt();
    w->cpu = sched_getcpu();
    while (!quit.load()) w->spins++;
  };
  spinner.th = std::thread(spin_body, &spinner, false);
  pinned.th = std::thread(spin_body, &pinned, true);
  spinner2.th = std::thread(spin_body, &spinner2, false);
  sleeper.th = std::thread([&] {
    sleeper.pid = Gettid();
    sched_setaffinity(0, sizeof(all), &all);
    while (!sleeper.entered.load()) SleepUs(100);
    EnterSchedExt();
    sleeper.spins++;
    char c;
    (void)!read(pipefd[0], &c, 1);  // blocks: BLOCKED
    sleeper.spins++;
  });
  for (Worker* w : {&spinner, &pinned, &sleeper, &spinner2}) {
    while (w->pid.load() == 0) SleepUs(100);
    if (auto s = ks.EnrollPid(w->pid, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
    w->entered = true;
  }
  // Each appears (TASK_NEW) and waits for us.
  int64_t end = NowNs() + 3'000'000'000LL;
  while (NowNs() < end && (agent.TidOf(spinner.pid) == 0 || agent.TidOf(pinned.pid) == 0 ||
                           agent.TidOf(sleeper.pid) == 0 || agent.TidOf(spinner2.pid) == 0)) {
    agent.Drain();
    SleepUs(500);
  }
  const uint64_t t_spin = agent.TidOf(spinner.pid), t_pin = agent.TidOf(pinned.pid),
                 t_sleep = agent.TidOf(sleeper.pid), t_spin2 = agent.TidOf(spinner2.pid);
  f.Check(t_spin && t_pin && t_sleep && t_spin2, "the four threads reported TASK_NEW");

  // Commit one transaction to `cpu` and wait for its result.
  auto commit = [&](int cpu, uint64_t tid, uint64_t seq, uint64_t barrier, uint32_t flags) {
    ghost_txn t = {};
    t.tid = tid;
    t.task_seqnum = seq;
    t.agent_barrier = barrier;
    t.queue = setup->queue;
    t.flags = flags;
    if (!OpenTxn(ks, cpu, t)) return -2;
    if (!ks.Commit(ghost::CpuList({cpu})).ok()) return -3;
    return WaitTxn(ks, cpu, absl::Seconds(2));
  };
  auto seq_of = [&](uint64_t tid) { return agent.Threads()[tid].seq; };
  // A current transaction can still bounce (SCX_ENQ_IMMED finds the CPU
  // briefly busy: a kworker, an interrupt): the agent retries, as policies do.
  auto commit_current = [&](int cpu, uint64_t tid, uint32_t flags) {
    int r = -1;
    for (int attempt = 0; attempt < 8 && r != GHOST_TXN_COMMITTED; attempt++) {
      agent.Drain();
      r = commit(cpu, tid, seq_of(tid), agent.barrier(), flags);
      if (r != GHOST_TXN_COMMITTED) {
        std::printf("note: %s, retrying\n", ResultName(r));
        SleepUs(2000);
      }
    }
    return r;
  };
  auto expect = [&](const char* what, int got, int want) {
    f.Check(got == want, absl::StrFormat("%s -> %s (want %s)", what, ResultName(got),
                                         ResultName(want)));
  };

  // The sleeper must first run to block: commit it, then wait for BLOCKED.
  expect("current transaction for the sleeper", commit_current(1, t_sleep, 0),
         GHOST_TXN_COMMITTED);
  bool blocked = false;
  end = NowNs() + 3'000'000'000LL;
  while (NowNs() < end && !blocked) {
    agent.Drain();
    for (const ghost_msg& m : agent.Log()) {
      if (m.tid == t_sleep && m.type == GHOST_MSG_TASK_BLOCKED) blocked = true;
    }
    SleepUs(500);
  }
  f.Check(blocked, "the sleeper ran and blocked (TASK_BLOCKED)");

  agent.Drain();
  uint64_t before = spinner.spins.load();
  expect("old thread seqnum", commit(1, t_spin, seq_of(t_spin) - 1, agent.barrier(), 0),
         GHOST_TXN_TARGET_STALE);
  SleepUs(50'000);
  f.Check(spinner.spins.load() == before && spinner.cpu.load() == -1,
          "the stale-seqnum thread did not run");
  agent.Drain();
  expect("old agent barrier", commit(1, t_spin, seq_of(t_spin), agent.barrier() - 1, 0),
         GHOST_TXN_AGENT_STALE);
  SleepUs(50'000);
  f.Check(spinner.spins.load() == before, "the agent-stale thread did not run");
  agent.Drain();
  expect("CPU 1 for a thread allowed only CPU 0",
         commit(1, t_pin, seq_of(t_pin), agent.barrier(), 0), GHOST_TXN_NOT_ALLOWED);
  SleepUs(50'000);
  f.Check(pinned.cpu.load() == -1, "the not-allowed thread did not run");
  agent.Drain();
  expect("a blocked thread", commit(1, t_sleep, seq_of(t_sleep), agent.barrier(), 0),
         GHOST_TXN_NOT_RUNNABLE);
  expect("no such thread", commit(1, 0x7fffffffULL, 1, 0, GHOST_TXN_F_NO_BARRIER),
         GHOST_TXN_NOT_FOUND);
  agent.Drain();
  expect("CPU 0, outside the enclave", commit(0, t_spin, seq_of(t_spin), agent.barrier(), 0),
         GHOST_TXN_CPU_UNAVAILABLE);
  agent.Drain();
  expect("an unknown commit flag", commit(1, t_spin, seq_of(t_spin), agent.barrier(), 1u << 20),
         GHOST_TXN_INVALID);
  f.Check(spinner.spins.load() == before && spinner.cpu.load() == -1,
          "no failed transaction ran the thread");

  // All current: it runs, on CPU 1.
  int r = commit_current(1, t_spin, 0);
  expect("a current transaction", r, GHOST_TXN_COMMITTED);
  end = NowNs() + 2'000'000'000LL;
  while (NowNs() < end && spinner.spins.load() == before) SleepUs(1000);
  f.Check(spinner.spins.load() > before && spinner.cpu.load() == 1,
          absl::StrFormat("the committed thread started on CPU 1 (cpu %d)", spinner.cpu.load()));

  // Preemption: without GHOST_TXN_F_PREEMPT a busy CPU is unavailable; with
  // it the new thread takes the CPU and the old one goes back (PREEMPT).
  // Waits (up to 2 s: a loaded TCG host delays the kick's IPI well past
  // 20 ms) for a TASK_PREEMPT of `tid` logged at index `from` or later.
  auto preempted = [&](uint64_t tid, size_t from) {
    int64_t until = NowNs() + 2'000'000'000LL;
    do {
      agent.Drain();
      auto log = agent.Log();
      for (size_t i = from; i < log.size(); i++) {
        if (log[i].tid == tid && log[i].type == GHOST_MSG_TASK_PREEMPT) return true;
      }
      SleepUs(1000);
    } while (NowNs() < until);
    return false;
  };
  agent.Drain();
  expect("a second thread to the busy CPU, no PREEMPT flag",
         commit(1, t_spin2, seq_of(t_spin2), agent.barrier(), 0), GHOST_TXN_CPU_UNAVAILABLE);
  size_t mark = agent.Log().size();
  r = commit_current(1, t_spin2, GHOST_TXN_F_PREEMPT);
  expect("the same with GHOST_TXN_F_PREEMPT", r, GHOST_TXN_COMMITTED);
  f.Check(preempted(t_spin, mark), "the running thread was preempted (TASK_PREEMPT)");
  end = NowNs() + 2'000'000'000LL;
  while (NowNs() < end && spinner2.cpu.load() != 1) SleepUs(1000);
  f.Check(spinner2.cpu.load() == 1, "the preempting thread started on CPU 1");

  // An idle transaction unschedules the CPU.
  agent.Drain();
  mark = agent.Log().size();
  expect("idle transaction (no thread) on CPU 1",
         commit(1, GHOST_TID_NONE, 0, agent.barrier(), 0), GHOST_TXN_COMMITTED);
  f.Check(preempted(t_spin2, mark), "the idle transaction sent the thread back (TASK_PREEMPT)");
  uint64_t s1 = spinner2.spins.load();
  SleepUs(50'000);
  f.Check(spinner2.spins.load() == s1, "CPU 1 stays unscheduled: the thread does not run");

  // Let everything finish: the watchdog's fallback runs what we never place.
  quit = true;
  (void)!write(pipefd[1], "x", 1);
  spinner.th.join();
  pinned.th.join();
  sleeper.th.join();
  spinner2.th.join();
  f.Check(true, "every thread finished (unplaced ones through the fallback)");
  f.Check(ks.ClassInfo().fallback_runs > 0,
          absl::StrFormat("the fallback ran threads the agent left (%u runs)",
                          ks.ClassInfo().fallback_runs));
  CheckClassAlive(ks, f);
  if (f.n != 0) {
    for (const ghost_msg& m : agent.Log()) {
      absl::PrintF("  msg %s tid %u seq %u cpu %u\n", ghost::MessageTypeName(m.type), m.tid, m.seqnum, m.cpu);
    }
  }
  return f.n == 0 ? 0 : 1;
}
