// ghost_messages: the ghOSt messages of two threads' lives, scripted so that
// each event happens exactly once, at a known point:
//
//  the worker   moved into the class while blocked (NEW, not runnable), woken
//               (WAKEUP), runs, sleeps (BLOCKED, WAKEUP), spins until the
//               agent commits another thread to its CPU with
//               GHOST_TXN_F_PREEMPT (PREEMPT), yields (YIELD), changes its
//               affinity (AFFINITY_CHANGED) and nice (PRIORITY_CHANGED) and
//               exits (DEAD): exactly that sequence (ON_CPU aside, which it
//               asked for), seqnums 1, 2, 3, ... with none lost, payloads and
//               status word agreeing;
//  the departer runs in the class, then switches itself back to SCHED_OTHER:
//               TASK_DEPARTED with the next seqnum and nothing after it (no
//               DEAD when it later exits), its status word is released, a
//               transaction naming it is NOT_FOUND, and it runs on under CFS
//               to completion.
//
// Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1. Every commit has an
// unlimited slice, so nothing but the script takes CPU 1 from a thread, except
// a higher class (a kworker waking there, which happens often in this guest):
// that is a real TASK_PREEMPT the script did not ask for, and the class
// announces it with CPU_BUSY for CPU 1 right after. The agent places the
// worker again after such a preemption, and the sequence check leaves exactly
// those PREEMPTs out; the scripted one has no CPU_BUSY and must be there.
#include <sys/resource.h>

#include <thread>

#include "tests/vm/test_agent.h"
#include "userspace/workloads/bench_threads.h"

using namespace ghost_test;

namespace {

// A thread blocks in Wait() until Open(): the agent decides when it runs.
struct Gate {
  int fd[2] = {-1, -1};
  Gate() { (void)!pipe(fd); }
  ~Gate() {
    close(fd[0]);
    close(fd[1]);
  }
  void Open() { (void)!write(fd[1], "x", 1); }
  void Wait() {
    char c;
    (void)!read(fd[0], &c, 1);
  }
};

int64_t ThreadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

std::string Describe(const std::vector<ghost_msg>& msgs) {
  std::string s;
  for (const ghost_msg& m : msgs) {
    absl::StrAppendFormat(&s, " %s(%u)", ghost::MessageTypeName(m.type), m.seqnum);
  }
  return s;
}

// Indices (in `log`) of the PREEMPTs of `tid` that a higher class caused: a
// CPU_BUSY for `cpu` follows before the thread's next message. The first
// PREEMPT at or after index `scripted` is the one the script's preempting
// commit caused (a higher class can take the CPU right then too), never one
// of these.
std::vector<size_t> ExplainedPreempts(const std::vector<ghost_msg>& log, uint64_t tid, int cpu,
                                      size_t scripted) {
  std::vector<size_t> out;
  bool scripted_seen = false;
  for (size_t i = 0; i < log.size(); i++) {
    if (log[i].tid != tid || log[i].type != GHOST_MSG_TASK_PREEMPT) continue;
    if (i >= scripted && !scripted_seen) {
      scripted_seen = true;
      continue;
    }
    for (size_t j = i + 1; j < log.size() && log[j].tid != tid; j++) {
      if (log[j].type == GHOST_MSG_CPU_BUSY && log[j].cpu == static_cast<uint32_t>(cpu)) {
        out.push_back(i);
        break;
      }
    }
  }
  return out;
}

bool Consecutive(const std::vector<ghost_msg>& msgs) {
  for (size_t i = 0; i < msgs.size(); i++) {
    if (msgs[i].seqnum != i + 1) return false;
  }
  return !msgs.empty();
}

}  // namespace

