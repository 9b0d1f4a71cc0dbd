// ghost_enclaves: two live enclaves are isolated from each other.
//  - Messages never cross: every message about A's threads or CPUs is in A's
//    queue, and likewise for B.
//  - A commit by A's agent that names B's thread (on A's CPU) is NOT_FOUND;
//    one that names A's thread on B's CPU is refused; neither thread moves.
//  - An agent that writes B's queue number into its own enclave word (as the
//    default queue) gets nothing of B's and sends B nothing: A's messages
//    that would go there are dropped (and counted), never delivered to B.
// Needs 3 CPUs: CPU 0 for the agents, enclave A is CPU 1, enclave B CPU 2.
#include <bpf/bpf.h>

#include <set>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

namespace {

// Messages in `log` about threads outside `mine` or CPUs outside `cpus`.
int Foreign(const std::vector<ghost_msg>& log, const std::set<uint64_t>& mine, int cpu,
            std::string* what) {
  int n = 0;
  for (const ghost_msg& m : log) {
    const bool task = m.tid != GHOST_TID_NONE;
    if ((task && !mine.count(m.tid)) || (!task && static_cast<int>(m.cpu) != cpu)) {
      if (n++ == 0) *what = absl::StrFormat("type %d tid %d cpu %d", m.type, m.tid, m.cpu);
    }
  }
  return n;
}

}  // namespace

int main() {
  Failures f;
  if (!HaveCpus(3)) return 1;
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  const ghost::EnclaveId ea = setup->enclave;
  const ghost::QueueId qa = setup->queue;
  auto eb = ks.CreateEnclave({.cpus = ghost::CpuList({2}), .watchdog_ms = 15000});
  if (!eb.ok()) {
    std::printf("FAIL: enclave B: %s\n", std::string(eb.status().message()).c_str());
    return 1;
  }
  auto qb = ks.CreateQueue({.enclave = *eb, .wake_agent = false});
  if (!qb.ok() || !ks.SetDefaultQueue(*eb, *qb).ok()) {
    std::printf("FAIL: enclave B's queue\n");
    return 1;
  }
  TestAgent agent_a(ks, qa, {1}), agent_b(ks, *qb, {2});
  // Both enclaves' CPUs report ticks too: CPU messages must stay home.
  (void)ks.SetEnclaveCpuMessages(ea, GHOST_ENCLAVE_MSG_TICK);
  (void)ks.SetEnclaveCpuMessages(*eb, GHOST_ENCLAVE_MSG_TICK);

  SpinningWorker a, b;
  a.Start(CpuSet({1, 2}));
  b.Start(CpuSet({1, 2}));
  if (auto s = a.Enroll(ks, ea); !s.ok()) f.Fail(std::string(s.message()));
  if (auto s = b.Enroll(ks, *eb); !s.ok()) f.Fail(std::string(s.message()));
  const uint64_t ta = agent_a.WaitTid(a.pid()), tb = agent_b.WaitTid(b.pid());
  f.Check(ta != 0 && tb != 0, "each enclave's agent got its own thread's TASK_NEW");
  f.Check(agent_a.WaitMessage(ta, GHOST_MSG_TASK_PREEMPT) >= 0 &&
              agent_b.WaitMessage(tb, GHOST_MSG_TASK_PREEMPT) >= 0,
          "both threads wait for their agents");

  // Commits across the border.
  int r = agent_a.CommitDrained(1, tb, [] { return 2; });
  f.Check(r == GHOST_TXN_NOT_FOUND,
          absl::StrFormat("A's commit of B's thread on A's CPU -> %s (want NOT_FOUND)", ResultName(r)));
  agent_a.Drain();
  r = agent_a.Commit(2, ta, agent_a.Threads()[ta].seq, agent_a.barrier(), 0);
  f.Check(r == GHOST_TXN_INVALID,
          absl::StrFormat("A's commit on B's CPU with A's queue -> %s (want INVALID)", ResultName(r)));
  r = agent_a.Commit(2, ta, agent_a.Threads()[ta].seq, 0, GHOST_TXN_F_NO_BARRIER);
  f.Check(r == GHOST_TXN_NOT_FOUND,
          absl::StrFormat("... and without a barrier -> %s (want NOT_FOUND)", ResultName(r)));
  SleepUs(50'000);
  f.Check(a.first_cpu() == -1 && b.first_cpu() == -1, "neither thread ran");

  // A's agent writes B's queue into its enclave word.
  const int words_fd = bpf_map__fd(ks.bpf_class().skel()->maps.enclave_words);
  const uint32_t key = ea;
  ghost_enclave_word word;
  bool wrote = bpf_map_lookup_elem(words_fd, &key, &word) == 0;
  word.default_queue = *qb;
  wrote = wrote && bpf_map_update_elem(words_fd, &key, &word, BPF_EXIST) == 0;
  f.Check(wrote, "A's agent wrote B's queue number into A's enclave word");
  const uint64_t dropped = ks.ClassInfo().msgs_dropped;
  SpinningWorker a2;
  a2.Start(CpuSet({1}));
  if (auto s = a2.Enroll(ks, ea); !s.ok()) f.Fail(std::string(s.message()));
  f.Check(WaitUntil([&] { return ks.ClassInfo().msgs_dropped > dropped; }, absl::Seconds(10)),
          "a new thread of A: its messages, with no queue of A's to go to, were dropped and counted");

  // Let ticks and everything else flow, then look at both logs.
  ReleaseEnclave(ks, ea, f);
  SleepUs(200'000);
  agent_a.Drain();
  agent_b.Drain();
  std::string what;
  int n = Foreign(agent_b.Log(), {tb}, 2, &what);
  f.Check(n == 0, absl::StrFormat("B's queue holds nothing of A's (%d foreign: %s)", n, what));
  n = Foreign(agent_a.Log(), {ta}, 1, &what);
  f.Check(n == 0, absl::StrFormat("A's queue holds nothing of B's (%d foreign: %s)", n, what));
  f.Check(agent_a.TidOf(a2.pid()) == 0 && agent_b.TidOf(a2.pid()) == 0,
          "the new thread's TASK_NEW reached no queue");

  ReleaseEnclave(ks, *eb, f);
  a.Join();
  b.Join();
  a2.Join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
