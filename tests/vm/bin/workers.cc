// workers: N threads that each switch themselves to SCHED_EXT and then alternate
// compute bursts and sleeps. Exits 0 only if every thread ran every burst as a
// SCHED_EXT thread; prints one line per problem otherwise.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/workloads/bench_threads.h"

ABSL_FLAG(int, threads, 8, "Worker threads.");
ABSL_FLAG(int, bursts, 100, "Compute bursts per thread.");
ABSL_FLAG(int, burst_us, 1000, "Length of one compute burst (CPU time, microseconds).");
ABSL_FLAG(int, sleep_us, 500, "Sleep between bursts (microseconds).");
ABSL_FLAG(bool, sched_ext, true, "Switch each thread to SCHED_EXT (policy 7) first.");
ABSL_FLAG(std::string, until_file, "",
          "After its --bursts, each thread keeps running bursts until this file exists (a "
          "workload that must outlast a step of the scenario, however slow the host).");
ABSL_FLAG(bool, count_moves, false,
          "Also print how often a thread woke on another CPU than the one it slept on "
          "(\"workers: wakeups=N moved=M\").");
ABSL_FLAG(bool, expect_class, false,
          "Require that a sched_ext class runs each thread (ext.enabled in /proc/thread-self/sched) "
          "after its first burst.");

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: workers [flags]");
  const int n = absl::GetFlag(FLAGS_threads), bursts = absl::GetFlag(FLAGS_bursts);
  const int burst_us = absl::GetFlag(FLAGS_burst_us), sleep_us = absl::GetFlag(FLAGS_sleep_us);
  const bool ext = absl::GetFlag(FLAGS_sched_ext);
  const bool expect_class = absl::GetFlag(FLAGS_expect_class);
  const std::string until_file = absl::GetFlag(FLAGS_until_file);
  if (n < 1 || n > 4096 || bursts < 0 || burst_us < 0 || sleep_us < 0) {
    absl::FPrintF(stderr, "workers: bad flags (threads 1..4096, others >= 0)\n");
    return 2;
  }
  const bool count_moves = absl::GetFlag(FLAGS_count_moves);
  std::atomic<int> finished{0}, problems{0};
  std::atomic<uint64_t> wakeups{0}, moved{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < n; i++) {
    threads.emplace_back([&, i] {
      if (ext) {
        if (absl::Status s = ghost::SwitchToSchedExt(); !s.ok()) {
          absl::PrintF("workers: thread %d: %s\n", i, s.message());
          problems++;
          return;
        }
      }
      for (int b = 0; b < bursts || (!until_file.empty() && access(until_file.c_str(), F_OK) != 0);
           b++) {
        ghost::ComputeFor(burst_us * 1000LL);
        const int before = sched_getcpu();
        if (sleep_us > 0) usleep(sleep_us);
        if (count_moves) {
          wakeups++;
          if (sched_getcpu() != before) moved++;
        }
        if (b == 0 && expect_class && ghost::RunBySchedExtClass() != 1) {
          absl::PrintF("workers: thread %d: not run by a sched_ext class (ext.enabled=%d)\n", i,
                       ghost::RunBySchedExtClass());
          problems++;
        }
      }
      if (ext && sched_getscheduler(0) != ghost::kSchedExt) {
        absl::PrintF("workers: thread %d: policy changed to %d\n", i, sched_getscheduler(0));
        problems++;
      }
      finished++;
    });
  }
  for (auto& t : threads) t.join();
  if (count_moves) absl::PrintF("workers: wakeups=%d moved=%d\n", wakeups.load(), moved.load());
  absl::PrintF("workers: %d of %d threads finished, %d problems\n", finished.load(), n,
               problems.load());
  return finished == n && problems == 0 ? 0 : 1;
}
