// ghost_remote_change: changing a property of a running enclave thread from
// another CPU (here its affinity, as a program's main thread, taskset or
// ghost-run --pid do) makes the kernel call the class's ops.stopping and
// ops.running for it on the CALLER's CPU, under the thread's runqueue lock.
// The class must take the thread's CPU from the thread, not from the CPU the
// callback runs on; otherwise the caller's CPU keeps the thread as "ours,
// running here" while nothing of ours runs there to clear it, and every later
// commit to that CPU fails as CPU_UNAVAILABLE (a per-CPU agent's CPU stops
// until the fallback runs something there: cyclictest under fifo-per-cpu
// waited out the 15 s watchdog so).
//   A spins on CPU 1 (pinned there: on a loaded host the class's watchdog may
//   run it, and must not run it on CPU 2); a fair-class thread on CPU 2
//   changes A's affinity (alternately {1,2} and {1}, four times, ending at {1})
//     -> A's status word still says CPU 1
//     -> B committed to CPU 2 (idle) is COMMITTED and runs there
//   A, still on CPU 1, set to SCHED_OTHER from CPU 2, then exits; four more
//   threads in turn: each committed to CPU 1, then the same
//     -> each next commit to CPU 1 (idle) is COMMITTED
//     -> C committed to CPU 1 (idle) is COMMITTED and runs there
// Needs 3 CPUs: the agent on CPU 0, the enclave is CPUs 1 and 2.
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

