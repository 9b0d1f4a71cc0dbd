// lc_batch: a latency-critical application and a batch one sharing CPUs, for
// shinjuku's Shenango-style sharing (--batch-below). Started outside the
// class; the scenario starts ghost-agent with this program's hint table and
// moves it into the class (ghost-run --pid), then lets it go on:
//
//   1. creates the table, gives this (main) thread class 9 (it sleeps, and
//      must wake to measure), writes the table's path to --path-file;
//   2. waits for --go-file; requires that it runs as SCHED_EXT by then;
//   3. starts --lc latency-critical workers of class 1 (entries made before
//      they run): each wakes every --period-us on an absolute timer, works
//      --work-us, and records how late it woke;
//   4. measures the workers alone over --phase-ms, then starts --batch
//      always-runnable threads with no entry (class 0: the batch application)
//      and measures everything again over --phase-ms.
// Prints, one line each:
//   lc_batch: alone: p99_late=X us max_late=X us wakeups=N lc_cpu=X ms
//   lc_batch: shared: p99_late=X us max_late=X us wakeups=N lc_cpu=X ms batch_cpu=X ms
//             (of the idle capacity: S)
// where the idle capacity is --cpus x --phase-ms less the workers' CPU time.
// Exit 0 when it got that far (the scenario judges the numbers); 1 otherwise;
// 2 for bad flags.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/hints/hint_table.h"

ABSL_FLAG(std::string, path_file, "", "Where to write the hint table's path (required).");
ABSL_FLAG(std::string, go_file, "", "Go on once this file exists (required).");
ABSL_FLAG(int, lc, 3, "Latency-critical workers (class 1).");
ABSL_FLAG(int, batch, 6, "Batch threads (no entry).");
ABSL_FLAG(int, cpus, 3, "CPUs the enclave runs these threads on (for the idle capacity).");
ABSL_FLAG(int, period_us, 4000, "A worker wakes this often...");
ABSL_FLAG(int, work_us, 400, "... and works this long.");
ABSL_FLAG(int, phase_ms, 1500, "Each measurement's length.");

namespace {

constexpr uint32_t kMainQos = 9, kLcQos = 1;

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Threads wait here until their entries exist (a thread queued before its
// entry waits in class 0: docs/HINTS.md).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void Wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return open; });
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu);
    open = true;
    cv.notify_all();
  }
};

struct Worker {
  std::thread thread;
  std::atomic<clockid_t> clock{0};
  std::atomic<int> tid{0};
  std::mutex mu;
  std::vector<int64_t> late_ns[3];  // by phase (1: alone, 2: shared)
};

