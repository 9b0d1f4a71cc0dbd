// ghost_messages: a thread that is created, sleeps, wakes, is preempted,
// yields, changes affinity, changes nice and exits produces the ghOSt messages
// in that order, with seqnums that go up by one per message (none lost), and
// its status word agrees with the newest message.
#include <sys/resource.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (ncpus < 2) {
    std::printf("FAIL: needs at least 2 CPUs\n");
    return 1;
  }
  std::vector<int> cpus;
  for (int c = 0; c < ncpus; c++) cpus.push_back(c);
  auto setup = Setup::Create(ghost::CpuList::FirstN(ncpus), /*watchdog_ms=*/2000);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, cpus);

  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  std::atomic<int> worker_pid{0};
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int> step_errors{0};

  std::thread worker([&] {
    worker_pid = Gettid();
    while (!go.load()) SleepUs(100);
    if (!EnterSchedExt()) {
      step_errors++;
      return;
    }
    SpinNs(3'000'000);
    SleepUs(20'000);       // BLOCKED, then WAKEUP
    SpinCpuNs(20'000'000); // 20 ms of CPU against 2 ms slices: PREEMPT
    sched_yield();         // YIELD
    SpinNs(2'000'000);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) step_errors++;  // AFFINITY_CHANGED
    SpinNs(2'000'000);
    if (setpriority(PRIO_PROCESS, 0, 5) != 0) step_errors++;  // PRIORITY_CHANGED
    SpinNs(2'000'000);
  });                      // exit: DEAD

  while (worker_pid.load() == 0) SleepUs(100);
  if (auto s = ks.EnrollPid(worker_pid, setup->enclave); !s.ok()) {
    f.Fail(absl::StrFormat("EnrollPid: %s", s.message()));
    stop = true;
  }
  bool asked_on_cpu = false;
  go = true;
  int64_t deadline = NowNs() + 20'000'000'000LL;
  bool joined = false;
  std::thread joiner([&] {
    worker.join();
    joined = true;
  });
  while (NowNs() < deadline) {
    agent.Round(/*slice_ns=*/2'000'000);
    if (!asked_on_cpu) {
      uint64_t tid = agent.TidOf(worker_pid);
      if (tid != 0) {
        absl::Status s = ks.SetWantOnCpu(tid, true);
        f.Check(s.ok(), absl::StrFormat("SetWantOnCpu: %s", s.ToString()));
        asked_on_cpu = true;
      }
    }
    if (joined) break;
    SleepUs(200);
  }
  joiner.join();
  SleepUs(20'000);
  agent.Settle();
  agent.Drain();
  f.Check(step_errors == 0, "worker switched to SCHED_EXT and made every change");

  uint64_t tid = agent.TidOf(worker_pid);
  f.Check(tid != 0, absl::StrFormat("TASK_NEW names the worker (pid %d, tid %u)",
                                    worker_pid.load(), tid));
  std::vector<ghost_msg> mine;
  for (const ghost_msg& m : agent.Log()) {
    if (m.tid == tid && tid != 0) mine.push_back(m);
  }
  std::string seen;
  for (const ghost_msg& m : mine) absl::StrAppendFormat(&seen, " %s(%u)", ghost::MessageTypeName(m.type), m.seqnum);
  std::printf("messages about the worker:%s\n", seen.c_str());

  // When the worker is preempted depends on slices and ticks (it may already
  // be during its first spin, before it sleeps), so TASK_PREEMPT is checked
  // on its own below: somewhere after TASK_NEW and before TASK_YIELD.
  const uint16_t want[] = {GHOST_MSG_TASK_NEW,     GHOST_MSG_TASK_BLOCKED,
                           GHOST_MSG_TASK_WAKEUP,  GHOST_MSG_TASK_ON_CPU,
                           GHOST_MSG_TASK_YIELD,
                           GHOST_MSG_TASK_AFFINITY_CHANGED, GHOST_MSG_TASK_PRIORITY_CHANGED,
                           GHOST_MSG_TASK_DEAD};
  size_t w = 0;
  for (const ghost_msg& m : mine) {
    if (w < std::size(want) && m.type == want[w]) w++;
  }
  f.Check(w == std::size(want),
          absl::StrFormat("expected messages appear in order (matched %u of %u; next wanted %s)",
                          w, std::size(want), w < std::size(want) ? ghost::MessageTypeName(want[w]) : "-"));
  bool preempted = false;
  for (size_t i = 1; i < mine.size() && mine[i].type != GHOST_MSG_TASK_YIELD; i++) {
    if (mine[i].type == GHOST_MSG_TASK_PREEMPT) preempted = true;
  }
  f.Check(preempted, "TASK_PREEMPT after TASK_NEW and before TASK_YIELD (the worker spun past its slices)");
  f.Check(!mine.empty() && mine.front().type == GHOST_MSG_TASK_NEW,
          "the first message is TASK_NEW");
  f.Check(!mine.empty() && mine.back().type == GHOST_MSG_TASK_DEAD,
          "the last message is TASK_DEAD");
  bool consecutive = !mine.empty();
  for (size_t i = 0; i < mine.size(); i++) {
    if (mine[i].seqnum != i + 1) consecutive = false;
  }
  f.Check(consecutive, "seqnums are 1, 2, 3, ... (each message bumps it, none lost)");

  // Payloads carry what a policy needs.
  bool nice_ok = false, mask_ok = false, runtime_ok = true, wake_ok = false;
  bool oncpu_cpus_ok = true, oncpu_committed = false;
  uint64_t last_runtime = 0;
  for (const ghost_msg& m : mine) {
    switch (m.type) {
      case GHOST_MSG_TASK_PRIORITY_CHANGED:
        nice_ok = m.priority.nice == 5 && m.priority.weight < 100;
        break;
      case GHOST_MSG_TASK_AFFINITY_CHANGED:
        mask_ok = m.affinity.cpus[0] == 2;
        break;
      case GHOST_MSG_TASK_WAKEUP:
        wake_ok = m.wakeup.waker_cpu < static_cast<uint32_t>(ncpus);
        break;
      case GHOST_MSG_TASK_ON_CPU:
        // A thread preempted by a higher class resumes without a new commit,
        // so only some ON_CPU messages name a transaction.
        oncpu_cpus_ok = oncpu_cpus_ok && m.on_cpu.cpu < static_cast<uint32_t>(ncpus);
        oncpu_committed = oncpu_committed || m.on_cpu.commit_seq > 0;
        break;
      case GHOST_MSG_TASK_PREEMPT:
      case GHOST_MSG_TASK_YIELD:
      case GHOST_MSG_TASK_BLOCKED:
      case GHOST_MSG_TASK_DEAD:
        if (m.off_cpu.runtime_ns < last_runtime) runtime_ok = false;
        last_runtime = m.off_cpu.runtime_ns;
        break;
    }
  }
  f.Check(nice_ok, "PRIORITY_CHANGED carries nice 5 and a lower weight");
  f.Check(mask_ok, "AFFINITY_CHANGED carries the new mask {1}");
  f.Check(wake_ok, "WAKEUP carries the waker CPU");
  f.Check(oncpu_cpus_ok && oncpu_committed, "ON_CPU (requested) carries the CPU and the committing transaction");
  f.Check(runtime_ok && last_runtime >= 20'000'000,
          absl::StrFormat("off-CPU messages carry a growing runtime (last %u ns)", last_runtime));

  // The status word: same tid, newest seqnum, DEAD.
  uint32_t sw_index = mine.empty() ? ~0u : mine.front().task_new.sw_index;
  if (sw_index < GHOST_MAX_THREADS) {
    const ghost_status_word& sw = ks.StatusWords()[sw_index];
    f.Check(sw.tid == tid && sw.seqnum == mine.back().seqnum && (sw.flags & GHOST_SW_DEAD),
            absl::StrFormat("status word %u: tid %u seqnum %u flags %#x (newest message %u)",
                            sw_index, sw.tid, sw.seqnum, sw.flags, mine.back().seqnum));
  } else {
    f.Fail("TASK_NEW carries a valid status word index");
  }
  const ghost_queue_word& qw = ks.QueueWord(setup->queue);
  f.Check(qw.dropped == 0 && qw.barrier >= mine.size(),
          absl::StrFormat("queue barrier %u counts every message, %u dropped", qw.barrier,
                          qw.dropped));
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
