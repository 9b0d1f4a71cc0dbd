// ghost_fork_commit: a thread is committable as soon as its TASK_NEW arrives.
//
// An enclave thread (the spawner) forks many short-lived threads and
// processes, which join its enclave. The agent acts on each one the moment its
// TASK_NEW is read: a transaction at that seqnum and an ASSOCIATE_QUEUE. Every
// child stays alive until the agent has done both (it waits for the agent to
// release it), so a NOT_FOUND / ENOENT is never "it is gone": it is the class
// failing to find a live thread it has just reported. On 7.2, sched_ext
// publishes a fork in its tid hash only after ops.enable (which sends
// TASK_NEW), so the class must find its threads by its own index.
//
// The agent blocks on its queue and is woken by every message, as per-CPU
// agents and ghost-agent are: that wake-up is what lets it read TASK_NEW
// while the fork is still in scx_post_fork().
// Needs 3 CPUs: the agent on CPU 0, the enclave is CPUs 1-2. Nothing is
// committed to run: the enclave's short watchdog runs every thread through
// the fallback, so the test does not depend on a policy.
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

namespace {

constexpr int kThreads = 600;
constexpr int kProcs = 200;
constexpr int kBatch = 2;  // children alive at once: the agent is mostly blocked at a fork
constexpr int kCommitCpu = 2;        // slot the TASK_NEW commits use
constexpr size_t kPidSpace = 1 << 22;  // pid_max can be at most 4M
constexpr int64_t kChildWaitNs = 20'000'000'000LL;

// Shared with forked children: released[pid] != 0 once the agent is done.
std::atomic<uint8_t>* released = nullptr;
std::atomic<int>* child_timeouts = nullptr;

// A child's whole life: wait to be released (it must be alive while the
// agent looks it up), then end.
void ChildBody() {
  const int self = Gettid();
  const int64_t end = NowNs() + kChildWaitNs;
  while (released[self].load() == 0) {
    if (NowNs() > end) {
      child_timeouts->fetch_add(1);
      return;
    }
    SleepUs(200);
  }
}

void Spawn(std::atomic<int>& spawned) {
  for (int i = 0; i < kThreads; i += kBatch) {
    std::vector<std::thread> batch;
    for (int j = i; j < i + kBatch && j < kThreads; ++j) {
      batch.emplace_back(ChildBody);
      spawned++;
    }
    for (std::thread& t : batch) t.join();
  }
  for (int i = 0; i < kProcs; i += kBatch) {
    std::vector<pid_t> batch;
    for (int j = i; j < i + kBatch && j < kProcs; ++j) {
      pid_t pid = fork();
      if (pid == 0) {
        ChildBody();
        _exit(0);
      }
      if (pid > 0) {
        batch.push_back(pid);
        spawned++;
      }
    }
    for (pid_t pid : batch) waitpid(pid, nullptr, 0);
  }
}

}  // namespace

