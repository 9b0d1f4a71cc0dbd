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

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "userspace/bpf_kernel_side.h"
#include "userspace/message.h"

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

inline void SleepUs(int64_t us) {
  timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
  nanosleep(&ts, nullptr);
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

struct Failures {
  std::atomic<int> n{0};
  void Fail(const std::string& what) {
    n++;
    std::printf("FAIL: %s\n", what.c_str());
    std::fflush(stdout);
  }
  void Check(bool ok, const std::string& what) {
    if (ok) {
      std::printf("PASS: %s\n", what.c_str());
      std::fflush(stdout);
    } else {
      Fail(what);
    }
  }
};

// Loads the class and sets up one enclave over `cpus` with one queue.
struct Setup {
  std::unique_ptr<ghost::BpfKernelSide> ks;
  ghost::EnclaveId enclave = 0;
  ghost::QueueId queue = 0;

  static std::unique_ptr<Setup> Create(const ghost::CpuList& cpus, uint32_t watchdog_ms,
                                       bool tick_messages = false,
                                       uint32_t race_window_iters = 0) {
    auto s = std::make_unique<Setup>();
    auto ks = ghost::BpfKernelSide::Create({.slice = absl::Milliseconds(5),
                                            .kernel_timeout = absl::Seconds(10),
                                            .race_window_iters = race_window_iters});
    if (!ks.ok()) {
      std::printf("FAIL: loading the class: %s\n", std::string(ks.status().message()).c_str());
      return nullptr;
    }
    s->ks = std::move(*ks);
    auto e = s->ks->CreateEnclave(
        {.cpus = cpus, .watchdog_ms = watchdog_ms, .tick_messages = tick_messages});
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
};

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
  // Called for each message (under the agent's lock), if set.
  std::function<void(const ghost_msg&)> on_message;

 private:
  void OnMessage(const ghost_msg& m) {
    std::lock_guard<std::mutex> l(mu_);
    log_.push_back(m);
    if (on_message) on_message(m);
    if (m.tid == GHOST_TID_NONE) return;
    ThreadState& t = threads_[m.tid];
    t.seq = m.seqnum;
    switch (m.type) {
      case GHOST_MSG_TASK_NEW:
        t.pid = m.task_new.pid;
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

// The class must still run (no ejection).
inline void CheckClassAlive(ghost::BpfKernelSide& ks, Failures& f) {
  absl::Status h = ks.Health();
  f.Check(h.ok(), h.ok() ? "class still attached (never ejected)"
                         : absl::StrFormat("class ejected: %s", h.message()));
}

}  // namespace ghost_test

#endif  // GHOST_SCX_TESTS_VM_TEST_AGENT_H_
