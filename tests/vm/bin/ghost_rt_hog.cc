// ghost_rt_hog: an RT thread that takes an enclave CPU from a ghost thread
// yields CPU_BUSY (reason RT) for that CPU, the ghost thread goes back to its
// agent (TASK_PREEMPT), a commit to the CPU meanwhile fails CPU_UNAVAILABLE,
// and when the hog leaves CPU_AVAILABLE follows and the CPU takes commits again.
// Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::printf("FAIL: needs 2 CPUs\n");
    return 1;
  }
  cpu_set_t cpu0, cpu1;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  CPU_ZERO(&cpu1);
  CPU_SET(1, &cpu1);
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo(10)) std::printf("note: agent not SCHED_FIFO\n");
  auto setup = Setup::Create(ghost::CpuList({1}), /*watchdog_ms=*/4000);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  std::atomic<bool> quit{false}, go{false};
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
  uint64_t tid = 0;
  int64_t end = NowNs() + 3'000'000'000LL;
  while (NowNs() < end && tid == 0) {
    agent.Drain();
    tid = agent.TidOf(wpid);
    SleepUs(500);
  }
  SleepUs(20'000);
  auto commit = [&](bool retry_unavailable = true) {
    int r = -1;
    for (int i = 0; i < 5; i++) {
      agent.Drain();
      ghost_txn t = {};
      t.tid = tid;
      t.task_seqnum = agent.Threads()[tid].seq;
      t.agent_barrier = agent.barrier();
      t.queue = setup->queue;
      if (!OpenTxn(ks, 1, t)) return -2;
      if (!ks.Commit(ghost::CpuList({1})).ok()) return -3;
      r = WaitTxn(ks, 1, absl::Seconds(2));
      if (r != GHOST_TXN_TARGET_STALE && r != GHOST_TXN_AGENT_STALE &&
          !(r == GHOST_TXN_CPU_UNAVAILABLE && retry_unavailable)) {
        return r;
      }
      SleepUs(2000);  // raced a message, or a brief bounce: retry
    }
    return r;
  };
  int r = commit();
  f.Check(r == GHOST_TXN_COMMITTED,
          absl::StrFormat("the ghost thread runs on CPU 1 (%s)", ResultName(r)));
  SleepUs(20'000);

  // The RT hog takes CPU 1 for 300 ms. It is made RT and moved to CPU 1
  // while it sleeps, so the only event on CPU 1 is its wake-up.
  std::atomic<int64_t> hog_start{0}, hog_end{0};
  std::atomic<int> hog_pid{0};
  int hog_pipe[2];
  if (pipe(hog_pipe) != 0) return 1;
  std::thread hog([&] {
    hog_pid = Gettid();
    char c;
    (void)!read(hog_pipe[0], &c, 1);
    hog_start = NowNs();
    SpinNs(300'000'000);
    hog_end = NowNs();
  });
  while (hog_pid.load() == 0) SleepUs(100);
  SleepUs(20'000);
  sched_param hp = {.sched_priority = 20};
  if (sched_setaffinity(hog_pid, sizeof(cpu1), &cpu1) != 0 ||
      sched_setscheduler(hog_pid, SCHED_FIFO, &hp) != 0) {
    f.Fail("could not make the hog SCHED_FIFO on CPU 1");
  }
  SleepUs(20'000);
  // The ghost thread must be on CPU 1 when the hog wakes (something else may
  // have preempted it meanwhile: put it back).
  uint32_t sw_index = ~0u;
  for (const ghost_msg& m : agent.Log()) {
    if (m.tid == tid && m.type == GHOST_MSG_TASK_NEW) sw_index = m.task_new.sw_index;
  }
  bool on_cpu = false;
  for (int i = 0; i < 5 && !on_cpu && sw_index < GHOST_MAX_THREADS; i++) {
    const ghost_status_word& sw = ks.StatusWords()[sw_index];
    on_cpu = (__atomic_load_n(&sw.flags, __ATOMIC_ACQUIRE) & GHOST_SW_ON_CPU) && sw.cpu == 1;
    if (!on_cpu) {
      int rr = commit();
      std::printf("note: ghost thread was off CPU 1, recommitted: %s\n", ResultName(rr));
      SleepUs(5000);
    }
  }
  f.Check(on_cpu, "the ghost thread is on CPU 1 (status word) when the hog wakes");
  agent.Drain();
  const int64_t hog_spawn = NowNs();
  (void)!write(hog_pipe[1], "x", 1);
  SleepUs(100'000);
  agent.Drain();
  bool preempted = false;
  for (const ghost_msg& m : agent.Log()) {
    if (m.tid == tid && m.type == GHOST_MSG_TASK_PREEMPT) preempted = true;
  }
  f.Check(preempted, "the ghost thread went back to its agent (TASK_PREEMPT)");
  r = commit(/*retry_unavailable=*/false);
  f.Check(r == GHOST_TXN_CPU_UNAVAILABLE,
          absl::StrFormat("a commit to the hogged CPU -> %s (want CPU_UNAVAILABLE)",
                          ResultName(r)));
  hog.join();
  SleepUs(50'000);
  agent.Drain();
  r = commit();
  f.Check(r == GHOST_TXN_COMMITTED,
          absl::StrFormat("after the hog, a commit to CPU 1 -> %s", ResultName(r)));

  int busy = -1, avail = -1, i = 0;
  uint32_t reason = ~0u;
  for (const ghost_msg& m : agent.Log()) {
    if (m.cpu == 1 && m.type == GHOST_MSG_CPU_BUSY && busy < 0 &&
        static_cast<int64_t>(m.time_ns) >= hog_spawn) {
      busy = i;
      reason = m.cpu_event.reason;
    }
    if (m.cpu == 1 && m.type == GHOST_MSG_CPU_AVAILABLE && busy >= 0 && avail < 0 &&
        static_cast<int64_t>(m.time_ns) >= hog_end.load()) {
      avail = i;
    }
    i++;
  }
  f.Check(busy >= 0 && reason == 0,
          absl::StrFormat("CPU_BUSY for CPU 1 when the hog came (reason %d: RT)", reason));
  f.Check(avail > busy, "CPU_AVAILABLE for CPU 1 after the hog left, after CPU_BUSY");
  quit = true;
  worker.join();
  CheckClassAlive(ks, f);
  if (f.n != 0) {
    for (const ghost_msg& m : agent.Log()) {
      absl::PrintF("  msg %s tid %u seq %u cpu %u t %d\n", ghost::MessageTypeName(m.type), m.tid, m.seqnum,
                   m.cpu, static_cast<int64_t>(m.time_ns) - hog_start.load());
    }
  }
  return f.n == 0 ? 0 : 1;
}
