// ghost_wakeup_commit: an agent that commits a thread the moment its
// TASK_WAKEUP arrives, to an idle enclave CPU, gets COMMITTED on the first
// try (as real agents do: they commit exactly then). The woken thread is
// queued on that CPU's runqueue, which makes sched_ext treat the idle CPU as
// "about to run one of ours" and refuse an SCX_ENQ_IMMED insert; the class
// must not turn that into CPU_UNAVAILABLE.
// The waker is a CFS thread on another CPU (the wake-up queues the thread on
// CPU 1 from CPU 2, as in ghOSt's message-delivery benchmark).
// Needs 3 CPUs: the agent on CPU 0, the enclave is CPU 1, the waker on CPU 2.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  if (!HaveCpus(3)) return 1;
  BecomeAgent(0);
  // A long watchdog: nothing may run the worker but our transactions.
  auto setup = Setup::Create({.cpus = ghost::CpuList({1})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  constexpr int kSleeps = 40;
  std::atomic<int> done{0}, want{0};
  std::atomic<bool> stop{false};
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  SpinningWorker worker;
  worker.Start(CpuSet({1}), [&](SpinningWorker&) {
    for (int i = 0; i < kSleeps; i++) {
      char c;
      if (read(pipefd[0], &c, 1) != 1) break;  // BLOCKED until the waker writes
      done++;
    }
  });
  // Its start must not depend on the agent sleeping: the agent below spins
  // while the worker is blocked, and once a loaded run did so before the
  // waker, made on the agent's CPU at its priority, ever ran (0 wake-ups).
  std::thread waker = StartCfsThread(CpuSet({2}), [&] {
    int sent = 0;
    while (!stop.load() && sent < kSleeps) {
      if (want.load() > sent) {
        (void)!write(pipefd[1], "x", 1);  // TASK_WAKEUP, queued on CPU 1 from here
        sent++;
      } else {
        SleepUs(200);
      }
    }
  });
  if (auto s = worker.Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));

  // Commit the thread to CPU 1 at its current seqnum; the result.
  auto commit = [&](uint64_t tid) {
    agent.Drain();
    return agent.Commit(1, tid, agent.Threads()[tid].seq, agent.barrier(), 0);
  };

  int first_current = 0, first_committed = 0, stale = 0, retries = 0;
  std::map<int, int> first_results;
  uint64_t tid = 0, handled_seq = 0;
  const int64_t end = NowNs() + 60'000'000'000LL;
  while (done.load() < kSleeps && NowNs() < end) {
    agent.Drain();
    if (tid == 0) tid = agent.TidOf(worker.pid());
    if (tid == 0) {
      SleepUs(200);
      continue;
    }
    ThreadState st = agent.Threads()[tid];
    if (!st.runnable) {
      // Blocked in read(): ask for the next wake-up once.
      if (want.load() == done.load()) want++;
      continue;  // spin: the commit follows the WAKEUP at once
    }
    if (st.seq == handled_seq) continue;
    handled_seq = st.seq;
    int r = commit(tid);
    first_results[r]++;
    if (r == GHOST_TXN_AGENT_STALE || r == GHOST_TXN_TARGET_STALE) {
      stale++;  // raced a message: not a fresh wake-up commit
    } else {
      first_current++;
      first_committed += r == GHOST_TXN_COMMITTED;
    }
    // Retries (a real bounce: an interrupt or kworker on CPU 1) until a
    // deadline, not a count: a loaded host stretches every bounce.
    WaitUntil(
        [&] {
          if (r == GHOST_TXN_COMMITTED) return true;
          retries++;
          r = commit(tid);
          return r == GHOST_TXN_COMMITTED;
        },
        absl::Seconds(10), 1000);
    if (r != GHOST_TXN_COMMITTED) {
      f.Fail(absl::StrFormat("the worker could not be committed: %s", ResultName(r)));
      break;
    }
    // Wait for it to block again (or finish) before the next round.
    const int64_t until = NowNs() + 2'000'000'000LL;
    while (NowNs() < until && done.load() < kSleeps) {
      agent.Drain();
      if (!agent.Threads()[tid].runnable) break;
      SleepUs(100);
    }
  }
  stop = true;
  waker.join();
  if (done.load() < kSleeps) close(pipefd[1]);  // lets a stuck worker's read() end
  worker.Join();
  std::string results;
  for (auto [r, n] : first_results) results += absl::StrFormat(" %s=%d", ResultName(r), n);
  std::printf("first commits:%s; %d retries\n", results.c_str(), retries);
  f.Check(done.load() == kSleeps,
          absl::StrFormat("the worker slept and woke %d times (got %d)", kSleeps, done.load()));
  f.Check(first_current >= kSleeps / 2,
          absl::StrFormat("%d first commits were current (%d wake-ups)", first_current, kSleeps));
  // An idle CPU takes a current wake-up commit; allow rare real bounces (an
  // interrupt or kworker on CPU 1 at that moment).
  f.Check(first_committed * 4 >= first_current * 3,
          absl::StrFormat("%d of %d current wake-up commits COMMITTED on the first try",
                          first_committed, first_current));
  CheckClassAlive(ks, f);
  if (f.n != 0) PrintLog(agent);
  return f.n == 0 ? 0 : 1;
}