int main() {
  Failures f;
  if (!HaveCpus(3)) return 1;
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1, 2})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});  // commits only what the steps say

  SpinningWorker a, b;
  a.Start(CpuSet({1}));
  b.Start(CpuSet({1, 2}));
  for (SpinningWorker* w : {&a, &b}) {
    if (auto s = w->Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  }
  const uint64_t ta = agent.WaitTid(a.pid()), tb = agent.WaitTid(b.pid());
  f.Check(ta && tb, "both threads reported TASK_NEW");

  // ops.running / ops.stopping calls made on another CPU than the thread's
  // (the case this scenario is about), as the class counts them.
  auto remote_calls = [&] {
    const auto* bss = ks.bpf_class().skel()->bss;
    return std::make_pair(__atomic_load_n(&bss->nr_remote_running, __ATOMIC_RELAXED),
                          __atomic_load_n(&bss->nr_remote_stopping, __ATOMIC_RELAXED));
  };
  // For failure messages: how the class ran threads other than by commit.
  auto class_runs = [&] {
    const auto* bss = ks.bpf_class().skel()->bss;
    return absl::StrFormat("class: %llu watchdog moves, %llu fallback runs, %llu starved runs",
                           static_cast<unsigned long long>(bss->nr_watchdog_moves),
                           static_cast<unsigned long long>(bss->nr_runs_fallback),
                           static_cast<unsigned long long>(bss->nr_starved_runs));
  };
  auto on_cpu1 = [&] {
    auto sw = agent.StatusWord(ta);
    return sw.ok() && sw->on_cpu() && sw->cpu == 1;
  };
  // Waits until `ran` holds. A kernel thread taking the CPU (a loaded host)
  // sends the thread back to us, parked: then it is committed there again,
  // as its agent would, however often that happens. The answer is what the
  // wait saw, never a second look (a loaded CI run saw A preempted between
  // the two).
  auto wait_running = [&](uint64_t tid, int cpu, const char* name,
                          const std::function<bool()>& ran) {
    for (int i = 0;; i++) {
      if (WaitUntil(ran, absl::Seconds(10))) return true;
      if (i == 3) return false;
      auto sw = agent.StatusWord(tid);
      if (sw.ok() && !sw->on_cpu()) {
        std::printf("note: %s is not running; committed to CPU %d again: %s\n", name, cpu,
                    ResultName(agent.CommitCurrent(cpu, tid)));
      }
    }
  };
  const int r = agent.CommitCurrent(1, ta);
  f.Check(r == GHOST_TXN_COMMITTED, absl::StrFormat("A committed to CPU 1: %s", ResultName(r)));
  const bool a_ran = wait_running(ta, 1, "A", [&] { return on_cpu1() && a.cpu() == 1; });
  f.Check(a_ran,
          absl::StrFormat("A runs on CPU 1 (A last spun on CPU %d, %llu spins; %s; B: %s; %s)",
                          a.cpu(), static_cast<unsigned long long>(a.spins()), agent.History(ta),
                          agent.History(tb), class_runs()));

  // From CPU 2, while A spins on CPU 1. Each change is made while A runs
  // (a fair-class thread taking CPU 1 for a moment makes one change miss
  // that; four make a miss of all of them unlikely). The last leaves A
  // pinned to CPU 1 again, so nothing may run it on CPU 2 before B's commit.
  const auto remote_before_changes = remote_calls();
  std::thread changer = StartCfsThread(CpuSet({2}), [&] {
    for (int i = 0; i < 4; i++) {
      WaitUntil([&] { return on_cpu1(); }, absl::Seconds(5));
      cpu_set_t mask = i % 2 == 0 ? CpuSet({1, 2}) : CpuSet({1});
      if (sched_setaffinity(a.pid(), sizeof(mask), &mask) != 0) {
        f.Fail(absl::StrFormat("sched_setaffinity(A): %s", strerror(errno)));
      }
      SleepUs(20'000);
    }
  });
  changer.join();
  {
    const auto r = remote_calls();
    std::printf("note: the affinity changes made %llu ops.running and %llu ops.stopping calls "
                "on another CPU than the thread's\n",
                static_cast<unsigned long long>(r.first - remote_before_changes.first),
                static_cast<unsigned long long>(r.second - remote_before_changes.second));
  }
  // A kernel thread taking CPU 1 for a moment (a loaded host) sends A back to
  // us, parked: then we commit it there again, as its agent would, however
  // often that happens within the wait (in a loaded CI run it happened just
  // after A was seen on CPU 1, and a plain wait then ran out). With the class
  // taking the CPU from the callback, its word would say CPU 2 while A runs:
  // that is never recommitted, and the wait fails.
  auto word = [&] {
    auto sw = agent.StatusWord(ta);
    if (!sw.ok()) return std::string(sw.status().message());
    return absl::StrFormat("flags=%#x cpu=%u seq=%u", sw->flags, sw->cpu, sw->seqnum);
  };
  // A parked thread does not spin: a word that says "off CPU", unchanged
  // (same seqnum) for 100 ms while A's spin count moves, is the wrong word
  // this scenario is for, and recommitting would hide it.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  bool a_on_cpu1 = false, word_lies = false;
  while (!(a_on_cpu1 = WaitUntil([&] { return on_cpu1(); }, absl::Seconds(1))) &&
         absl::Now() < until) {
    auto sw = agent.StatusWord(ta);
    if (!sw.ok() || sw->on_cpu()) continue;
    const uint64_t spins = a.spins();
    SleepUs(100'000);
    auto later = agent.StatusWord(ta);
    if (later.ok() && !later->on_cpu() && later->seqnum == sw->seqnum && a.spins() != spins) {
      word_lies = true;
      break;
    }
    if (later.ok() && !later->on_cpu()) {
      std::printf("note: A was preempted meanwhile; committed to CPU 1 again: %s\n",
                  ResultName(agent.CommitCurrent(1, ta)));
    }
  }
  f.Check(!word_lies,
          absl::StrFormat("A spins (on CPU %d) while its status word says it is off CPU: %s",
                          a.cpu(), word()));
  f.Check(a_on_cpu1,
          absl::StrFormat("A's status word still says it runs on CPU 1 (A on CPU %d; word: %s)",
                          a.cpu(), word()));

  // CPU 2 runs nothing of ours: B's commit there must take. A kernel thread
  // holding CPU 2 for a moment (a loaded host) is retried for 2 s, less than
  // the enclave's watchdog: a CPU the class wrongly keeps as "ours, running
  // here" refuses every commit until the fallback runs something there.
  const int rb = agent.CommitCurrent(2, tb, 0, /*retry_unavailable=*/true, absl::Seconds(2));
  f.Check(rb == GHOST_TXN_COMMITTED,
          absl::StrFormat("B committed to CPU 2, where A's affinity was changed from: %s",
                          ResultName(rb)));
  const bool b_ran =
      rb != GHOST_TXN_COMMITTED || wait_running(tb, 2, "B", [&] { return b.cpu() == 2; });
  f.Check(b_ran,
          absl::StrFormat("B runs on CPU 2 (B last spun on CPU %d, %llu spins; %s; A: %s; %s)",
                          b.cpu(), static_cast<unsigned long long>(b.spins()), agent.History(tb),
                          agent.History(ta), class_runs()));
  // B is done: preempted later by the leavers' fair threads on CPU 2, it
  // would wait out the watchdog and could be run on CPU 1 by the fallback.
  b.Quit();
  b.Join();

  // The stopping side alone. A thread that leaves the class while it runs,
  // set to SCHED_OTHER from another CPU (cyclictest does this to its own
  // threads), gets ops.stopping on the caller's CPU and never ops.running
  // again: only ops.stopping can clear "it runs on CPU 1". It then exits, so
  // CPU 1 runs nothing, and the next commit there must take: the next
  // leaver's, then C's (allowed only CPU 1, waiting, never placed yet).
  // A leaver must really run at the change (one preempted just before leaves
  // through CPU 1's own ops.stopping, which proves nothing): its word says
  // CPU 1 and it spins there right before the change. A loaded host can
  // still preempt it in between, so A and four more leavers do it in turn.
  auto leave_while_running = [&](SpinningWorker& w, uint64_t tid, const char* name) {
    auto spinning_on_cpu1 = [&] {
      auto sw = agent.StatusWord(tid);
      if (!sw.ok() || !sw->on_cpu() || sw->cpu != 1) return false;
      const uint64_t spins = w.spins();
      SleepUs(5'000);
      return w.cpu() == 1 && w.spins() != spins;
    };
    for (int i = 0; i < 3 && !WaitUntil(spinning_on_cpu1, absl::Seconds(5)); i++) {
      auto sw = agent.StatusWord(tid);
      if (sw.ok() && !sw->on_cpu()) {
        std::printf("note: %s is not running; committed to CPU 1 again: %s\n", name,
                    ResultName(agent.CommitCurrent(1, tid)));
      }
    }
    // Only what makes the test sharp: a leaver that was not running proves
    // nothing, but its next commit must still take.
    if (!spinning_on_cpu1()) {
      std::printf("note: %s was not seen spinning on CPU 1 before it left the class\n", name);
    }
    std::thread leaver = StartCfsThread(CpuSet({2}), [&] {
      sched_param sp = {};
      if (sched_setscheduler(w.pid(), SCHED_OTHER, &sp) != 0) {
        f.Fail(absl::StrFormat("sched_setscheduler(%s, SCHED_OTHER): %s", name, strerror(errno)));
      }
    });
    leaver.join();
    w.Quit();
    w.Join();
  };
  const auto remote_before_leaving = remote_calls();
  // Each next thread enters the class on CPU 2 and only then is moved to
  // CPU 1: one entering the class while it runs on CPU 1 would make CPU 1
  // its own (ops.running there) and hide a CPU left "ours" by the leaver.
  auto enter_then_move_to_cpu1 = [&](SpinningWorker& w, const std::string& name) -> uint64_t {
    w.Start(CpuSet({2}));
    if (auto s = w.Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
    const uint64_t tid = agent.WaitTid(w.pid());
    f.Check(tid != 0, absl::StrFormat("%s reported TASK_NEW", name));
    cpu_set_t one = CpuSet({1});
    if (sched_setaffinity(w.pid(), sizeof(one), &one) != 0) {
      f.Fail(absl::StrFormat("sched_setaffinity(%s): %s", name, strerror(errno)));
    }
    return tid;
  };
  leave_while_running(a, ta, "A");
  for (int n = 1; n <= 4; n++) {
    const std::string name = absl::StrFormat("leaver %d", n);
    SpinningWorker l;
    const uint64_t tl = enter_then_move_to_cpu1(l, name);
    const int rl = agent.CommitCurrent(1, tl, 0, /*retry_unavailable=*/true, absl::Seconds(2));
    f.Check(rl == GHOST_TXN_COMMITTED,
            absl::StrFormat("%s committed to CPU 1, which the one before left by leaving the "
                            "class: %s", name, ResultName(rl)));
    if (rl != GHOST_TXN_COMMITTED) {
      l.Quit();
      break;
    }
    leave_while_running(l, tl, name.c_str());
  }
  {
    const auto r = remote_calls();
    std::printf("note: the leavers made %llu ops.stopping calls on another CPU than the thread's\n",
                static_cast<unsigned long long>(r.second - remote_before_leaving.second));
  }
  SpinningWorker c;
  const uint64_t tc = enter_then_move_to_cpu1(c, "C");
  const int rc = agent.CommitCurrent(1, tc, 0, /*retry_unavailable=*/true, absl::Seconds(2));
  f.Check(rc == GHOST_TXN_COMMITTED,
          absl::StrFormat("C committed to CPU 1, which the last leaver left by leaving the class: %s",
                          ResultName(rc)));
  const bool c_ran =
      rc != GHOST_TXN_COMMITTED || wait_running(tc, 1, "C", [&] { return c.cpu() == 1; });
  f.Check(c_ran, absl::StrFormat("C runs on CPU 1 (C last spun on CPU %d; %s; %s)", c.cpu(),
                                 agent.History(tc), class_runs()));

  c.Quit();
  ReleaseEnclave(ks, setup->enclave, f);
  c.Join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