double CpuMs(clockid_t c) {
  timespec ts{};
  if (clock_gettime(c, &ts) != 0) return 0;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: lc_batch --path-file=F --go-file=G [flags]");
  const std::string path_file = absl::GetFlag(FLAGS_path_file);
  const std::string go_file = absl::GetFlag(FLAGS_go_file);
  const int nlc = absl::GetFlag(FLAGS_lc), nbatch = absl::GetFlag(FLAGS_batch);
  const int ncpus = absl::GetFlag(FLAGS_cpus), phase_ms = absl::GetFlag(FLAGS_phase_ms);
  const int64_t period_ns = absl::GetFlag(FLAGS_period_us) * 1000LL;
  const int64_t work_ns = absl::GetFlag(FLAGS_work_us) * 1000LL;
  if (path_file.empty() || go_file.empty() || nlc < 1 || nbatch < 1 || nlc + nbatch > 64 ||
      ncpus < 1 || phase_ms < 100 || work_ns <= 0 || period_ns <= work_ns) {
    absl::FPrintF(stderr,
                  "lc_batch: --path-file and --go-file are required; 1..64 threads, --cpus >= 1, "
                  "--phase-ms >= 100, 0 < --work-us < --period-us\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ghost::HintWriter>> table = ghost::HintWriter::Create({});
  if (!table.ok()) {
    absl::PrintF("lc_batch: %s\n", table.status().message());
    return 1;
  }
  auto add = [&](pid_t tid, uint32_t qos) {
    absl::Status s = (*table)->Add(tid, {.qos = qos}).status();
    if (!s.ok()) absl::PrintF("lc_batch: %s\n", s.message());
    return s.ok();
  };
  if (!add(Gettid(), kMainQos)) return 1;
  {
    std::ofstream f(path_file);
    f << (*table)->path() << "\n";
  }
  for (int i = 0; access(go_file.c_str(), F_OK) != 0; i++) {
    if (i > 6000) {
      absl::PrintF("lc_batch: %s did not appear within 60 s\n", go_file);
      return 1;
    }
    usleep(10'000);
  }
  if (sched_getscheduler(0) != ghost::kSchedExt) {
    absl::PrintF("lc_batch: not a SCHED_EXT thread after %s (policy %d)\n", go_file,
                 sched_getscheduler(0));
    return 1;
  }

  std::atomic<int> phase{0};  // 0: warming up, 1: alone, 2: shared, 3: stop
  Gate lc_gate, batch_gate;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < nlc; i++) {
    workers.push_back(std::make_unique<Worker>());
    Worker* w = workers.back().get();
    w->thread = std::thread([w, &lc_gate, &phase, period_ns, work_ns] {
      clockid_t c;
      pthread_getcpuclockid(pthread_self(), &c);
      w->clock = c;
      w->tid = Gettid();
      lc_gate.Wait();
      int64_t next = NowNs();
      while (phase.load() != 3) {
        next += period_ns;
        const timespec at = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
        const int64_t woke = NowNs();
        if (const int p = phase.load(); p == 1 || p == 2) {
          std::lock_guard<std::mutex> l(w->mu);
          w->late_ns[p].push_back(woke - next);
        }
        while (NowNs() - woke < work_ns) {
        }
        if (NowNs() > next + period_ns) next = NowNs();  // no backlog of missed periods
      }
    });
    while (w->tid.load() == 0) usleep(1000);
    if (!add(w->tid, kLcQos)) return 1;
  }
  std::atomic<bool> batch_stop{false};
  std::vector<std::thread> batch;
  std::vector<std::atomic<clockid_t>> batch_clocks(nbatch);
  for (int i = 0; i < nbatch; i++) {
    batch_clocks[i] = 0;
    batch.emplace_back([&, i] {
      clockid_t c;
      pthread_getcpuclockid(pthread_self(), &c);
      batch_clocks[i] = c;
      batch_gate.Wait();
      volatile uint64_t n = 0;
      while (!batch_stop.load(std::memory_order_relaxed)) n = n + 1;
    });
  }
  for (auto& c : batch_clocks) {
    while (c.load() == 0) usleep(1000);
  }
  auto lc_cpu = [&] {
    double s = 0;
    for (auto& w : workers) s += CpuMs(w->clock);
    return s;
  };
  auto batch_cpu = [&] {
    double s = 0;
    for (auto& c : batch_clocks) s += CpuMs(c);
    return s;
  };
  auto report = [&](int p, const char* name, double lc_ms) {
    std::vector<int64_t> late;
    for (auto& w : workers) {
      std::lock_guard<std::mutex> l(w->mu);
      late.insert(late.end(), w->late_ns[p].begin(), w->late_ns[p].end());
    }
    std::sort(late.begin(), late.end());
    const int64_t p99 = late.empty() ? -1 : late[std::min(late.size() - 1, late.size() * 99 / 100)];
    const int64_t max = late.empty() ? -1 : late.back();
    absl::PrintF("lc_batch: %s: p99_late=%d us max_late=%d us wakeups=%d lc_cpu=%.0f ms", name,
                 p99 / 1000, max / 1000, late.size(), lc_ms);
  };

  lc_gate.Open();
  usleep(200'000);
  phase = 1;
  double lc0 = lc_cpu();
  usleep(phase_ms * 1000);
  const double lc_alone = lc_cpu() - lc0;
  phase = 0;
  batch_gate.Open();
  usleep(200'000);
  lc0 = lc_cpu();
  const double b0 = batch_cpu();
  phase = 2;
  usleep(phase_ms * 1000);
  const double lc_shared = lc_cpu() - lc0, b = batch_cpu() - b0;
  phase = 3;
  batch_stop = true;
  for (auto& t : batch) t.join();
  for (auto& w : workers) w->thread.join();
  report(1, "alone", lc_alone);
  absl::PrintF("\n");
  const double idle = std::max(1.0, static_cast<double>(ncpus) * phase_ms - lc_shared);
  report(2, "shared", lc_shared);
  absl::PrintF(" batch_cpu=%.0f ms (of the idle capacity: %.3f)\n", b, b / idle);
  fflush(stdout);
  return 0;
}
