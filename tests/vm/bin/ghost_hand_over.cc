// ghost_hand_over: the class's hand-over (ghost_hand_over, bpf/progs/pinned.bpf.h)
// takes only what pinned push could have queued itself, and runs what it took
// on that CPU, in the order given, as pinned runs.
//   a thread allowed on CPUs 1 and 2         -> NOT_ALLOWED
//   a thread pinned to CPU 2, handed to 1    -> NOT_ALLOWED
//   an old thread seqnum                     -> TARGET_STALE
//   no such thread                           -> NOT_FOUND
//   CPU 0, outside the enclave               -> CPU_UNAVAILABLE
//   more entries than GHOST_HAND_OVER_MAX    -> the call fails (EINVAL)
//   (none of those threads runs)
//   three threads pinned to CPU 1, one call  -> COMMITTED each; they run on
//                                               CPU 1 in that order, counted
//                                               as pinned runs, not commits
//   a blocked thread                         -> NOT_RUNNABLE
// Needs 3 CPUs: the agent on CPU 0, the enclave is CPUs 1 and 2.
#include <bpf/bpf.h>
#include <errno.h>
#include <sched.h>

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
  auto* bss = ks.bpf_class().skel()->bss;
  TestAgent agent(ks, setup->queue, {});  // never commits by itself

  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  // First runs, in the order they happened (index into `pinned`).
  std::atomic<int> next_run{0};
  int run_order[3] = {-1, -1, -1};
  SpinningWorker wide, other_cpu, pinned[3], sleeper;
  wide.Start(CpuSet({1, 2}));
  other_cpu.Start(CpuSet({2}));
  for (int i = 0; i < 3; i++) {
    pinned[i].Start(CpuSet({1}), [&, i](SpinningWorker& w) {
      run_order[next_run++] = i;
      while (!w.quitting()) SpinNs(100'000);
    });
  }
  std::atomic<int> sleeper_steps{0};
  sleeper.Start(CpuSet({1}), [&](SpinningWorker&) {
    sleeper_steps++;
    char c;
    // Blocks (BLOCKED); each byte but 'q' wakes it to block again.
    while (read(pipefd[0], &c, 1) == 1 && c != 'q') {
    }
    sleeper_steps++;
  });
  std::vector<SpinningWorker*> all = {&wide, &other_cpu, &pinned[0], &pinned[1], &pinned[2],
                                      &sleeper};
  for (SpinningWorker* w : all) {
    if (auto s = w->Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  }
  const uint64_t watchdog_moves_enrolled = bss->nr_watchdog_moves;
  std::vector<uint64_t> tids;
  for (SpinningWorker* w : all) tids.push_back(agent.WaitTid(w->pid()));
  for (uint64_t t : tids) f.Check(t != 0, "every thread reported TASK_NEW");
  if (f.n != 0) return 1;
  const uint64_t t_wide = tids[0], t_other = tids[1], t_sleep = tids[5];
  const uint64_t t_pin[3] = {tids[2], tids[3], tids[4]};
  auto seq_of = [&](uint64_t tid) { return agent.Threads()[tid].seq; };
  auto expect = [&](const char* what, uint32_t got, uint32_t want) {
    f.Check(got == want, absl::StrFormat("%s -> %s (want %s)", what, ResultName(got),
                                         ResultName(want)));
  };
  // One call; made again while a message raced it (a thread parked anew on
  // a loaded host says nothing about the rule a step checks).
  using Entry = ghost::KernelSide::HandOverEntry;
  auto hand_over = [&](int cpu, std::vector<std::pair<uint64_t, int64_t>> what) {
    std::vector<Entry> entries;
    for (int attempt = 0; attempt < 5; attempt++) {
      agent.Drain();
      entries.clear();
      for (auto [tid, seq_delta] : what) {
        entries.push_back({.tid = tid, .seqnum = seq_of(tid) + seq_delta});
      }
      if (absl::Status s = ks.HandOver(cpu, absl::MakeSpan(entries)); !s.ok()) {
        f.Fail(absl::StrFormat("HandOver: %s", s.message()));
        break;
      }
      bool raced = false;
      agent.Drain();
      for (size_t i = 0; i < entries.size(); i++) {
        raced |= what[i].second == 0 && entries[i].result == GHOST_TXN_TARGET_STALE &&
                 seq_of(entries[i].tid) != entries[i].seqnum;
      }
      if (!raced) break;
      std::printf("note: a message raced the hand-over: again\n");
    }
    return entries;
  };

  // Refusals: nothing the class could not have queued itself on CPU 1.
  const uint64_t handed0 = bss->nr_hand_overs;
  auto refused = hand_over(1, {{t_wide, 0}, {t_other, 0}, {t_pin[0], -1}, {0x7fffffffULL, 0}});
  expect("a thread allowed on CPUs 1 and 2", refused[0].result, GHOST_TXN_NOT_ALLOWED);
  expect("a thread pinned to CPU 2, to CPU 1", refused[1].result, GHOST_TXN_NOT_ALLOWED);
  expect("an old thread seqnum", refused[2].result, GHOST_TXN_TARGET_STALE);
  expect("no such thread", refused[3].result, GHOST_TXN_NOT_FOUND);
  auto outside = hand_over(0, {{t_pin[0], 0}});
  expect("CPU 0, outside the enclave", outside[0].result, GHOST_TXN_CPU_UNAVAILABLE);
  {
    ghost_hand_over_args args = {.cpu = 1, .nr = GHOST_HAND_OVER_MAX + 1};
    LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = &args, .ctx_size_in = sizeof(args));
    const int err = bpf_prog_test_run_opts(
        bpf_program__fd(ks.bpf_class().skel()->progs.ghost_hand_over), &run);
    f.Check(err == 0 && static_cast<int>(run.retval) == -EINVAL && args.nr_handed == 0,
            absl::StrFormat("%d entries are refused (call %d, retval %d)",
                            GHOST_HAND_OVER_MAX + 1, err, static_cast<int>(run.retval)));
  }
  SleepUs(50'000);  // negative check: a window
  if (bss->nr_watchdog_moves != watchdog_moves_enrolled) {
    // Only a scenario thread kept off its CPU for the watchdog's 15 s gets here.
    std::printf("note: the class's watchdog ran parked threads: who ran is not judged\n");
  } else {
    for (SpinningWorker* w : all) {
      f.Check(w->first_cpu() == -1 && w->spins() == 0 && next_run == 0,
              absl::StrFormat("refused thread %d did not run", w->pid()));
    }
  }
  f.Check(bss->nr_hand_overs == handed0, "no refused entry was counted as handed over");

  // Three threads pinned to CPU 1 in one call: they run there in that order.
  const uint64_t pinned_runs0 = bss->nr_runs_pinned, committed_runs0 = bss->nr_runs_committed;
  auto took = hand_over(1, {{t_pin[0], 0}, {t_pin[1], 0}, {t_pin[2], 0}});
  for (int i = 0; i < 3; i++) {
    expect(absl::StrFormat("pinned thread %d to CPU 1", i).c_str(), took[i].result,
           GHOST_TXN_COMMITTED);
  }
  // A thread sent back before its body ran (a higher class took CPU 1 as
  // it started: TASK_PREEMPT, then CPU_BUSY) is parked for its agent: hand it
  // over again, as the agent would. The order is judged only without that.
  auto sent_back_since = [&](uint64_t tid, size_t from) {
    return agent.LoggedSince(tid, GHOST_MSG_TASK_PREEMPT, from);
  };
  size_t mark = agent.Log().size();
  int handed = 3;
  bool disturbed = false;
  for (int attempt = 0; attempt < 5 && next_run < 3; attempt++) {
    WaitUntil(
        [&] {
          if (next_run == 3) return true;
          for (int i = 0; i < 3; i++) {
            if (pinned[i].first_cpu() < 0 && sent_back_since(t_pin[i], mark)) return true;
          }
          return false;
        },
        absl::Seconds(10));
    const size_t from = mark;
    mark = agent.Log().size();
    for (int i = 0; i < 3; i++) {
      if (pinned[i].first_cpu() >= 0 || !sent_back_since(t_pin[i], from)) continue;
      std::printf("note: pinned thread %d was sent back before it ran: again\n", i);
      disturbed = true;
      handed += hand_over(1, {{t_pin[i], 0}})[0].result == GHOST_TXN_COMMITTED;
    }
  }
  const bool three_ran = next_run == 3;
  f.Check(three_ran, absl::StrFormat("the three ran (%d did)", next_run.load()));
  for (int i = 0; i < 3; i++) {
    f.Check(pinned[i].first_cpu() == 1,
            absl::StrFormat("pinned thread %d ran on CPU %d (want 1)", i, pinned[i].first_cpu()));
    if (!disturbed) {
      f.Check(run_order[i] == i,
              absl::StrFormat("run %d was thread %d (want %d)", i, run_order[i], i));
    }
  }
  if (disturbed) std::printf("note: the run order is not judged (a thread was sent back)\n");
  f.Check(bss->nr_hand_overs - handed0 == static_cast<uint64_t>(handed),
          absl::StrFormat("%d hand-overs counted (%llu)", handed,
                          static_cast<unsigned long long>(bss->nr_hand_overs - handed0)));
  f.Check(bss->nr_runs_pinned - pinned_runs0 >= 3 && bss->nr_runs_committed == committed_runs0,
          absl::StrFormat("counted as pinned runs (%llu), not committed ones (%llu)",
                          static_cast<unsigned long long>(bss->nr_runs_pinned - pinned_runs0),
                          static_cast<unsigned long long>(bss->nr_runs_committed -
                                                          committed_runs0)));

  // The sleeper: handed over, it runs and blocks; blocked, it is refused.
  // Parked since it was enrolled, it is the class's watchdog's if this thread
  // was kept off its CPU for the watchdog's 15 s (a stalled guest): then let
  // it block, wake it, and hand it over anew.
  bool blocked = false;
  for (int attempt = 0; attempt < 5 && !blocked; attempt++) {
    agent.Drain();
    const size_t from = agent.Log().size();
    const uint32_t result = hand_over(1, {{t_sleep, 0}})[0].result;
    auto blocked_since = [&] {
      return agent.LoggedSince(t_sleep, GHOST_MSG_TASK_BLOCKED, from);
    };
    if (result != GHOST_TXN_COMMITTED && bss->nr_watchdog_moves != watchdog_moves_enrolled) {
      std::printf("note: the class's watchdog ran the sleeper (%s): wake it and again\n",
                  ResultName(result));
      WaitUntil(
          [&] {
            agent.Drain();
            return !agent.Threads()[t_sleep].runnable;
          },
          absl::Seconds(10));
      const size_t woken_from = agent.Log().size();
      (void)!write(pipefd[1], "w", 1);
      agent.WaitMessage(t_sleep, GHOST_MSG_TASK_WAKEUP, woken_from);
      continue;
    }
    expect("the sleeper to CPU 1", result, GHOST_TXN_COMMITTED);
    WaitUntil([&] { return blocked_since() || sent_back_since(t_sleep, from); },
              absl::Seconds(10));
    blocked = blocked_since();
    if (blocked || !sent_back_since(t_sleep, from)) break;
    std::printf("note: the sleeper was sent back before it blocked: again\n");
  }
  f.Check(blocked, "the handed-over sleeper ran and blocked (TASK_BLOCKED)");
  expect("a blocked thread", hand_over(1, {{t_sleep, 0}})[0].result, GHOST_TXN_NOT_RUNNABLE);

  // Let everything finish: without the enclave, the class's FIFO runs them.
  for (SpinningWorker* w : all) w->Quit();
  (void)!write(pipefd[1], "q", 1);
  ReleaseEnclave(ks, setup->enclave, f);
  for (SpinningWorker* w : all) w->Join();
  f.Check(sleeper_steps == 2, "every thread finished");
  CheckClassAlive(ks, f);
  if (f.n != 0) PrintLog(agent);
  return f.n == 0 ? 0 : 1;
}
