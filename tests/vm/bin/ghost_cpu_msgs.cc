// ghost_cpu_msgs: CPU messages of the BPF class. With tick messages on, a CPU
// running a ghost thread sends CPU_TICK; an armed CPU timer sends
// CPU_TIMER_EXPIRED with its cookie; with NOT_IDLE on, a CPU leaving idle
// sends CPU_NOT_IDLE; CPU messages carry increasing per-CPU
// seqnums. Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  cpu_set_t cpu0, cpu1;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  CPU_ZERO(&cpu1);
  CPU_SET(1, &cpu1);
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  auto setup = Setup::Create(ghost::CpuList({1}), /*watchdog_ms=*/4000, /*tick_messages=*/true);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {1});
  f.Check(ks.SetEnclaveCpuMessages(setup->enclave,
                                   GHOST_ENCLAVE_MSG_TICK | GHOST_ENCLAVE_MSG_NOT_IDLE).ok(),
          "ask for CPU_TICK and CPU_NOT_IDLE");

  std::atomic<bool> go{false}, quit{false};
  std::atomic<int> wpid{0};
  std::thread worker([&] {
    sched_setaffinity(0, sizeof(cpu1), &cpu1);
    wpid = Gettid();
    while (!go.load()) SleepUs(100);
    EnterSchedExt();
    while (!quit.load()) {
    }
  });
  while (wpid.load() == 0) SleepUs(100);
  if (auto s = ks.EnrollPid(wpid, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  go = true;
  const uint64_t cookie = 0xfeedbeef;
  f.Check(ks.ArmCpuTimer(1, absl::Milliseconds(30), cookie).ok(), "arm a timer on CPU 1");
  f.Check(absl::IsInvalidArgument(ks.ArmCpuTimer(0, absl::Milliseconds(1), 1)),
          "a timer on a CPU outside every enclave is refused");
  int64_t end = NowNs() + 300'000'000LL;
  while (NowNs() < end) {
    agent.Round();  // keeps the worker on CPU 1
    SleepUs(500);
  }
  quit = true;
  end = NowNs() + 2'000'000'000LL;
  while (NowNs() < end) {
    agent.Round();
    SleepUs(500);
    if (agent.Threads()[agent.TidOf(wpid)].dead) break;
  }
  worker.join();
  agent.Drain();
  int ticks = 0, timers = 0, not_idle = 0;
  uint64_t last_seq = 0;
  bool seq_ok = true, cookie_ok = false;
  for (const ghost_msg& m : agent.Log()) {
    if (m.tid != GHOST_TID_NONE || m.cpu != 1) continue;
    if (m.seqnum <= last_seq) seq_ok = false;
    last_seq = m.seqnum;
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
  f.Check(seq_ok, "CPU messages carry increasing per-CPU seqnums");
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
