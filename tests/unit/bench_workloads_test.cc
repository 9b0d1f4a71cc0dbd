// ghost-bench's workloads on this host's own scheduler (no sched_ext here):
// they must run to completion with consistent accounting, fail when work is
// lost, and a thread that never finishes must be reported, not waited for.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "userspace/workloads/antagonist.h"
#include "userspace/workloads/bench_threads.h"
#include "userspace/workloads/dispersive.h"
#include "userspace/workloads/mixed.h"
#include "userspace/workloads/pingpong.h"
#include "userspace/workloads/workload.h"

namespace ghost {
namespace {

RunOptions Host(absl::Duration d = absl::Milliseconds(300)) {
  return {.sched_ext = false, .label = "default", .duration = d, .grace = absl::Seconds(20)};
}

double Extra(const BenchResult& r, const std::string& name) {
  for (const auto& [k, v] : r.extras) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no extra " << name;
  return NAN;
}

TEST(BenchValidationTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateRunOptions(RunOptions{}).ok());
  EXPECT_TRUE(ValidateMixedOptions(MixedOptions{}).ok());
  EXPECT_TRUE(ValidateDispersiveOptions(DispersiveOptions{}).ok());
  EXPECT_TRUE(ValidateAntagonistOptions(AntagonistOptions{}).ok());
  EXPECT_TRUE(ValidatePingpongOptions(PingpongOptions{}).ok());
}

TEST(BenchValidationTest, RejectsBadNumbers) {
  EXPECT_FALSE(ValidateRunOptions({.duration = absl::ZeroDuration()}).ok());
  EXPECT_FALSE(ValidateRunOptions({.duration = -absl::Seconds(1)}).ok());
  EXPECT_FALSE(ValidateRunOptions({.duration = absl::InfiniteDuration()}).ok());
  EXPECT_FALSE(ValidateRunOptions({.grace = -absl::Seconds(1)}).ok());
  EXPECT_FALSE(ValidateRunOptions({.label = ""}).ok());
  EXPECT_FALSE(ValidateRunOptions({.label = "a,b"}).ok());
  EXPECT_FALSE(ValidateRunOptions({.label = std::string(33, 'x')}).ok());
  EXPECT_TRUE(ValidateRunOptions({.label = "ghost-fifo_2.0"}).ok());

  EXPECT_FALSE(ValidateMixedOptions({.threads = 0}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.threads = -1}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.threads = 1000000}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.load = 0}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.load = NAN}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.load = 1000}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.short_burst = absl::ZeroDuration()}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.long_burst = absl::Hours(1)}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.long_fraction = 1.5}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.threads = 4, .wakers = 5}).ok());
  EXPECT_FALSE(ValidateMixedOptions({.wakers = 0}).ok());
  // 1 ns bursts at full load would need billions of wake-ups per second.
  EXPECT_FALSE(ValidateMixedOptions({.load = 1, .cpus = 4, .short_burst = absl::Nanoseconds(1),
                                     .long_fraction = 0})
                   .ok());

  EXPECT_FALSE(ValidateDispersiveOptions({.workers = 0}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.rps = 0}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.rps = -5}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.rps = 1e12}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.short_request = -absl::Microseconds(4)}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.long_fraction = -0.1}).ok());
  EXPECT_FALSE(ValidateDispersiveOptions({.queue_capacity = 0}).ok());

  EXPECT_FALSE(ValidateAntagonistOptions({.threads = 0}).ok());
  EXPECT_FALSE(ValidatePingpongOptions({.pairs = 0}).ok());
  EXPECT_FALSE(ValidatePingpongOptions({.rounds = 0}).ok());
  EXPECT_FALSE(ValidatePingpongOptions({.rounds = -10}).ok());
}

TEST(BenchValidationTest, ErrorsAreOneLineNamingTheFlag) {
  absl::Status s = ValidateMixedOptions({.threads = 0});
  EXPECT_EQ(s.message(), "--threads=0 is out of range (1..4096)");
  s = ValidateDispersiveOptions({.rps = -1});
  EXPECT_EQ(s.message().find('\n'), absl::string_view::npos);
  EXPECT_NE(s.message().find("--rps"), absl::string_view::npos);
}

TEST(BenchMixedTest, WakeRateKeepsLoadBusy) {
  // 0.9 * 50 us + 0.1 * 5 ms = 545 us per burst; 0.7 * 4 CPUs / 545 us.
  EXPECT_NEAR(MixedWakeRate(MixedOptions{}, 4), 0.7 * 4 / 545e-6, 1e-6);
  EXPECT_NEAR(MixedWakeRate({.load = 1, .long_fraction = 0}, 2), 2 / 50e-6, 1e-6);
}

