// ghost_commit_scope: what a commit checks and what it may touch, in the two
// places no other scenario reaches.
//  1. The agent barrier on a LOCAL commit: a per-CPU agent (registered as
//     one, running on its own enclave CPU) that commits to its own CPU with a
//     barrier older than its queue's gets AGENT_STALE, and the thread does not
//     run; with the current barrier the commit runs the thread once the agent
//     blocks. (A local commit is queued, not moved with IMMED: a different
//     path through txn_apply than every remote commit.)
//  2. The group commit's CPU mask: a READY slot outside the CPUs a commit call
//     names is left READY, its thread unmoved; the next call naming it commits it.
//  1b. A local commit still pending (its agent holds the CPU) whose thread
//     has a property change (nice) settles PREEMPTED, not NOT_RUNNABLE.
// Needs 3 CPUs: CPU 0 for the scenario's other threads, the enclave is 1-2.
#include <sys/resource.h>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"
#include "userspace/run_request.h"

using namespace ghost_test;

namespace {

// WaitUntil without sleeping: the calling agent must keep its CPU.
bool WaitUntilSpinning(const std::function<bool()>& pred, absl::Duration timeout) {
  const int64_t end = NowNs() + absl::ToInt64Nanoseconds(timeout);
  while (!pred()) {
    if (NowNs() >= end) return false;
  }
  return true;
}

}  // namespace

int main() {
  Failures f;
  if (!HaveCpus(3)) return 1;
  PinToCpu(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1, 2})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});

  SpinningWorker local, other;
  local.Start(CpuSet({1}));
  other.Start(CpuSet({2}));
  for (SpinningWorker* w : {&local, &other}) {
    if (auto s = w->Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  }
  const uint64_t t_local = agent.WaitTid(local.pid());
  const uint64_t t_other = agent.WaitTid(other.pid());
  f.Check(t_local != 0 && t_other != 0, "both threads reported TASK_NEW");
  f.Check(agent.WaitMessage(t_local, GHOST_MSG_TASK_PREEMPT) >= 0 &&
              agent.WaitMessage(t_other, GHOST_MSG_TASK_PREEMPT) >= 0,
          "both wait for their agent (TASK_PREEMPT after entering)");

  // 1. The per-CPU agent of CPU 1: this thread, on CPU 1, registered.
  std::thread per_cpu([&] {
    PinToCpu(1);
    EnterFifo(50);
    if (auto s = ks.RegisterAgentThread(Gettid(), /*global=*/false); !s.ok()) {
      f.Fail(absl::StrFormat("registering the per-CPU agent: %s", s.message()));
      return;
    }
    agent.Drain();
    const uint64_t stale = agent.barrier();
    // A message the agent has not seen: a CPU timer of CPU 2 fires.
    if (auto s = ks.ArmCpuTimer(2, absl::Milliseconds(1), 7); !s.ok()) {
      f.Fail(absl::StrFormat("arming a CPU timer: %s", s.message()));
      return;
    }
    const bool moved = WaitUntil(
        [&] { return __atomic_load_n(&ks.QueueWord(setup->queue).barrier, __ATOMIC_ACQUIRE) != stale; },
        absl::Seconds(10));
    f.Check(moved, "a new message moved the queue's barrier");
    const uint64_t spins = local.spins();
    const int r = agent.Commit(1, t_local, agent.Threads()[t_local].seq, stale, 0);
    f.Check(r == GHOST_TXN_AGENT_STALE,
            absl::StrFormat("a local commit with the old barrier -> %s (want AGENT_STALE)",
                            ResultName(r)));
    SleepUs(50'000);  // blocked: a wrongly queued thread would run now
    f.Check(local.spins() == spins && local.first_cpu() == -1,
            "the thread of the stale local commit did not run");
    // 1b. A local commit stays pending while the agent holds the CPU: a
    // property change of its thread meanwhile (nice) re-enqueues the thread,
    // still runnable: the slot must say PREEMPTED, not NOT_RUNNABLE (which
    // means "wait for a WAKEUP", and none would come).
    agent.Drain();
    ghost_txn pend = {};
    pend.tid = t_local;
    pend.task_seqnum = agent.Threads()[t_local].seq;
    pend.agent_barrier = agent.barrier();
    pend.queue = setup->queue;
    const bool opened = OpenTxn(ks, 1, pend) && ks.Commit(ghost::CpuList({1})).ok();
    ghost_txn* slot1 = ks.TxnSlot(1);
    f.Check(opened && __atomic_load_n(&slot1->state, __ATOMIC_ACQUIRE) == GHOST_TXN_CLAIMED,
            "a local commit waits for its agent to block (CLAIMED)");
    f.Check(setpriority(PRIO_PROCESS, local.pid(), 3) == 0, "its thread's nice changes meanwhile");
    const bool settled = WaitUntilSpinning(
        [&] { return __atomic_load_n(&slot1->state, __ATOMIC_ACQUIRE) == GHOST_TXN_DONE; },
        absl::Seconds(5));
    const uint32_t res = slot1->result;
    f.Check(settled && res == GHOST_TXN_PREEMPTED,
            absl::StrFormat("the pending commit settled %s (want PREEMPTED: the thread is still "
                            "runnable)",
                            settled ? ResultName(static_cast<int>(res)) : "not at all"));
    __atomic_store_n(&slot1->state, GHOST_TXN_FREE, __ATOMIC_RELEASE);

    const int ok = agent.CommitCurrent(1, t_local);
    f.Check(ok == GHOST_TXN_COMMITTED,
            absl::StrFormat("a local commit at the current barrier -> %s (want COMMITTED)",
                            ResultName(ok)));
  });
  per_cpu.join();
  f.Check(WaitUntil([&] { return local.spins() > 0; }, absl::Seconds(10)),
          "the locally committed thread runs on CPU 1");

  // 2. A READY slot on CPU 2, a commit call that names only CPU 1.
  agent.Drain();
  ghost_txn fields = {};
  fields.tid = t_other;
  fields.task_seqnum = agent.Threads()[t_other].seq;
  fields.agent_barrier = agent.barrier();
  fields.queue = setup->queue;
  f.Check(OpenTxn(ks, 2, fields), "CPU 2's slot is READY");
  const uint64_t claimed = ks.bpf_class().skel()->bss->nr_txn_claimed;
  f.Check(ks.Commit(ghost::CpuList({1})).ok(), "a commit call naming only CPU 1");
  SleepUs(50'000);
  ghost_txn* slot2 = ks.TxnSlot(2);
  f.Check(__atomic_load_n(&slot2->state, __ATOMIC_ACQUIRE) == GHOST_TXN_READY &&
              ks.bpf_class().skel()->bss->nr_txn_claimed == claimed,
          absl::StrFormat("CPU 2's slot is untouched (state %s)",
                          ghost::TxnStateName(__atomic_load_n(&slot2->state, __ATOMIC_ACQUIRE))));
  f.Check(other.first_cpu() == -1, "its thread did not run");
  f.Check(ks.Commit(ghost::CpuList({2})).ok(), "a commit call naming CPU 2");
  const int r2 = WaitTxn(ks, 2, absl::Seconds(10));
  f.Check(r2 == GHOST_TXN_COMMITTED || r2 == GHOST_TXN_AGENT_STALE,
          absl::StrFormat("the call naming CPU 2 claims it: %s (COMMITTED, or AGENT_STALE if a message came meanwhile)", ResultName(r2)));

  ReleaseEnclave(ks, setup->enclave, f);
  local.Join();
  other.Join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
