// qos_hogs: CPU hogs of two QoS classes in a hint table (docs/HINTS.md), for
// the shinjuku policy. Started outside the class; the scenario starts
// ghost-agent with the table and moves this process into the class
// (ghost-run --pid), then lets it go on:
//
//   1. creates the table, gives this (main) thread class 9 (it sleeps, and
//      must wake to measure), writes the table's path to --path-file;
//   2. waits for --go-file; requires that it runs as SCHED_EXT by then;
//   3. makes the hogs' entries (--low of class 1, one with none: class 0,
//      --high of class 5) while they wait, lets the low and the unhinted
//      ones go, then, 0.2 s later, the high ones;
//   4. measures each hog's CPU time over --measure-ms while all run, stops
//      the high hogs, and measures again over --after-ms.
// Prints the CPU time of each group in both phases, in one line each:
//   qos_hogs: during: high=N low=N none=N ms (share of the low and none: X)
//   qos_hogs: after: low=N none=N ms (least of one low hog: N ms)
// Exit 0 when it got that far (the scenario judges the numbers); 1 otherwise.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <condition_variable>
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
ABSL_FLAG(int, low, 3, "Hogs of class 1.");
ABSL_FLAG(int, high, 4, "Hogs of class 5.");
ABSL_FLAG(int, measure_ms, 1000, "CPU time measured over this long while all hogs run.");
ABSL_FLAG(int, after_ms, 500, "... and over this long after the high hogs stopped.");

namespace {

constexpr uint32_t kMainQos = 9, kHighQos = 5, kLowQos = 1;

pid_t Gettid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

struct Hog {
  std::thread thread;
  std::atomic<clockid_t> clock{0};
  std::atomic<bool> stop{false};
  std::atomic<int> tid{0};
};

// CPU time of the hog's thread, in ms.
double CpuMs(const Hog& h) {
  timespec ts{};
  if (clock_gettime(h.clock.load(), &ts) != 0) return 0;
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double Sum(const std::vector<std::unique_ptr<Hog>>& hogs, size_t from, size_t to,
           const std::vector<double>& base) {
  double s = 0;
  for (size_t i = from; i < to; i++) s += CpuMs(*hogs[i]) - base[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: qos_hogs --path-file=F --go-file=G [flags]");
  const std::string path_file = absl::GetFlag(FLAGS_path_file);
  const std::string go_file = absl::GetFlag(FLAGS_go_file);
  const int nlow = absl::GetFlag(FLAGS_low), nhigh = absl::GetFlag(FLAGS_high);
  if (path_file.empty() || go_file.empty() || nlow < 1 || nhigh < 1 || nlow + nhigh > 64) {
    absl::FPrintF(stderr, "qos_hogs: --path-file and --go-file are required; 1..64 hogs\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ghost::HintWriter>> table = ghost::HintWriter::Create({});
  if (!table.ok()) {
    absl::PrintF("qos_hogs: %s\n", table.status().message());
    return 1;
  }
  auto add = [&](pid_t tid, uint32_t qos) {
    absl::Status s = (*table)->Add(tid, {.qos = qos}).status();
    if (!s.ok()) absl::PrintF("qos_hogs: %s\n", s.message());
  };
  add(Gettid(), kMainQos);
  {
    std::ofstream f(path_file);
    f << (*table)->path() << "\n";
  }
  for (int i = 0; access(go_file.c_str(), F_OK) != 0; i++) {
    if (i > 6000) {
      absl::PrintF("qos_hogs: %s did not appear within 60 s\n", go_file);
      return 1;
    }
    usleep(10'000);
  }
  if (sched_getscheduler(0) != ghost::kSchedExt) {
    absl::PrintF("qos_hogs: not a SCHED_EXT thread after %s (policy %d)\n", go_file,
                 sched_getscheduler(0));
    return 1;
  }

  // hogs[0, nlow): class 1; hogs[nlow]: no entry; the rest: class 5. Each
  // starts, says its tid and blocks at its group's gate; its entry is made
  // before the gate opens, so the wake-up queues it in its class. (A thread
  // that made its own entry after it became runnable would wait in class 0,
  // behind every hog, to make it.)
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
  } low_gate, high_gate;
  std::vector<std::unique_ptr<Hog>> hogs;
  auto start = [&](Gate& gate) {
    hogs.push_back(std::make_unique<Hog>());
    Hog* h = hogs.back().get();
    h->thread = std::thread([h, &gate] {
      clockid_t c;
      pthread_getcpuclockid(pthread_self(), &c);
      h->clock = c;
      h->tid = Gettid();
      gate.Wait();
      volatile uint64_t n = 0;
      while (!h->stop.load(std::memory_order_relaxed)) n = n + 1;
    });
    while (h->tid.load() == 0) usleep(1000);
    return h;
  };
  for (int i = 0; i < nlow; i++) add(start(low_gate)->tid, kLowQos);
  start(low_gate);  // no entry
  for (int i = 0; i < nhigh; i++) add(start(high_gate)->tid, kHighQos);
  low_gate.Open();
  usleep(200'000);
  high_gate.Open();
  const size_t lo_end = nlow, none_end = nlow + 1, hi_end = hogs.size();

  std::vector<double> base(hogs.size());
  for (size_t i = 0; i < hogs.size(); i++) base[i] = CpuMs(*hogs[i]);
  usleep(absl::GetFlag(FLAGS_measure_ms) * 1000);
  const double high = Sum(hogs, none_end, hi_end, base);
  const double low = Sum(hogs, 0, lo_end, base), none = Sum(hogs, lo_end, none_end, base);
  for (size_t i = none_end; i < hi_end; i++) hogs[i]->stop = true;
  for (size_t i = none_end; i < hi_end; i++) hogs[i]->thread.join();
  absl::PrintF("qos_hogs: during: high=%.0f low=%.0f none=%.0f ms (share of the low and none: "
               "%.3f)\n",
               high, low, none, (low + none) / std::max(high + low + none, 1.0));

  for (size_t i = 0; i < none_end; i++) base[i] = CpuMs(*hogs[i]);
  usleep(absl::GetFlag(FLAGS_after_ms) * 1000);
  double least = -1;  // of the class-1 hogs (the unhinted one waits for them)
  for (size_t i = 0; i < lo_end; i++) {
    const double d = CpuMs(*hogs[i]) - base[i];
    if (least < 0 || d < least) least = d;
  }
  const double low_after = Sum(hogs, 0, lo_end, base), none_after = Sum(hogs, lo_end, none_end, base);
  for (size_t i = 0; i < none_end; i++) hogs[i]->stop = true;
  for (size_t i = 0; i < none_end; i++) hogs[i]->thread.join();
  absl::PrintF("qos_hogs: after: low=%.0f none=%.0f ms (least of one low hog: %.0f ms)\n", low_after,
               none_after, least);
  fflush(stdout);
  return 0;
}
