// A minimal agent for the BPF-class VM scenarios, written straight against
// BpfKernelSide and the ABI (slots, queue words, messages), so that the
// scenarios test the kernel side and nothing else.
//
// It records every message, keeps each thread's newest seqnum and whether it
// is runnable, and in each Round() commits waiting threads to the enclave's
// CPUs in one group commit. Header-only: every tests/vm/bin/*.cc is its own
// static binary.
#ifndef GHOST_SCX_TESTS_VM_TEST_AGENT_H_
#define GHOST_SCX_TESTS_VM_TEST_AGENT_H_

#include <linux/mempolicy.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "userspace/bpf_kernel_side.h"
#include "userspace/message.h"
#include "userspace/status_word.h"

namespace ghost_test {

constexpr int kSchedExt = 7;

inline int Gettid() { return static_cast<int>(syscall(SYS_gettid)); }

inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

inline void SpinNs(int64_t ns) {
  int64_t end = NowNs() + ns;
  while (NowNs() < end) {
  }
}

// Spins until the calling thread has used `ns` of CPU time (not wall time:
// under TCG and preemption, wall time says little about what ran).
inline void SpinCpuNs(int64_t ns) {
  auto cpu_ns = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
  };
  int64_t end = cpu_ns() + ns;
  while (cpu_ns() < end) {
  }
}

inline double MonoSeconds() { return static_cast<double>(NowNs()) / 1e9; }

// Says so when a sleep overshoots by more than a second: the scenario's own
// thread was kept off its CPU (a loaded host, a stalled guest), which
// explains a watchdog run or a timed-out wait in the lines that follow.
inline void SleepUs(int64_t us) {
  timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  const int64_t start = NowNs();
  nanosleep(&ts, nullptr);
  const int64_t over = NowNs() - start - us * 1000;
  if (over > 1'000'000'000) {
    std::printf("note: a %lld us sleep took %.3f s more [%.3f]\n", static_cast<long long>(us),
                static_cast<double>(over) / 1e9, MonoSeconds());
    std::fflush(stdout);
  }
}

// Waits until `pred` holds or `timeout` passes; true if it held. Everything a
// scenario checks that happens asynchronously (a message, a thread starting)
// is waited for this way, never after a fixed sleep: the CI host is a loaded
// 2-core box running single-threaded TCG, where anything can take 100x longer.
inline bool WaitUntil(const std::function<bool()>& pred, absl::Duration timeout,
                      int64_t poll_us = 200) {
  const int64_t end = NowNs() + absl::ToInt64Nanoseconds(timeout);
  for (;;) {
    if (pred()) return true;
    if (NowNs() >= end) return false;
    SleepUs(poll_us);
  }
}

// The CPU set {cpus...}.
inline cpu_set_t CpuSet(std::initializer_list<int> cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  return set;
}

// Every online CPU.
inline cpu_set_t AllCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (int c = 0; c < n; c++) CPU_SET(c, &set);
  return set;
}

// Sets the affinity of thread `pid` (0: the calling thread).
inline bool SetAffinity(const cpu_set_t& set, int pid = 0) {
  return sched_setaffinity(pid, sizeof(set), &set) == 0;
}

// Pins the calling thread to `cpu`.
inline bool PinToCpu(int cpu) { return SetAffinity(CpuSet({cpu})); }

// The scheduler state letter of thread `tid` of this process ('S' once it
// sleeps, e.g. in read() or FUTEX_WAIT), from /proc; '?' if it is gone.
inline char ProcState(int tid) {
  std::ifstream f(absl::StrFormat("/proc/self/task/%d/stat", tid));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() ? '?' : s[p + 2];
}

// The calling thread switches itself to SCHED_EXT.
inline bool EnterSchedExt() {
  sched_param sp = {.sched_priority = 0};
  return sched_setscheduler(0, kSchedExt, &sp) == 0;
}