TEST(BenchMixedTest, RunsToCompletionOnHost) {
  BenchResult r = RunMixed({.threads = 8, .load = 0.3, .long_burst = absl::Milliseconds(1),
                            .wakers = 2},
                           Host());
  EXPECT_TRUE(r.ok()) << r.error << " unfinished=" << r.unfinished_threads << " lost=" << r.lost;
  EXPECT_EQ(r.workload, "mixed");
  EXPECT_EQ(r.threads, 8);
  EXPECT_GT(r.completions, 0);
  EXPECT_EQ(r.completions, static_cast<int64_t>(Extra(r, "wakeups")));
  EXPECT_EQ(r.latency.Count(), r.completions);  // one wake-up sample per burst
  EXPECT_GT(r.throughput, 0);
  EXPECT_LE(Extra(r, "long_bursts"), r.completions);
}

TEST(BenchDispersiveTest, ServesEveryRequestOnHost) {
  BenchResult r = RunDispersive({.workers = 16, .rps = 2000, .long_request = absl::Milliseconds(1),
                                 .long_fraction = 0.05},
                                Host());
  EXPECT_TRUE(r.ok()) << r.error << " unfinished=" << r.unfinished_threads << " lost=" << r.lost;
  EXPECT_GT(r.completions, 0);
  EXPECT_EQ(r.completions, static_cast<int64_t>(Extra(r, "arrivals")));
  EXPECT_EQ(r.latency.Count(), r.completions);
  EXPECT_EQ(Extra(r, "dropped"), 0);
  // Latency includes the compute: never below the short request.
  EXPECT_GE(r.latency.Min(), 4000);
}

TEST(BenchDispersiveTest, RequestsStillQueuedAtTheEndAreServed) {
  // One worker offered twice what it can serve: a backlog remains when the
  // generator stops, and every queued request must still complete.
  BenchResult r = RunDispersive({.workers = 1, .rps = 1000, .short_request = absl::Milliseconds(2),
                                 .long_fraction = 0},
                                Host(absl::Milliseconds(200)));
  EXPECT_TRUE(r.ok()) << r.error << " unfinished=" << r.unfinished_threads << " lost=" << r.lost;
  EXPECT_GT(Extra(r, "arrivals"), 20);
  EXPECT_EQ(r.completions, static_cast<int64_t>(Extra(r, "arrivals")));
}

TEST(BenchDispersiveTest, DroppedRequestsFailTheRun) {
  // One worker, 1 ms requests at 5000/s, room for one waiting request.
  BenchResult r = RunDispersive({.workers = 1, .rps = 5000, .short_request = absl::Milliseconds(1),
                                 .long_fraction = 0, .queue_capacity = 1},
                                Host(absl::Milliseconds(200)));
  EXPECT_GT(Extra(r, "dropped"), 0);
  EXPECT_EQ(r.lost, static_cast<int64_t>(Extra(r, "dropped")));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.unfinished_threads, 0);
}

TEST(BenchAntagonistTest, EveryThreadGetsMeasuredCpu) {
  BenchResult r = RunAntagonist({.threads = 3}, Host(absl::Milliseconds(200)));
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.completions, 3);
  EXPECT_EQ(r.latency.Count(), 3);
  EXPECT_GT(r.latency.Min(), 0);
  EXPECT_GT(r.throughput, 0);
  EXPECT_LE(Extra(r, "max_share"), 1.05);
}

TEST(BenchAntagonistTest, JainFairness) {
  EXPECT_DOUBLE_EQ(JainFairness({0.5, 0.5, 0.5, 0.5}), 1.0);
  EXPECT_DOUBLE_EQ(JainFairness({1, 0, 0, 0}), 0.25);
  EXPECT_EQ(JainFairness({}), 0);
}

TEST(BenchPingpongTest, EveryRoundTripIsTimed) {
  BenchResult r = RunPingpong({.pairs = 2, .rounds = 500}, Host());
  EXPECT_TRUE(r.ok()) << r.error << " unfinished=" << r.unfinished_threads;
  EXPECT_EQ(r.threads, 4);
  EXPECT_EQ(r.completions, 1000);
  EXPECT_EQ(r.latency.Count(), 1000);
  EXPECT_EQ(r.lost, 0);
}

TEST(ThreadGroupTest, AThreadThatNeverFinishesIsReportedNotAwaited) {
  auto release = std::make_shared<std::atomic<uint32_t>>(0);
  ThreadGroup g(/*sched_ext=*/false);
  g.Add([] {});
  int stuck = g.Add([release] {
    while (release->load() == 0) FutexWait(release.get(), 0);
  });
  ASSERT_TRUE(g.Start(absl::Now() + absl::Seconds(20)).ok());
  absl::Time t0 = absl::Now();
  EXPECT_EQ(g.JoinUntil(absl::Now() + absl::Milliseconds(100)), 1);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  EXPECT_TRUE(g.Finished(0));
  EXPECT_FALSE(g.Finished(stuck));
  release->store(1);
  FutexWake(release.get(), 1);
  EXPECT_EQ(g.JoinUntil(absl::Now() + absl::Seconds(20)), 0);
  EXPECT_TRUE(g.Finished(stuck));
}