int main() {
  Failures f;
  if (!HaveCpus(2)) return 1;
  const int kCpu = 1;  // the enclave

  // The departer starts before the agent becomes SCHED_FIFO on CPU 0, so it
  // is a CFS thread allowed every CPU; it blocks at its gate at once.
  Gate d_gate, d_finish;
  std::atomic<int> d_pid{0};
  std::atomic<bool> d_done{false};
  std::atomic<int> step_errors{0}, d_policy{-1}, d_ext{-1};
  std::thread departer([&] {
    d_pid = Gettid();
    d_gate.Wait();
    SpinCpuNs(1'000'000);
    sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, SCHED_OTHER, &sp) != 0) step_errors++;  // DEPARTED
    d_finish.Wait();           // blocks, then runs on under CFS
    SpinCpuNs(2'000'000);
    SleepUs(2'000);
    d_policy = sched_getscheduler(0);
    d_ext = ghost::RunBySchedExtClass();
    d_done = true;
  });
  WaitUntil([&] { return d_pid != 0; }, absl::Seconds(10), 100);

  BecomeAgent(0);
  // A watchdog far beyond any wait below: only the script runs threads.
  auto setup = Setup::Create({.cpus = ghost::CpuList({kCpu})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});  // commits only where the script says

  // Moves a thread blocked at its gate into the class: TASK_NEW, not runnable.
  auto move_in = [&](int pid, const char* who) -> uint64_t {
    WaitUntil([&] { return ProcState(pid) == 'S'; }, absl::Seconds(10));
    sched_param sp = {.sched_priority = 0};
    if (!ks.EnrollPid(pid, setup->enclave).ok() || sched_setscheduler(pid, kSchedExt, &sp) != 0) {
      f.Fail(absl::StrFormat("could not move the %s into the enclave", who));
      return 0;
    }
    const uint64_t tid = agent.WaitTid(pid);
    auto mine = agent.MessagesOf(tid);
    f.Check(tid != 0 && !mine.empty() && mine[0].task_new.runnable == 0,
            absl::StrFormat("the %s (pid %d, tid %u) entered while blocked: TASK_NEW, not runnable",
                            who, pid, tid));
    return tid;
  };
  // Wakes a thread at its gate and places it on the enclave CPU.
  auto wake_and_place = [&](Gate& g, uint64_t tid, const char* who) {
    const size_t mark = agent.Log().size();
    g.Open();
    f.Check(agent.WaitMessage(tid, GHOST_MSG_TASK_WAKEUP, mark) >= 0,
            absl::StrFormat("the %s woke (TASK_WAKEUP)", who));
    f.Check(agent.CommitCurrent(kCpu, tid) == GHOST_TXN_COMMITTED,
            absl::StrFormat("the %s was committed to CPU %d", who, kCpu));
  };

  // The departer: in, run, out.
  const uint64_t d_tid = move_in(d_pid, "departer");
  wake_and_place(d_gate, d_tid, "departer");
  // A fair-class thread may take CPU 1 from it before it switches (PREEMPT):
  // put it back until it has left.
  int departed = -1;
  WaitUntil(
      [&] {
        departed = agent.WaitMessage(d_tid, GHOST_MSG_TASK_DEPARTED, 0, absl::Milliseconds(20));
        if (departed >= 0) return true;
        auto sw = agent.StatusWord(d_tid);
        if (sw.ok() && sw->runnable() && !sw->on_cpu()) {
          std::printf("note: the departer was taken off CPU %d before it left: placed again (%s)\n",
                      kCpu, ResultName(agent.CommitCurrent(kCpu, d_tid)));
        }
        return false;
      },
      absl::Seconds(10), 1000);
  f.Check(departed >= 0, "SCHED_OTHER from inside the class: TASK_DEPARTED");
  const uint64_t d_seq = agent.Threads()[d_tid].seq;
  // The class publishes the word before the message (messages.bpf.h,
  // task_msg_send): once DEPARTED is read, the word is already final.
  auto d_word = agent.StatusWord(d_tid);
  f.Check(d_word.ok() && d_word->dead() && !d_word->runnable() && !d_word->on_cpu() &&
              d_word->seqnum == d_seq,
          absl::StrFormat("its status word is released: DEAD flag, seqnum %u of TASK_DEPARTED",
                          d_word.ok() ? d_word->seqnum : 0));
  int r = agent.CommitDrained(kCpu, d_tid, [&] { return d_seq; });
  f.Check(r == GHOST_TXN_NOT_FOUND,
          absl::StrFormat("a transaction naming the departed (still living) thread -> %s "
                          "(want NOT_FOUND)", ResultName(r)));
  d_finish.Open();
  f.Check(WaitUntil([&] { return d_done.load(); }, absl::Seconds(10)),
          "the departed thread ran on to completion");
  departer.join();
  f.Check(d_policy == SCHED_OTHER && d_ext == 0,
          absl::StrFormat("... under CFS (policy %d, ext.enabled %d)", d_policy.load(),
                          d_ext.load()));

  // The worker's life, and the preemptor that takes CPU 1 from it.
  struct Life {
    uint64_t w_tid = 0, p_tid = 0;
    int p_cpu = -1;
    int64_t w_cpu_ns = 0;
    int disturbed = 0;                  // PREEMPTs a higher class caused
    size_t scripted = SIZE_MAX;         // log index where the preempting commit began
    std::vector<std::string> problems;  // script steps that did not happen
  };
  auto live = [&]() -> Life {
    Life life;
    Gate w_gate, p_gate;
    std::atomic<int> w_pid{0}, p_pid{0}, p_cpu{-1};
    std::atomic<bool> w_go_on{false};
    std::atomic<int64_t> w_cpu_ns{0};
    // Made by the SCHED_FIFO agent on CPU 0: CFS threads allowed every CPU.
    auto be_cfs = [] {
      sched_param sp = {.sched_priority = 0};
      SetAffinity(AllCpus());
      sched_setscheduler(0, SCHED_OTHER, &sp);
    };
    std::thread worker([&] {
      be_cfs();
      w_pid = Gettid();
      w_gate.Wait();             // moved into the class while blocked here; WAKEUP
      SpinCpuNs(2'000'000);
      SleepUs(20'000);           // BLOCKED, then WAKEUP
      while (!w_go_on.load()) {  // spins until preempted (PREEMPT) and run again
      }
      sched_yield();             // YIELD
      if (!SetAffinity(CpuSet({kCpu}))) step_errors++;              // AFFINITY_CHANGED
      if (setpriority(PRIO_PROCESS, 0, 5) != 0) step_errors++;      // PRIORITY_CHANGED
      w_cpu_ns = ThreadCpuNs();
    });                          // exit: DEAD
    std::thread preemptor([&] {
      be_cfs();
      p_pid = Gettid();
      p_gate.Wait();
      p_cpu = sched_getcpu();
    });
    WaitUntil([&] { return w_pid && p_pid; }, absl::Seconds(10), 100);
    // Both enter the class (blocked) before the life starts: the kernel's
    // own work that entering sets off (a kworker on CPU 1) is then mostly
    // over before the worker runs.
    life.w_tid = move_in(w_pid, "worker");
    life.p_tid = move_in(p_pid, "preemptor");
    if (life.p_tid != 0 && !ks.SetWantOnCpu(life.p_tid, true).ok()) {
      life.problems.push_back("ask for the preemptor's TASK_ON_CPU");
    }
    agent.Drain();
    const size_t start = agent.Log().size();
    // After a preemption by a higher class the worker goes back to CPU 1.
    auto pump = [&] {
      const auto log = agent.Log();
      const auto explained = ExplainedPreempts(log, life.w_tid, kCpu, life.scripted);
      life.disturbed = static_cast<int>(explained.size());
      if (explained.empty() || agent.Threads()[life.w_tid].last != GHOST_MSG_TASK_PREEMPT) return;
      int newest = -1;
      for (size_t i = 0; i < log.size(); i++) {
        if (log[i].tid == life.w_tid) newest = static_cast<int>(i);
      }
      if (newest == static_cast<int>(explained.back())) {
        agent.Commit(kCpu, life.w_tid, agent.Threads()[life.w_tid].seq, agent.barrier(), 0);
      }
    };
    // One scripted step; false (and the life is cut short) if it did not
    // happen.
    auto step = [&](bool ok, const std::string& what) {
      if (!ok) life.problems.push_back(what);
      return ok;
    };
    auto wait_msg = [&](uint64_t tid, uint16_t type, size_t from) {
      int idx = -1;
      WaitUntil(
          [&] {
            agent.Drain();
            auto log = agent.Log();
            for (size_t i = std::max(from, start); i < log.size() && idx < 0; i++) {
              if (log[i].tid == tid && log[i].type == type) idx = static_cast<int>(i);
            }
            if (idx < 0) pump();
            return idx >= 0;
          },
          absl::Seconds(10));
      return idx;
    };
    auto placed = [&](uint64_t tid, uint32_t flags = 0) {
      return agent.CommitCurrent(kCpu, tid, flags) == GHOST_TXN_COMMITTED;
    };
    [&] {
      if (!step(life.w_tid != 0 && ks.SetWantOnCpu(life.w_tid, true).ok(),
                "the worker entered and asked for TASK_ON_CPU")) {
        return;
      }
      size_t mark = agent.Log().size();
      w_gate.Open();
      if (!step(wait_msg(life.w_tid, GHOST_MSG_TASK_WAKEUP, mark) >= 0, "the worker woke") ||
          !step(placed(life.w_tid), "the worker was committed to CPU 1")) {
        return;
      }
      const int blocked = wait_msg(life.w_tid, GHOST_MSG_TASK_BLOCKED, mark);
      if (!step(blocked >= 0, "the worker slept (TASK_BLOCKED)") ||
          !step(wait_msg(life.w_tid, GHOST_MSG_TASK_WAKEUP, blocked + 1) >= 0,
                "the worker's timer woke it (TASK_WAKEUP)") ||
          !step(placed(life.w_tid), "the woken worker was committed to CPU 1")) {
        return;
      }
      // The preemption: another thread committed to CPU 1 with PREEMPT.
      mark = agent.Log().size();
      p_gate.Open();
      if (!step(life.p_tid != 0 && wait_msg(life.p_tid, GHOST_MSG_TASK_WAKEUP, mark) >= 0,
                "the preemptor woke")) {
        return;
      }
      mark = agent.Log().size();
      life.scripted = mark;
      if (!step(placed(life.p_tid, GHOST_TXN_F_PREEMPT),
                "the preemptor was committed to the worker's CPU with GHOST_TXN_F_PREEMPT") ||
          !step(wait_msg(life.w_tid, GHOST_MSG_TASK_PREEMPT, mark) >= 0,
                "the worker was preempted (TASK_PREEMPT)") ||
          !step(wait_msg(life.p_tid, GHOST_MSG_TASK_DEAD, mark) >= 0 && p_cpu == kCpu,
                "the preemptor ran on CPU 1 and exited")) {
        return;
      }
      w_go_on = true;
      if (!step(placed(life.w_tid), "the preempted worker was committed again") ||
          !step(wait_msg(life.w_tid, GHOST_MSG_TASK_YIELD, mark) >= 0,
                "the worker yielded (TASK_YIELD)") ||
          !step(placed(life.w_tid), "the yielded worker was committed again")) {
        return;
      }
      step(wait_msg(life.w_tid, GHOST_MSG_TASK_DEAD, mark) >= 0, "the worker exited (TASK_DEAD)");
    }();
    // Cut short: let both threads finish, placing them whenever runnable.
    w_go_on = true;
    w_gate.Open();
    p_gate.Open();
    WaitUntil(
        [&] {
          agent.Drain();
          bool done = true;
          for (uint64_t tid : {life.w_tid, life.p_tid}) {
            ThreadState t = agent.Threads()[tid];
            if (tid == 0 || t.dead) continue;
            done = false;
            if (t.runnable) agent.Commit(kCpu, tid, t.seq, agent.barrier(), GHOST_TXN_F_PREEMPT);
          }
          return done;
        },
        absl::Seconds(30), 1000);
    worker.join();
    preemptor.join();
    agent.Drain();
    pump();
    life.p_cpu = p_cpu;
    life.w_cpu_ns = w_cpu_ns;
    return life;
  };
  const Life life = live();
  if (life.disturbed) {
    std::printf("note: %d TASK_PREEMPT(s) of the worker by a higher class (CPU_BUSY for CPU 1 "
                "right after): left out of the sequence check\n", life.disturbed);
  }
  for (const std::string& p : life.problems) f.Fail(p);
  f.Check(life.problems.empty(), "every scripted step happened");
  f.Check(step_errors == 0, "the threads made every change they were asked to");
  const uint64_t w_tid = life.w_tid;

  // The worker: exactly the scripted sequence, ON_CPU aside.
  const std::vector<ghost_msg> mine = agent.MessagesOf(w_tid);
  std::printf("messages about the worker:%s\n", Describe(mine).c_str());
  std::vector<uint16_t> events;
  {
    const auto log = agent.Log();
    const auto explained = ExplainedPreempts(log, w_tid, kCpu, life.scripted);
    for (size_t i = 0; i < log.size(); i++) {
      if (log[i].tid != w_tid || log[i].type == GHOST_MSG_TASK_ON_CPU) continue;
      if (std::find(explained.begin(), explained.end(), i) != explained.end()) continue;
      events.push_back(log[i].type);
    }
  }
  const std::vector<uint16_t> want = {
      GHOST_MSG_TASK_NEW,     GHOST_MSG_TASK_WAKEUP,           GHOST_MSG_TASK_BLOCKED,
      GHOST_MSG_TASK_WAKEUP,  GHOST_MSG_TASK_PREEMPT,          GHOST_MSG_TASK_YIELD,
      GHOST_MSG_TASK_AFFINITY_CHANGED, GHOST_MSG_TASK_PRIORITY_CHANGED, GHOST_MSG_TASK_DEAD};
  f.Check(events == want,
          "exactly NEW, WAKEUP, BLOCKED, WAKEUP, PREEMPT, YIELD, AFFINITY_CHANGED, "
          "PRIORITY_CHANGED, DEAD, in that order (TASK_ON_CPU and a higher class's PREEMPTs "
          "aside)");
  f.Check(Consecutive(mine), "seqnums are 1, 2, 3, ... (each message bumps it, none lost)");

  // The preemptor ran on CPU 1 because of that commit (not, say, the
  // watchdog's fallback): its ON_CPU names a transaction.
  bool p_committed = false;
  for (const ghost_msg& m : agent.MessagesOf(life.p_tid)) {
    p_committed |= m.type == GHOST_MSG_TASK_ON_CPU && m.on_cpu.cpu == static_cast<uint32_t>(kCpu) &&
                   m.on_cpu.commit_seq > 0;
  }
  f.Check(p_committed, "the preemptor's TASK_ON_CPU on CPU 1 names the preempting transaction");

  // Payloads carry what a policy needs.
  bool nice_ok = false, mask_ok = false, runtime_ok = true, wake_ok = false, preempt_ok = false;
  bool oncpu_ok = true;
  int committed_oncpu = 0;
  uint64_t last_runtime = 0;
  for (const ghost_msg& m : mine) {
    switch (m.type) {
      case GHOST_MSG_TASK_PRIORITY_CHANGED:
        nice_ok = m.priority.nice == 5 && m.priority.weight < 100;
        break;
      case GHOST_MSG_TASK_AFFINITY_CHANGED:
        mask_ok = m.affinity.cpus[0] == (1u << kCpu);
        break;
      case GHOST_MSG_TASK_WAKEUP:
        wake_ok = m.wakeup.waker_cpu < 2;
        break;
      case GHOST_MSG_TASK_ON_CPU:
        oncpu_ok = oncpu_ok && m.on_cpu.cpu == static_cast<uint32_t>(kCpu);
        committed_oncpu += m.on_cpu.commit_seq > 0;
        break;
      case GHOST_MSG_TASK_PREEMPT:
        preempt_ok = m.off_cpu.from_cpu == static_cast<uint32_t>(kCpu) && m.off_cpu.was_current;
        [[fallthrough]];
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
  f.Check(preempt_ok, "PREEMPT says it was taken off CPU 1 while running");
  f.Check(oncpu_ok && committed_oncpu >= 4,
          absl::StrFormat("ON_CPU carries CPU 1 and the committing transaction (%d name one; "
                          "4 commits were made)", committed_oncpu));
  f.Check(runtime_ok && last_runtime >= static_cast<uint64_t>(life.w_cpu_ns),
          absl::StrFormat("off-CPU messages carry a growing runtime (DEAD: %u ns, the thread "
                          "measured %d ns)", last_runtime, life.w_cpu_ns));
  // The status word: same tid, newest seqnum, DEAD.
  auto w_word = agent.StatusWord(w_tid);
  f.Check(w_word.ok() && w_word->tid == w_tid && !mine.empty() &&
              w_word->seqnum == mine.back().seqnum && w_word->dead(),
          absl::StrFormat("the worker's status word: tid %u seqnum %u flags %#x (newest message "
                          "%u)", w_word.ok() ? w_word->tid : 0, w_word.ok() ? w_word->seqnum : 0,
                          w_word.ok() ? w_word->flags : 0, mine.empty() ? 0 : mine.back().seqnum));

  // The departer, long after it left and exited: DEPARTED was its last word.
  const std::vector<ghost_msg> dmsgs = agent.MessagesOf(d_tid);
  std::printf("messages about the departer:%s\n", Describe(dmsgs).c_str());
  f.Check(!dmsgs.empty() && dmsgs.back().type == GHOST_MSG_TASK_DEPARTED && Consecutive(dmsgs),
          "the departer: NEW ... DEPARTED, seqnums 1, 2, 3, ..., nothing after DEPARTED (no "
          "DEAD at its exit)");
  f.Check(dmsgs.size() >= 3 && dmsgs[1].type == GHOST_MSG_TASK_WAKEUP,
          "the departer's earlier messages (NEW, WAKEUP, ...) precede DEPARTED");
  d_word = agent.StatusWord(d_tid);
  f.Check(d_word.ok() && d_word->dead() && !d_word->on_cpu() && d_word->seqnum == d_seq,
          "its status word did not follow it into CFS (still the DEPARTED seqnum, not on CPU)");
  bool w_departed = false;
  for (const ghost_msg& m : mine) w_departed |= m.type == GHOST_MSG_TASK_DEPARTED;
  f.Check(!w_departed, "the worker, which exited in the class, got DEAD and no DEPARTED");

  f.Check(ks.ClassInfo().fallback_runs == 0,
          absl::StrFormat("every run was the script's: the watchdog fallback ran nothing (%u)",
                          ks.ClassInfo().fallback_runs));
  const ghost_queue_word& qw = ks.QueueWord(setup->queue);
  f.Check(qw.dropped == 0 && qw.barrier >= mine.size() + dmsgs.size(),
          absl::StrFormat("queue barrier %u counts every message, %u dropped", qw.barrier,
                          qw.dropped));
  CheckClassAlive(ks, f);
  if (f.n != 0) PrintLog(agent);
  return f.n == 0 ? 0 : 1;
}
