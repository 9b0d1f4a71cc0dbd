// deadline_jobs: jobs with deadlines in a hint table, for the edf policy.
// Started outside the class; the scenario starts ghost-agent with this
// program's table and moves it into the class (ghost-run --pid), then lets
// it go on:
//
//   1. creates the table and writes its path to --path-file; this (main)
//      thread is of the jobs' class with the earliest deadline (it runs
//      first among them when it wakes, and preempts none: a lower class would
//      wait behind them, a higher one would preempt);
//   2. waits for --go-file; requires that it runs as SCHED_EXT by then;
//   3. starts --cpus blockers and --jobs jobs, all of class 1, each blocked on
//      its own eventfd, their entries made first: the blockers with the
//      latest deadline, job i with a deadline i x 10 ms from now;
//   4. wakes the blockers, which hold every CPU for --blocker-ms; once all of
//      them run, a SCHED_OTHER thread wakes the jobs, in the reverse of their
//      deadlines' order: they wake while every CPU is held
//      (on a loaded host a blocker may start late: timers set in advance let
//      jobs find a CPU free; a blocker as the waker may be displaced and
//      wait behind the jobs it woke).
//      Each job notes when it first ran and works --job-ms.
// Prints one line:
//   deadline_jobs: order=J,J,... inversions=N (pairs a whole wave apart)
// where order lists the jobs by their deadlines' rank (0 = earliest) in the
// order they first ran, and inversions counts pairs whose deadlines are at
// least --cpus ranks apart (never on the CPUs in one wave) that ran in the
// wrong order although the earlier one had been woken 10 ms before the
// later one started. Exit 0 when it got that far; 1 otherwise; 2 for bad flags.
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/hints/hint_table.h"

ABSL_FLAG(std::string, path_file, "", "Where to write the hint table's path (required).");
ABSL_FLAG(std::string, go_file, "", "Go on once this file exists (required).");
ABSL_FLAG(int, jobs, 9, "Jobs with deadlines.");
ABSL_FLAG(int, cpus, 3, "CPUs the enclave runs them on (one blocker each).");
ABSL_FLAG(int, blocker_ms, 300, "How long the blockers hold the CPUs.");
ABSL_FLAG(int, job_ms, 60, "How long each job works.");