TEST(ThreadGroupTest, ExpectClassFailsARunOutsideSchedExt) {
  // This host has no sched_ext, so no thread can have been run by a class.
  if (RunBySchedExtClass() == 1) GTEST_SKIP() << "a sched_ext class runs this thread";
  RunOptions run = Host(absl::Milliseconds(50));
  run.expect_class = true;
  BenchResult r = RunPingpong({.pairs = 1, .rounds = 10}, run);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("not run by a sched_ext class"), std::string::npos) << r.error;
  run.expect_class = false;
  EXPECT_TRUE(RunPingpong({.pairs = 1, .rounds = 10}, run).ok());
}

TEST(ThreadGroupTest, NoBodyRunsIfAThreadCannotSwitchToSchedExt) {
  if (CheckSchedExtSupported().ok()) GTEST_SKIP() << "this kernel has sched_ext";
  auto ran = std::make_shared<std::atomic<int>>(0);
  ThreadGroup g(/*sched_ext=*/true);
  for (int i = 0; i < 4; i++) g.Add([ran] { ran->fetch_add(1); });
  absl::Status s = g.Start(absl::Now() + absl::Seconds(20));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("SCHED_EXT"), absl::string_view::npos) << s;
  EXPECT_EQ(g.JoinUntil(absl::Now() + absl::Seconds(20)), 0);
  EXPECT_EQ(ran->load(), 0);
}

TEST(ThreadGroupTest, EveryThreadEnrollsItselfBeforeItsBody) {
  absl::Mutex mu;
  std::set<pid_t> enrolled;
  auto bodies_saw = std::make_shared<std::atomic<int>>(0);
  ThreadGroup g(/*sched_ext=*/false, /*expect_class=*/false, [&](pid_t tid) {
    absl::MutexLock l(&mu);
    enrolled.insert(tid);
    return absl::OkStatus();
  });
  for (int i = 0; i < 3; i++) {
    g.Add([&, bodies_saw] {
      absl::MutexLock l(&mu);
      if (enrolled.count(static_cast<pid_t>(gettid()))) bodies_saw->fetch_add(1);
    });
  }
  ASSERT_TRUE(g.Start(absl::Now() + absl::Seconds(20)).ok());
  EXPECT_EQ(g.JoinUntil(absl::Now() + absl::Seconds(20)), 0);
  EXPECT_EQ(enrolled.size(), 3u);   // each thread its own tid
  EXPECT_EQ(bodies_saw->load(), 3);  // before its body ran
}

TEST(ThreadGroupTest, NoBodyRunsIfAThreadCannotEnroll) {
  auto ran = std::make_shared<std::atomic<int>>(0);
  ThreadGroup g(/*sched_ext=*/false, /*expect_class=*/false, [](pid_t) {
    return absl::NotFoundError("enclave 3 is not in use");
  });
  for (int i = 0; i < 2; i++) g.Add([ran] { ran->fetch_add(1); });
  absl::Status s = g.Start(absl::Now() + absl::Seconds(20));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("enclave 3 is not in use"), absl::string_view::npos) << s;
  EXPECT_EQ(g.JoinUntil(absl::Now() + absl::Seconds(20)), 0);
  EXPECT_EQ(ran->load(), 0);
}

TEST(ThreadGroupTest, TheSchedExtProbeEnrollsLikeTheMeasuredThreads) {
  std::atomic<int> calls{0};
  pid_t probe = 0;
  absl::Status s = CheckSchedExtSupported([&](pid_t tid) {
    calls++;
    probe = tid;
    return absl::NotFoundError("enclave 3 is not in use");
  });
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(probe, static_cast<pid_t>(gettid()));  // a throwaway thread, not the caller
  EXPECT_NE(s.message().find("enclave 3 is not in use"), absl::string_view::npos) << s;
}

TEST(BenchRunTest, MeasuredThreadsEnrollHelpersDoNot) {
  // mixed: 2 measured workers and 1 waker; only the workers enroll.
  std::atomic<int> calls{0};
  RunOptions run = Host(absl::Milliseconds(50));
  run.enroll = [&calls](pid_t) {
    calls++;
    return absl::OkStatus();
  };
  BenchResult r = RunMixed({.threads = 2, .load = 0.1, .wakers = 1}, run);
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(calls.load(), 2);
}

}  // namespace
}  // namespace ghost