int main() {
  Failures f;
  if (sysconf(_SC_NPROCESSORS_ONLN) < 3) {
    std::printf("FAIL: needs 3 CPUs\n");
    return 1;
  }
  void* mem = mmap(nullptr, kPidSpace + 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
  if (mem == MAP_FAILED) {
    std::printf("FAIL: mmap\n");
    return 1;
  }
  released = static_cast<std::atomic<uint8_t>*>(mem);
  child_timeouts = reinterpret_cast<std::atomic<int>*>(static_cast<char*>(mem) + kPidSpace);

  cpu_set_t cpu0, enclave_cpus;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  CPU_ZERO(&enclave_cpus);
  CPU_SET(1, &enclave_cpus);
  CPU_SET(2, &enclave_cpus);
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  // A short watchdog: the fallback runs what the agent does not commit.
  auto setup = Setup::Create({.cpus = ghost::CpuList({1, 2}), .watchdog_ms = 5});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {});
  if (auto s = ks.ConfigQueueWakeup(setup->queue, /*wake_cpu=*/0, /*wake_agent=*/true); !s.ok()) {
    f.Fail(std::string(s.message()));
  }

  // Everything below runs in the message hook, the moment TASK_NEW is read.
  std::map<int, int> commit_results;
  int associate_ok = 0, associate_enoent = 0, associate_other = 0, news = 0;
  int not_found_alive = 0;
  agent.on_message = [&](const ghost_msg& m) {
    if (m.type != GHOST_MSG_TASK_NEW) return;
    news++;
    const int pid = static_cast<int>(m.task_new.pid);
    ghost_txn t = {};
    t.tid = m.tid;
    t.task_seqnum = m.seqnum;
    t.queue = setup->queue;
    t.flags = GHOST_TXN_F_NO_BARRIER;  // the thread's seqnum is what counts here
    int r = -2;
    if (OpenTxn(ks, kCommitCpu, t)) {
      r = ks.Commit(ghost::CpuList({kCommitCpu})).ok() ? WaitTxn(ks, kCommitCpu, absl::Seconds(2))
                                                       : -3;
    }
    commit_results[r]++;
    absl::Status s = ks.AssociateQueue(m.tid, setup->queue);
    if (s.ok()) {
      associate_ok++;
    } else if (absl::IsNotFound(s)) {
      associate_enoent++;
    } else {
      associate_other++;
      std::printf("note: associate of tid %llu: %s\n", static_cast<unsigned long long>(m.tid),
                  std::string(s.message()).c_str());
    }
    // Not released yet, so alive: NOT_FOUND would be a lie.
    if (r == GHOST_TXN_NOT_FOUND || absl::IsNotFound(s)) not_found_alive++;
    if (pid > 0 && static_cast<size_t>(pid) < kPidSpace) released[pid].store(1);
  };

  std::atomic<int> spawner_pid{0}, spawned{0};
  std::atomic<bool> entered{false}, spawned_all{false};
  std::thread spawner = StartCfsThread(enclave_cpus, [&] {
    spawner_pid = Gettid();
    while (!entered.load()) SleepUs(100);
    if (!EnterSchedExt()) std::printf("FAIL: spawner could not enter SCHED_EXT\n");
    Spawn(spawned);
    spawned_all = true;
  });
  while (spawner_pid.load() == 0) SleepUs(100);
  if (auto s = ks.EnrollPid(spawner_pid, setup->enclave); !s.ok()) {
    f.Fail(std::string(s.message()));
  }
  entered = true;

  // The agent blocks on its queue and is woken by each message, as per-CPU
  // agents are: the wake-up sent with TASK_NEW runs it at once, possibly
  // while the fork that sent it is still being set up.
  const int64_t end = NowNs() + 120'000'000'000LL;
  while (!spawned_all.load() && NowNs() < end) {
    if (agent.Drain() == 0) (void)ks.WaitQueue(setup->queue, absl::Milliseconds(100));
  }
  // Children never released (their TASK_NEW never came) time out by themselves.
  spawner.join();
  agent.Drain();

  std::string results;
  for (auto [r, n] : commit_results) results += absl::StrFormat(" %s=%d", ResultName(r), n);
  std::printf("TASK_NEW seen: %d; commits at TASK_NEW:%s; associate ok=%d enoent=%d other=%d\n",
              news, results.c_str(), associate_ok, associate_enoent, associate_other);
  const int children = kThreads + kProcs;
  f.Check(spawned.load() == children,
          absl::StrFormat("the spawner made %d children (got %d)", children, spawned.load()));
  f.Check(news >= children,
          absl::StrFormat("a TASK_NEW for every child (%d children, %d TASK_NEW)", children, news));
  f.Check(child_timeouts->load() == 0,
          absl::StrFormat("every child was released by the agent (%d waited in vain)",
                          child_timeouts->load()));
  f.Check(not_found_alive == 0,
          absl::StrFormat("no live thread was NOT_FOUND at its TASK_NEW (%d were)", not_found_alive));
  f.Check(commit_results[-1] + commit_results[-2] + commit_results[-3] == 0,
          "every commit at TASK_NEW got a result");
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
