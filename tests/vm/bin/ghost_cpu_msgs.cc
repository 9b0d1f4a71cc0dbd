// ghost_cpu_msgs: CPU messages of the BPF class. With tick messages on, a CPU
// running a ghost thread sends CPU_TICK; an armed CPU timer sends
// CPU_TIMER_EXPIRED with its cookie; with NOT_IDLE on, a CPU leaving idle
// sends CPU_NOT_IDLE; CPU messages carry increasing per-CPU
// seqnums. Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <sched.h>

#include <algorithm>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1}), .tick_messages = true});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {1});
  f.Check(ks.SetEnclaveCpuMessages(setup->enclave,
                                   GHOST_ENCLAVE_MSG_TICK | GHOST_ENCLAVE_MSG_NOT_IDLE).ok(),
          "ask for CPU_TICK and CPU_NOT_IDLE");

  SpinningWorker worker;
  worker.Start(CpuSet({1}));
  if (auto s = worker.Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  const uint64_t cookie = 0xfeedbeef;
  f.Check(ks.ArmCpuTimer(1, absl::Milliseconds(30), cookie).ok(), "arm a timer on CPU 1");
  f.Check(absl::IsInvalidArgument(ks.ArmCpuTimer(0, absl::Milliseconds(1), 1)),
          "a timer on a CPU outside every enclave is refused");
  // Rounds keep the worker on CPU 1 until each kind of CPU message came.
  auto seen = [&](uint16_t type) {
    for (const ghost_msg& m : agent.Log()) {
      if (m.tid == GHOST_TID_NONE && m.cpu == 1 && m.type == type) return true;
    }
    return false;
  };
  WaitUntil(
      [&] {
        agent.Round();
        return seen(GHOST_MSG_CPU_TICK) && seen(GHOST_MSG_CPU_TIMER_EXPIRED) &&
               seen(GHOST_MSG_CPU_NOT_IDLE);
      },
      absl::Seconds(20), 500);
  worker.Quit();
  const uint64_t tid = agent.TidOf(worker.pid());
  WaitUntil(
      [&] {
        agent.Round();
        return agent.Threads()[tid].dead;
      },
      absl::Seconds(10), 500);
  worker.Join();
  agent.Drain();
  int ticks = 0, timers = 0, not_idle = 0;
  // Per-CPU seqnums are unique and gap-free. They need not arrive in order:
  // CPU 1's timer message is produced by whichever CPU runs the timer, and it
  // can take its number before a message produced on CPU 1 itself.
  std::vector<uint64_t> seqs;
  bool cookie_ok = false;
  for (const ghost_msg& m : agent.Log()) {
    if (m.tid != GHOST_TID_NONE || m.cpu != 1) continue;
    seqs.push_back(m.seqnum);
    if (m.type == GHOST_MSG_CPU_TICK) ticks++;
    if (m.type == GHOST_MSG_CPU_NOT_IDLE) not_idle++;
    if (m.type == GHOST_MSG_CPU_TIMER_EXPIRED) {
      timers++;
      cookie_ok = m.cpu_event.cookie == cookie;
    }
  }
  f.Check(ticks > 0, absl::StrFormat("CPU_TICK from CPU 1 while a ghost thread ran (%d)", ticks));
  f.Check(timers == 1 && cookie_ok,
          absl::StrFormat("one CPU_TIMER_EXPIRED with the cookie (%d)", timers));
  f.Check(not_idle > 0, absl::StrFormat("CPU_NOT_IDLE from CPU 1 (%d)", not_idle));
  std::sort(seqs.begin(), seqs.end());
  bool seq_ok = !seqs.empty() && seqs.front() >= 1 &&
                std::adjacent_find(seqs.begin(), seqs.end()) == seqs.end() &&
                seqs.back() - seqs.front() + 1 == seqs.size();
  f.Check(seq_ok, absl::StrFormat("CPU messages carry unique, gap-free per-CPU seqnums (%d..%d, %d)",
                                  seqs.empty() ? 0 : seqs.front(), seqs.empty() ? 0 : seqs.back(),
                                  seqs.size()));
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