// The calling thread becomes SCHED_FIFO: agents outrank what they schedule.
inline bool EnterFifo(int prio = 1) {
  sched_param sp = {.sched_priority = prio};
  return sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

// Starts `body` on a CFS thread allowed on `cpus`. A thread inherits its
// creator's CPU and SCHED_FIFO: made by an agent that then spins, it would
// wait behind it forever (same priority, same CPU; RT throttling only lets
// CFS threads through). So it leaves both before `body`, and this returns
// only once it has, waiting in sleeps that let it run.
inline std::thread StartCfsThread(const cpu_set_t& cpus, std::function<void()> body) {
  auto ready = std::make_shared<std::atomic<bool>>(false);
  std::thread t([cpus, ready, body = std::move(body)] {
    SetAffinity(cpus);
    sched_param sp = {.sched_priority = 0};
    sched_setscheduler(0, SCHED_OTHER, &sp);
    ready->store(true);
    body();
  });
  while (!ready->load()) SleepUs(100);
  return t;
}

// A scenario's agent shares its process with the threads it schedules, so
// it must never wait on one of them: it could wait for ever on a thread that
// waits for it (the class's watchdog breaks that after watchdog_ms). In a
// NUMA guest the kernel's NUMA balancing makes such waits: a worker migrating
// a page of the process holds the page's lock, is parked, and the agent
// touching that page waits in migration_entry_wait (seen: 4 of 18 fast_path_gap
// runs on a loaded host, every one ended by the watchdog after 15 s). A task
// memory policy without MPOL_F_MOF (MPOL_LOCAL: allocate on the local node,
// as by default) opts the process out of it; threads made later inherit it.
inline void LeaveNumaBalancing() {
  if (syscall(SYS_set_mempolicy, MPOL_LOCAL, nullptr, 0) != 0) {
    std::printf("note: set_mempolicy(MPOL_LOCAL): %s\n", strerror(errno));
  }
}

// Watches a thread for a wait in the kernel (state D) longer than `limit_ms`:
// the first one is printed with the thread's kernel stack and every
// runqueue (debugfs sched/debug), once. A slow host makes a scenario slow;
// an agent stuck in the kernel is a wait on something, and this says what.
class KernelWaitWatch {
 public:
  KernelWaitWatch(int tid, int limit_ms) : tid_(tid), limit_ns_(int64_t{limit_ms} * 1'000'000) {
    thread_ = std::thread([this] { Run(); });
  }
  ~KernelWaitWatch() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Run() {
    // Above the scenario's own SCHED_FIFO agent, off the class.
    sched_param sp = {.sched_priority = 90};
    sched_setscheduler(0, SCHED_FIFO, &sp);
    const std::string task = "/proc/self/task/" + std::to_string(tid_);
    int64_t since = 0;
    while (!stop_) {
      SleepUs(50'000);
      std::ifstream stat(task + "/stat");
      std::string line;
      if (!std::getline(stat, line)) return;  // the thread is gone
      const size_t paren = line.rfind(')');
      const bool waiting = paren != std::string::npos && paren + 2 < line.size() &&
                           line[paren + 2] == 'D';
      if (!waiting) {
        since = 0;
        continue;
      }
      if (since == 0) since = NowNs();
      if (NowNs() - since < limit_ns_) continue;
      std::printf("note: thread %d has waited in the kernel for %.3f s [%.3f]:\n", tid_,
                  static_cast<double>(NowNs() - since) / 1e9, MonoSeconds());
      for (const char* f : {"/wchan", "/stack"}) Print(task + f, "  ");
      Print("/sys/kernel/debug/sched/debug", "  sched: ");
      std::fflush(stdout);
      return;
    }
  }
  static void Print(const std::string& path, const char* prefix) {
    std::ifstream in(path);
    std::string line;
    if (!in) std::printf("%s(%s unreadable)\n", prefix, path.c_str());
    while (in && std::getline(in, line)) std::printf("%s%s\n", prefix, line.c_str());
  }

  const int tid_;
  const int64_t limit_ns_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Each line carries the guest's CLOCK_MONOTONIC in seconds (the clock of the
// kernel's log and of message timestamps): a loaded host's failures are
// timing windows, and the log then shows where the time went.
struct Failures {
  std::atomic<int> n{0};
  void Fail(const std::string& what) {
    n++;
    std::printf("FAIL: %s [%.3f]\n", what.c_str(), MonoSeconds());
    std::fflush(stdout);
  }
  void Check(bool ok, const std::string& what) {
    if (ok) {
      std::printf("PASS: %s [%.3f]\n", what.c_str(), MonoSeconds());
      std::fflush(stdout);
    } else {
      Fail(what);
    }
  }
};

// What Setup::Create loads and makes.
struct SetupOptions {
  ghost::CpuList cpus;  // the enclave
  // Long by default: within it nothing but the scenario's own transactions
  // runs a thread, however slow the host (a loaded CI host took over 4 s for
  // a scenario's setup). The class caps it at half of kernel_timeout.
  uint32_t watchdog_ms = 15000;
  bool tick_messages = false;
  uint32_t race_window_iters = 0;
  absl::Duration kernel_timeout = absl::Seconds(30);  // sched_ext's maximum
};

// Loads the class and sets up one enclave over `cpus` with one queue.
struct Setup {
  std::unique_ptr<ghost::BpfKernelSide> ks;
  ghost::EnclaveId enclave = 0;
  ghost::QueueId queue = 0;
  std::unique_ptr<KernelWaitWatch> watch;  // of the thread that made the setup: the agent

  // Call it before starting the threads the scenario schedules (they inherit
  // LeaveNumaBalancing's policy).
  static std::unique_ptr<Setup> Create(const SetupOptions& opts) {
    LeaveNumaBalancing();
    auto s = std::make_unique<Setup>();
    s->watch = std::make_unique<KernelWaitWatch>(Gettid(), 2000);
    auto ks = ghost::BpfKernelSide::Create({.slice = absl::Milliseconds(5),
                                            .kernel_timeout = opts.kernel_timeout,
                                            .race_window_iters = opts.race_window_iters});
    if (!ks.ok()) {
      std::printf("FAIL: loading the class: %s\n", std::string(ks.status().message()).c_str());
      return nullptr;
    }
    s->ks = std::move(*ks);
    auto e = s->ks->CreateEnclave({.cpus = opts.cpus,
                                   .watchdog_ms = opts.watchdog_ms,
                                   .tick_messages = opts.tick_messages});
    if (!e.ok()) {
      std::printf("FAIL: enclave: %s\n", std::string(e.status().message()).c_str());
      return nullptr;
    }
    s->enclave = *e;
    auto q = s->ks->CreateQueue({.enclave = *e, .wake_agent = false});
    if (!q.ok()) {
      std::printf("FAIL: queue: %s\n", std::string(q.status().message()).c_str());
      return nullptr;
    }
    s->queue = *q;
    if (auto st = s->ks->SetDefaultQueue(*e, *q); !st.ok()) {
      std::printf("FAIL: default queue: %s\n", std::string(st.message()).c_str());
      return nullptr;
    }
    return s;
  }
};

struct ThreadState {
  uint64_t seq = 0;
  bool runnable = false;
  bool pending = false;  // a commit is in flight for it
  bool dead = false;
  uint32_t pid = 0;
  uint32_t sw_index = ~0u;  // its status word, from TASK_NEW
  uint16_t last = GHOST_MSG_NONE;  // type of its newest message
};

// What a task message says about its thread.
// Indices in `log`, within [from, to), of CPU messages `type` about `cpu`:
// e.g. the CPU_BUSYs that say a higher class took a CPU during a step.
inline std::vector<size_t> CpuMessages(const std::vector<ghost_msg>& log, uint16_t type, int cpu,
                                       size_t from, size_t to = SIZE_MAX) {
  std::vector<size_t> out;
  for (size_t i = from; i < log.size() && i < to; i++) {
    if (log[i].type == type && log[i].tid == GHOST_TID_NONE &&
        log[i].cpu == static_cast<uint32_t>(cpu)) {
      out.push_back(i);
    }
  }
  return out;
}

inline void ApplyMessage(ThreadState& t, const ghost_msg& m) {
  t.seq = m.seqnum;
  t.last = m.type;
  switch (m.type) {
    case GHOST_MSG_TASK_NEW:
      t.pid = m.task_new.pid;
      t.sw_index = m.task_new.sw_index;
      t.runnable = m.task_new.runnable;
      break;
    case GHOST_MSG_TASK_WAKEUP:
    case GHOST_MSG_TASK_PREEMPT:
    case GHOST_MSG_TASK_YIELD:
      t.runnable = true;
      break;
    case GHOST_MSG_TASK_BLOCKED:
      t.runnable = false;
      break;
    case GHOST_MSG_TASK_DEAD:
    case GHOST_MSG_TASK_DEPARTED:
      t.runnable = false;
      t.dead = true;
      break;
    default:
      break;
  }
}

// Fills slot `cpu` and marks it READY. False if the slot is in flight.
inline bool OpenTxn(ghost::KernelSide& ks, int cpu, const ghost_txn& fields) {
  ghost_txn* slot = ks.TxnSlot(cpu);
  if (slot == nullptr) return false;
  uint32_t st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
  if (st != GHOST_TXN_FREE && st != GHOST_TXN_DONE) return false;
  if (!__atomic_compare_exchange_n(&slot->state, &st, GHOST_TXN_OPEN, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    return false;
  }
  slot->result = GHOST_TXN_PENDING;
  slot->tid = fields.tid;
  slot->task_seqnum = fields.task_seqnum;
  slot->agent_barrier = fields.agent_barrier;
  slot->queue = fields.queue;
  slot->flags = fields.flags;
  slot->group = 0;
  slot->cpu = static_cast<uint32_t>(cpu);
  slot->slice_ns = fields.slice_ns;
  __atomic_store_n(&slot->state, GHOST_TXN_READY, __ATOMIC_RELEASE);
  return true;
}

// Waits until slot `cpu` is DONE (or `timeout` passes) and returns its result,
// or -1 on timeout. Leaves the slot FREE when done.
inline int WaitTxn(ghost::KernelSide& ks, int cpu, absl::Duration timeout) {
  ghost_txn* slot = ks.TxnSlot(cpu);
  int64_t end = NowNs() + absl::ToInt64Nanoseconds(timeout);
  while (NowNs() < end) {
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == GHOST_TXN_DONE) {
      int r = static_cast<int>(slot->result);
      __atomic_store_n(&slot->state, GHOST_TXN_FREE, __ATOMIC_RELEASE);
      return r;
    }
    SleepUs(50);
  }
  return -1;
}

inline const char* ResultName(int r) {
  static const char* names[] = {"PENDING",       "COMMITTED",     "TARGET_STALE",
                                "AGENT_STALE",   "NOT_FOUND",     "NOT_RUNNABLE",
                                "RUNNING_ELSEWHERE", "CPU_UNAVAILABLE", "NOT_ALLOWED",
                                "INVALID",       "ABORTED",       "PREEMPTED"};
  if (r < 0) return "TIMEOUT";
  if (r > GHOST_TXN_RESULT_LAST) return "?";
  return names[r];
}

class TestAgent {
 public:
  TestAgent(ghost::BpfKernelSide& ks, ghost::QueueId queue, std::vector<int> cpus)
      : ks_(ks), queue_(queue), cpus_(std::move(cpus)) {}

  // Drains the queue, remembering the barrier read first. Returns messages.
  size_t Drain() {
    barrier_ = __atomic_load_n(&ks_.QueueWord(queue_).barrier, __ATOMIC_ACQUIRE);
    return ks_.ConsumeQueue(queue_, [this](const ghost_msg& m) { OnMessage(m); });
  }

  // Commits runnable threads to free slots of the enclave's CPUs, one group
  // commit; settles finished slots first.
  void Round(uint64_t slice_ns = 0) {
    Settle();
    Drain();
    ghost::CpuList group;
    std::lock_guard<std::mutex> l(mu_);
    auto it = threads_.begin();
    for (int cpu : cpus_) {
      while (it != threads_.end() && !(it->second.runnable && !it->second.pending)) ++it;
      if (it == threads_.end()) break;
      ghost_txn* slot = ks_.TxnSlot(cpu);
      uint32_t st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
      if (st != GHOST_TXN_FREE) continue;
      ghost_txn f = {};
      f.tid = it->first;
      f.task_seqnum = it->second.seq;
      f.agent_barrier = barrier_;
      f.queue = queue_;
      f.slice_ns = slice_ns;
      if (!OpenTxn(ks_, cpu, f)) continue;
      it->second.pending = true;
      inflight_[cpu] = it->first;
      group.Set(cpu);
      ++it;
    }
    if (!group.Empty()) {
      if (auto s = ks_.Commit(group); !s.ok()) {
        std::printf("FAIL: commit: %s\n", std::string(s.message()).c_str());
      }
    }
  }

  // Reads finished slots; a COMMITTED thread is on a CPU, others retry.
  void Settle() {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = inflight_.begin(); it != inflight_.end();) {
      ghost_txn* slot = ks_.TxnSlot(it->first);
      if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != GHOST_TXN_DONE) {
        ++it;
        continue;
      }
      int r = static_cast<int>(slot->result);
      results_[r]++;
      auto t = threads_.find(it->second);
      if (t != threads_.end()) {
        t->second.pending = false;
        if (r == GHOST_TXN_COMMITTED) t->second.runnable = false;
      }
      __atomic_store_n(&slot->state, GHOST_TXN_FREE, __ATOMIC_RELEASE);
      it = inflight_.erase(it);
    }
  }

  // Runs Round() every `period_us` until `stop`.
  void Loop(const std::atomic<bool>& stop, int period_us = 200, uint64_t slice_ns = 0) {
    while (!stop.load()) {
      Round(slice_ns);
      SleepUs(period_us);
    }
    Settle();
    Drain();
  }

  std::vector<ghost_msg> Log() {
    std::lock_guard<std::mutex> l(mu_);
    return log_;
  }
  std::map<uint64_t, ThreadState> Threads() {
    std::lock_guard<std::mutex> l(mu_);
    return threads_;
  }
  std::map<int, uint64_t> Results() {
    std::lock_guard<std::mutex> l(mu_);
    return results_;
  }
  // The scx tid of the thread whose Linux tid is `pid` (from TASK_NEW), or 0.
  uint64_t TidOf(int pid) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [tid, t] : threads_) {
      if (t.pid == static_cast<uint32_t>(pid)) return tid;
    }
    return 0;
  }
  uint64_t barrier() const { return barrier_; }

  // Messages about `tid`, oldest first.
  std::vector<ghost_msg> MessagesOf(uint64_t tid) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<ghost_msg> mine;
    for (const ghost_msg& m : log_) {
      if (m.tid == tid) mine.push_back(m);
    }
    return mine;
  }

  // For a failure message: `tid`'s messages (type, CPU, seqnum, ms since
  // the first) and its status word, drained first.
  std::string History(uint64_t tid) {
    Drain();
    std::string out = "messages:";
    const std::vector<ghost_msg> mine = MessagesOf(tid);
    for (const ghost_msg& m : mine) {
      absl::StrAppendFormat(&out, " %s@%u/%llu/+%lldms", ghost::MessageTypeName(m.type), m.cpu,
                            static_cast<unsigned long long>(m.seqnum),
                            static_cast<long long>((m.time_ns - mine.front().time_ns) / 1000000));
    }
    auto sw = StatusWord(tid);
    if (sw.ok()) {
      absl::StrAppendFormat(&out, "; word: flags=%#x cpu=%d seq=%llu", sw->flags, sw->cpu,
                            static_cast<unsigned long long>(sw->seqnum));
    } else {
      absl::StrAppendFormat(&out, "; word: %s", sw.status().message());
    }
    return out;
  }

  // Drains until TASK_NEW names Linux thread `pid`; its scx tid, or 0.
  uint64_t WaitTid(int pid, absl::Duration timeout = absl::Seconds(5)) {
    uint64_t tid = 0;
    WaitUntil(
        [&] {
          Drain();
          return (tid = TidOf(pid)) != 0;
        },
        timeout);
    return tid;
  }

  // Drains once: is a message of `type` about `tid` logged at index `from` or
  // later? (A step's "was it sent back / did it block", without waiting.)
  bool LoggedSince(uint64_t tid, uint16_t type, size_t from) {
    return WaitMessage(tid, type, from, absl::ZeroDuration()) >= 0;
  }

  // Drains until a message of `type` about `tid` (GHOST_TID_NONE: any CPU
  // message) is logged at index `from` or later; its index, or -1.
  int WaitMessage(uint64_t tid, uint16_t type, size_t from = 0,
                  absl::Duration timeout = absl::Seconds(10)) {
    int found = -1;
    WaitUntil(
        [&] {
          Drain();
          std::lock_guard<std::mutex> l(mu_);
          for (size_t i = from; i < log_.size() && found < 0; i++) {
            if (log_[i].tid == tid && log_[i].type == type) found = static_cast<int>(i);
          }
          return found >= 0;
        },
        timeout);
    return found;
  }

  // The status word of `tid` (index from its TASK_NEW), read consistently.
  absl::StatusOr<ghost::StatusWordSnapshot> StatusWord(uint64_t tid) {
    uint32_t index = Threads()[tid].sw_index;
    if (index >= GHOST_MAX_THREADS) return absl::NotFoundError("no TASK_NEW for that tid");
    return ghost::ReadStatusWord(ks_.StatusWords()[index]);
  }

  // One transaction to `cpu` with exactly these fields, committed alone; its
  // result (-1: no result within `timeout`, -2: slot busy, -3: commit call
  // failed).
  int Commit(int cpu, uint64_t tid, uint64_t seq, uint64_t barrier, uint32_t flags,
             absl::Duration timeout = absl::Seconds(2), uint64_t slice_ns = 0) {
    ghost_txn t = {};
    t.tid = tid;
    t.task_seqnum = seq;
    t.agent_barrier = barrier;
    t.queue = queue_;
    t.flags = flags;
    t.slice_ns = slice_ns;
    if (!OpenTxn(ks_, cpu, t)) return -2;
    if (!ks_.Commit(ghost::CpuList({cpu})).ok()) return -3;
    return WaitTxn(ks_, cpu, timeout);
  }

  // Drains, then commits with the barrier that drain read: made again (a few
  // times) while the result is AGENT_STALE. The barrier is checked before
  // most other rules, so a message reaching the queue in between (a thread
  // parked again on a loaded host) says nothing about the rule a step checks.
  // `seq` gives the seqnum to commit with, after each drain.
  template <typename SeqFn>
  int CommitDrained(int cpu, uint64_t tid, SeqFn seq, uint32_t flags = 0) {
    int r = -1;
    for (int attempt = 0; attempt < 10; attempt++) {
      Drain();
      r = Commit(cpu, tid, seq(), barrier_, flags);
      if (r != GHOST_TXN_AGENT_STALE) break;
      std::printf("note: a message came between the drain and the commit: again\n");
    }
    return r;
  }

  // Commits `tid` to `cpu` at its newest seqnum and barrier, as a policy
  // does: a result that only says "not now" (a message raced the commit, the
  // thread is still being parked, a brief bounce off a busy CPU) is retried
  // until `timeout`. CPU_UNAVAILABLE is final unless `retry_unavailable`.
  int CommitCurrent(int cpu, uint64_t tid, uint32_t flags = 0, bool retry_unavailable = true,
                    absl::Duration timeout = absl::Seconds(10), uint64_t slice_ns = 0) {
    const int64_t end = NowNs() + absl::ToInt64Nanoseconds(timeout);
    for (;;) {
      Drain();
      const int r = Commit(cpu, tid, Threads()[tid].seq, barrier_, flags,
                           absl::Nanoseconds(std::max<int64_t>(end - NowNs(), 1'000'000)),
                           slice_ns);
      const bool again = r == GHOST_TXN_TARGET_STALE || r == GHOST_TXN_AGENT_STALE ||
                         r == GHOST_TXN_RUNNING_ELSEWHERE || r == GHOST_TXN_PREEMPTED ||
                         (r == GHOST_TXN_CPU_UNAVAILABLE && retry_unavailable);
      if (!again || NowNs() >= end) return r;
      std::printf("note: commit of tid %llu to CPU %d: %s, retrying\n",
                  static_cast<unsigned long long>(tid), cpu, ResultName(r));
      SleepUs(1000);
    }
  }
  // Called for each message (under the agent's lock), if set.
  std::function<void(const ghost_msg&)> on_message;

 private:
  void OnMessage(const ghost_msg& m) {
    std::lock_guard<std::mutex> l(mu_);
    log_.push_back(m);
    if (on_message) on_message(m);
    if (m.tid == GHOST_TID_NONE) return;
    ApplyMessage(threads_[m.tid], m);
  }

  ghost::BpfKernelSide& ks_;
  ghost::QueueId queue_;
  std::vector<int> cpus_;
  uint64_t barrier_ = 0;
  std::mutex mu_;
  std::vector<ghost_msg> log_;
  std::map<uint64_t, ThreadState> threads_;
  std::map<int, uint64_t> inflight_;  // cpu -> tid
  std::map<int, uint64_t> results_;
};