namespace {

constexpr uint32_t kJobQos = 1;

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct Job {
  std::thread thread;
  int efd = -1;
  std::function<void()> on_start;  // a blocker's: called once it runs
  std::atomic<int> tid{0};
  std::atomic<int64_t> woken_ns{0};  // a job's: when the waker woke it
  std::atomic<int64_t> started_ns{0};
};

bool Wake(Job& j) {
  const uint64_t one = 1;
  return write(j.efd, &one, sizeof(one)) == sizeof(one);
}

// Blocks on its eventfd, then notes when it ran, calls on_start and works
// `work_ns`.
void Run(Job* j, int64_t work_ns) {
  j->tid = Gettid();
  uint64_t v;
  if (read(j->efd, &v, sizeof(v)) != sizeof(v)) return;
  const int64_t start = NowNs();
  j->started_ns = start;
  if (j->on_start) j->on_start();
  while (NowNs() - start < work_ns) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: deadline_jobs --path-file=F --go-file=G [flags]");
  const std::string path_file = absl::GetFlag(FLAGS_path_file);
  const std::string go_file = absl::GetFlag(FLAGS_go_file);
  const int njobs = absl::GetFlag(FLAGS_jobs), ncpus = absl::GetFlag(FLAGS_cpus);
  const int64_t blocker_ns = absl::GetFlag(FLAGS_blocker_ms) * 1000000LL;
  const int64_t job_ns = absl::GetFlag(FLAGS_job_ms) * 1000000LL;
  if (path_file.empty() || go_file.empty() || njobs < 2 || ncpus < 1 || njobs + ncpus > 64 ||
      blocker_ns <= 0 || job_ns <= 0) {
    absl::FPrintF(stderr,
                  "deadline_jobs: --path-file and --go-file are required; 2..64 jobs and CPUs; "
                  "positive --blocker-ms and --job-ms\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ghost::HintWriter>> table = ghost::HintWriter::Create({});
  if (!table.ok()) {
    absl::PrintF("deadline_jobs: %s\n", table.status().message());
    return 1;
  }
  auto add = [&](pid_t tid, const ghost::Hint& h) {
    absl::Status s = (*table)->Add(tid, h).status();
    if (!s.ok()) absl::PrintF("deadline_jobs: %s\n", s.message());
    return s.ok();
  };
  {
    std::ofstream f(path_file);
    f << (*table)->path() << "\n";
  }
  for (int i = 0; access(go_file.c_str(), F_OK) != 0; i++) {
    if (i > 6000) {
      absl::PrintF("deadline_jobs: %s did not appear within 60 s\n", go_file);
      return 1;
    }
    usleep(10'000);
  }
  if (sched_getscheduler(0) != ghost::kSchedExt) {
    absl::PrintF("deadline_jobs: not a SCHED_EXT thread after %s (policy %d)\n", go_file,
                 sched_getscheduler(0));
    return 1;
  }

  // jobs[0, ncpus): the blockers; jobs[ncpus + i]: job i (deadline rank i).
  std::vector<std::unique_ptr<Job>> all;
  const int64_t base = NowNs();
  if (!add(Gettid(), {.qos = kJobQos, .deadline_ns = base})) return 1;
  for (int i = 0; i < ncpus + njobs; i++) {
    all.push_back(std::make_unique<Job>());
    Job* j = all.back().get();
    j->efd = eventfd(0, EFD_CLOEXEC);
    if (j->efd < 0) {
      absl::PrintF("deadline_jobs: eventfd failed\n");
      return 1;
    }
    j->thread = std::thread(Run, j, i < ncpus ? blocker_ns : job_ns);
    while (j->tid.load() == 0) usleep(1000);
    const uint64_t deadline = i < ncpus ? base + 3600 * 1000000000LL  // latest
                                        : base + (i - ncpus + 1) * 10000000LL;
    if (!add(j->tid, {.qos = kJobQos, .deadline_ns = deadline})) return 1;
  }
  usleep(100'000);  // every thread blocked in read() (its entry made before it runs)
  // Once every blocker runs, a thread outside the class (SCHED_OTHER: a
  // displaced thread of ours could not finish the job) wakes the jobs, the
  // latest deadline first.
  std::atomic<int> running{0};
  for (int i = 0; i < ncpus; i++) all[i]->on_start = [&] { running.fetch_add(1); };
  bool woke_all = true;
  std::thread waker([&] {
    const sched_param other = {.sched_priority = 0};
    woke_all = sched_setscheduler(0, SCHED_OTHER, &other) == 0;
    for (int i = 0; woke_all && running.load() < ncpus; i++) {
      woke_all = i < 10'000;  // 10 s
      usleep(1000);
    }
    // In one go: the waker displaces a blocker while it runs, and the CPU
    // it gives back goes to the earliest job waiting by then.
    for (int k = njobs - 1; woke_all && k >= 0; k--) {
      all[ncpus + k]->woken_ns = NowNs();
      woke_all = Wake(*all[ncpus + k]);
    }
  });
  for (int i = 0; i < ncpus; i++) Wake(*all[i]);
  waker.join();
  if (!woke_all) {
    // Let every thread finish: the blockers may not all have run.
    for (auto& j : all) Wake(*j);
  }
  for (auto& j : all) j->thread.join();
  if (!woke_all) {
    absl::PrintF("deadline_jobs: the jobs were not woken (a blocker never ran, or a wake failed)\n");
    return 1;
  }
  std::vector<int> order(njobs);  // deadline ranks, by first run
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return all[ncpus + a]->started_ns.load() < all[ncpus + b]->started_ns.load();
  });
  // Job b ran before job a, whose deadline is a wave earlier, although a
  // had been waiting for kSeenNs when b started: the agent chose b over a.
  // (A job that starts while the others are not woken yet, on a CPU a
  // higher class handed back from a blocker it displaced, is EDF's choice.)
  constexpr int64_t kSeenNs = 10'000'000;
  int inversions = 0;
  for (int a = 0; a < njobs; a++) {
    for (int b = a + ncpus; b < njobs; b++) {
      const int64_t sa = all[ncpus + a]->started_ns.load(), sb = all[ncpus + b]->started_ns.load();
      if (sb < sa && all[ncpus + a]->woken_ns.load() + kSeenNs <= sb) inversions++;
    }
  }
  absl::PrintF("deadline_jobs: order=%s inversions=%d (pairs a whole wave apart)\n",
               absl::StrJoin(order, ","), inversions);
  for (auto& j : all) close(j->efd);
  fflush(stdout);
  return 0;
}
