// What every ghost-bench workload is built from: clocks, CPU-burning compute,
// futex waits/wakes, and a group of threads that (optionally enrolled in an
// enclave first) switch themselves to SCHED_EXT, start together, and can be
// abandoned at a deadline so a thread the scheduler never runs makes the
// benchmark fail instead of hang.
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_BENCH_THREADS_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_BENCH_THREADS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <sys/types.h>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ghost {

inline constexpr int kSchedExtPolicy = 7;

int64_t MonotonicNs();  // CLOCK_MONOTONIC
int64_t ThreadCpuNs();  // CLOCK_THREAD_CPUTIME_ID of the caller

// Burns `ns` of the calling thread's CPU time (not wall time: being preempted
// does not shorten the work).
void ComputeFor(int64_t ns);

// Sleeps while *word == expected (returns early on wake, signal or change).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected);
void FutexWake(std::atomic<uint32_t>* word, int count);

// Moves the calling thread to SCHED_EXT (policy 7).
absl::Status SwitchToSchedExt();
// Called by a thread with its own tid before it switches to SCHED_EXT, e.g.
// to enroll it in an enclave (ghost-bench --enclave).
using EnrollFn = std::function<absl::Status(pid_t tid)>;

// Whether a new thread can switch to SCHED_EXT on this kernel (probed on a
// throwaway thread so the caller keeps its policy). With `enroll`, the probe
// enrolls itself first, like the measured threads, so that it runs where they
// will (an enclave's probe thread must not show up in the class's FIFO).
absl::Status CheckSchedExtSupported(const EnrollFn& enroll = nullptr);

// 1 if a sched_ext class runs the calling thread, 0 if not, -1 if unknown
// (ext.enabled in /proc/thread-self/sched).
int RunBySchedExtClass();

// CPUs the process may run on.
int AvailableCpus();

class ThreadGroup {
 public:
  // With `expect_class`, each thread checks after its body that a sched_ext
  // class ran it (so a run "under ghost" cannot silently be a fair-class run).
  // With `enroll`, each thread first calls it with its tid; a failure is a
  // start failure like a failed switch.
  explicit ThreadGroup(bool sched_ext, bool expect_class = false, EnrollFn enroll = nullptr)
      : sched_ext_(sched_ext), expect_class_(expect_class), enroll_(std::move(enroll)) {}
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  // Joins finished threads; detaches ones still running (they keep their
  // closures, so shared state must be owned by the closures).
  ~ThreadGroup();

  // Queues a thread body; returns its index. Call before Start().
  int Add(std::function<void()> body);
  // Spawns every thread; each switches itself to SCHED_EXT if asked, then all
  // bodies start together. If any thread fails to switch (or not all report
  // by `deadline`), no body runs and the first error is returned.
  absl::Status Start(absl::Time deadline);
  // Waits until every thread returned or `deadline`; returns how many have not.
  int JoinUntil(absl::Time deadline);
  // After JoinUntil: whether thread i returned (its results may be read).
  bool Finished(int i) const;
  int size() const { return static_cast<int>(threads_.size()); }
  // After JoinUntil: the first thread that was not run by a sched_ext class
  // although expect_class was set ("" if none).
  std::string ClassError() const;

 private:
  struct Shared;
  bool sched_ext_;
  bool expect_class_;
  EnrollFn enroll_;
  std::vector<std::function<void()>> pending_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
  std::vector<bool> joined_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_BENCH_THREADS_H_