// A thread for an enclave, the set-up every scenario repeats: it runs on
// `cpus`, publishes its Linux tid, waits until Enroll() put it in an enclave,
// switches itself to SCHED_EXT, then runs `body` or, without one, spins until
// Quit(), counting spins and noting every CPU it runs on.
class SpinningWorker {
 public:
  SpinningWorker() = default;
  SpinningWorker(const SpinningWorker&) = delete;
  SpinningWorker& operator=(const SpinningWorker&) = delete;
  ~SpinningWorker() { Join(); }

  // Starts the thread; returns once its tid is published.
  void Start(const cpu_set_t& cpus, std::function<void(SpinningWorker&)> body = nullptr) {
    body_ = std::move(body);
    cpus_ = cpus;
    th_ = std::thread([this] { Run(); });
    while (pid_.load() == 0) SleepUs(100);
  }
  // Enrolls it in `enclave` and lets it enter SCHED_EXT.
  absl::Status Enroll(ghost::BpfKernelSide& ks, ghost::EnclaveId enclave) {
    absl::Status s = ks.EnrollPid(pid_.load(), enclave);
    go_ = true;
    return s;
  }
  void Quit() { quit_ = true; }
  void Join() {
    quit_ = true;
    go_ = true;
    if (th_.joinable()) th_.join();
  }

  int pid() const { return pid_.load(); }
  bool quitting() const { return quit_.load(); }
  bool entered() const { return entered_.load(); }
  bool done() const { return done_.load(); }
  uint64_t spins() const { return spins_.load(); }
  // CPU of its first step in SCHED_EXT, and of its newest spin; -1 before.
  int first_cpu() const { return first_cpu_.load(); }
  int cpu() const { return cpu_.load(); }
  // Bit c: it spun on CPU c since the last ClearCpusSeen().
  uint64_t cpus_seen() const { return cpus_seen_.load(); }
  void ClearCpusSeen() { cpus_seen_ = 0; }

 private:
  void Run() {
    SetAffinity(cpus_);
    pid_ = Gettid();
    while (!go_.load()) SleepUs(100);
    if (quit_.load()) return;
    entered_ = EnterSchedExt();
    first_cpu_ = sched_getcpu();
    if (body_) {
      body_(*this);
    } else {
      while (!quit_.load()) {
        const int c = sched_getcpu();
        cpu_.store(c, std::memory_order_relaxed);
        if (c >= 0 && c < 64) cpus_seen_.fetch_or(1ull << c, std::memory_order_relaxed);
        spins_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    done_ = true;
  }

  std::function<void(SpinningWorker&)> body_;
  cpu_set_t cpus_;
  std::thread th_;
  std::atomic<int> pid_{0}, first_cpu_{-1}, cpu_{-1};
  std::atomic<bool> go_{false}, quit_{false}, entered_{false}, done_{false};
  std::atomic<uint64_t> spins_{0}, cpus_seen_{0};
};

// The agent side of a scenario: pinned to `cpu` (outside the enclave) and
// SCHED_FIFO, as agents outrank what they schedule.
inline void BecomeAgent(int cpu = 0, int fifo_prio = 1) {
  PinToCpu(cpu);
  if (!EnterFifo(fifo_prio)) std::printf("note: agent not SCHED_FIFO\n");
}

// False, with a FAIL line, if the guest has fewer than `n` CPUs.
inline bool HaveCpus(int n) {
  const long have = sysconf(_SC_NPROCESSORS_ONLN);
  if (have >= n) return true;
  std::printf("FAIL: needs at least %d CPUs (have %ld)\n", n, have);
  return false;
}

// Every message the agent logged, one a line: what a failing run leaves in
// the console log.
inline void PrintLog(TestAgent& agent) {
  const auto log = agent.Log();
  const uint64_t t0 = log.empty() ? 0 : log.front().time_ns;
  absl::PrintF("  messages (times from %.3f, the clock of the check lines):\n",
               static_cast<double>(t0) / 1e9);
  for (const ghost_msg& m : log) {
    absl::PrintF("  msg %s tid %u seq %u cpu %u at %+d us\n", ghost::MessageTypeName(m.type),
                 m.tid, m.seqnum, m.cpu,
                 (static_cast<int64_t>(m.time_ns) - static_cast<int64_t>(t0)) / 1000);
  }
}

// The exit status of a scenario whose `workers` should all have finished:
// joins them, or (a broken run, some still stuck) exits at once with 1
// instead of waiting for them forever.
inline int ExitJoining(Failures& f, std::vector<std::unique_ptr<SpinningWorker>>& workers,
                       bool all_done) {
  if (!all_done) {
    std::fflush(stdout);
    _exit(1);
  }
  for (auto& w : workers) w->Join();
  return f.n == 0 ? 0 : 1;
}

// Ends a scenario whose threads may still wait for an agent that will not
// place them again: without its enclave they are the class's FIFO's at once,
// instead of after the enclave's (long) watchdog.
inline void ReleaseEnclave(ghost::BpfKernelSide& ks, ghost::EnclaveId enclave, Failures& f) {
  if (absl::Status s = ks.DestroyEnclave(enclave); !s.ok()) {
    f.Fail(absl::StrFormat("destroying enclave %u: %s", enclave, s.message()));
  }
}

// The class must still run (no ejection).
inline void CheckClassAlive(ghost::BpfKernelSide& ks, Failures& f) {
  absl::Status h = ks.Health();
  f.Check(h.ok(), h.ok() ? "class still attached (never ejected)"
                         : absl::StrFormat("class ejected: %s", h.message()));
}

}  // namespace ghost_test

#endif  // GHOST_SCX_TESTS_VM_TEST_AGENT_H_
