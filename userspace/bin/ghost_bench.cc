// ghost-bench: real threads on the real kernel, measured. The same binary
// measures the ghost class (threads switch themselves to SCHED_EXT, the
// default) and the kernel's own scheduler (--nosched-ext). With --enclave=N
// the measured threads join enclave N of the running ghost-agent (as with
// ghost-run), so its policy schedules them; without it they run in the
// class's own FIFO, which no agent sees.
// Exit 0: every workload ran to completion (every thread finished, nothing
// lost); 1: something did not; 2: bad flags or this kernel cannot run it.
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/workloads/antagonist.h"
#include "userspace/workloads/bench_report.h"
#include "userspace/workloads/bench_threads.h"
#include "userspace/workloads/dispersive.h"
#include "userspace/workloads/mixed.h"
#include "userspace/workloads/pingpong.h"
#include "userspace/workloads/workload.h"

ABSL_FLAG(std::string, workload, "mixed",
          "Workloads to run, comma-separated: mixed, dispersive, antagonist, pingpong.");
ABSL_FLAG(bool, sched_ext, true, "Measured threads switch themselves to SCHED_EXT (policy 7).");
ABSL_FLAG(int, enclave, -1,
          "Measured threads join this enclave of the running ghost-agent (its policy schedules "
          "them, as under ghost-run); -1: none, they run in the class's FIFO.");
ABSL_FLAG(std::string, pin_dir, ghost::kDefaultPinDir,
          "Where the running ghost-agent pinned the class (with --enclave).");
ABSL_FLAG(bool, expect_class, false,
          "Fail unless a sched_ext class really ran every measured thread (ext.enabled in "
          "/proc/thread-self/sched).");
ABSL_FLAG(std::string, label, "",
          "Scheduler label in the report (default: 'ghost' with --sched-ext, else 'default').");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "How long each workload runs (pingpong runs all --rounds; for it --duration + "
          "--grace is only the time limit).");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(10),
          "After --duration, how long to wait for threads to finish before failing.");
ABSL_FLAG(std::string, format, "table", "Output: table, csv or json (one line per workload).");
ABSL_FLAG(uint64_t, seed, 1, "Random seed for arrivals and burst lengths.");
// mixed, antagonist
ABSL_FLAG(int, threads, 64, "mixed: worker threads; antagonist: spinning threads.");
// mixed
ABSL_FLAG(double, load, 0.7, "mixed: fraction of the CPUs the bursts keep busy.");
ABSL_FLAG(absl::Duration, short_burst, absl::Microseconds(50), "mixed: short burst (CPU time).");
ABSL_FLAG(absl::Duration, long_burst, absl::Milliseconds(5), "mixed: long burst (CPU time).");
ABSL_FLAG(double, long_fraction, 0.1, "mixed: probability that a burst is long.");
ABSL_FLAG(int, wakers, 1, "mixed: waker threads (default class) issuing the wake-ups.");
// dispersive
ABSL_FLAG(int, workers, 200, "dispersive: worker threads serving requests.");
ABSL_FLAG(double, rps, 10000, "dispersive: offered load, requests per second (Poisson).");
ABSL_FLAG(absl::Duration, short_request, absl::Microseconds(4), "dispersive: short request.");
ABSL_FLAG(absl::Duration, long_request, absl::Milliseconds(10), "dispersive: long request.");
ABSL_FLAG(double, long_request_fraction, 0.005, "dispersive: fraction of long requests.");
ABSL_FLAG(int, queue_capacity, 1 << 16,
          "dispersive: requests that may wait for a worker; more are dropped (a failure).");
// pingpong
ABSL_FLAG(int, pairs, 1, "pingpong: thread pairs.");
ABSL_FLAG(int64_t, rounds, 10000, "pingpong: round trips per pair.");

namespace {

[[noreturn]] void Usage(const std::string& msg) {
  absl::FPrintF(stderr, "ghost-bench: %s\n", msg);
  exit(2);
}

void Check(const absl::Status& s) {
  if (!s.ok()) Usage(std::string(s.message()));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> rest = ghost::ParseFlagsOrExit(
      argc, argv,
      "usage: ghost-bench [--workload=mixed|dispersive|antagonist|pingpong[,...]] [flags]\n"
      "Runs real threads under the ghost class (or --nosched-ext: the kernel's scheduler) and\n"
      "reports latency percentiles. Exit 0 only if every thread finished and nothing was lost.");
  if (!rest.empty()) Usage(absl::StrFormat("unexpected argument '%s'", rest[0]));

  ghost::RunOptions run{.sched_ext = absl::GetFlag(FLAGS_sched_ext),
                        .expect_class = absl::GetFlag(FLAGS_expect_class),
                        .label = absl::GetFlag(FLAGS_label),
                        .duration = absl::GetFlag(FLAGS_duration),
                        .grace = absl::GetFlag(FLAGS_grace)};
  if (run.label.empty()) run.label = run.sched_ext ? "ghost" : "default";
  Check(ghost::ValidateRunOptions(run));
  absl::StatusOr<ghost::ReportFormat> format =
      ghost::ParseReportFormat(absl::GetFlag(FLAGS_format));
  Check(format.status());

  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  ghost::MixedOptions mixed{.threads = absl::GetFlag(FLAGS_threads),
                            .load = absl::GetFlag(FLAGS_load),
                            .short_burst = absl::GetFlag(FLAGS_short_burst),
                            .long_burst = absl::GetFlag(FLAGS_long_burst),
                            .long_fraction = absl::GetFlag(FLAGS_long_fraction),
                            .wakers = absl::GetFlag(FLAGS_wakers),
                            .seed = seed};
  ghost::DispersiveOptions dispersive{
      .workers = absl::GetFlag(FLAGS_workers),
      .rps = absl::GetFlag(FLAGS_rps),
      .short_request = absl::GetFlag(FLAGS_short_request),
      .long_request = absl::GetFlag(FLAGS_long_request),
      .long_fraction = absl::GetFlag(FLAGS_long_request_fraction),
      .queue_capacity = absl::GetFlag(FLAGS_queue_capacity),
      .seed = seed};
  ghost::AntagonistOptions antagonist{.threads = absl::GetFlag(FLAGS_threads)};
  ghost::PingpongOptions pingpong{.pairs = absl::GetFlag(FLAGS_pairs),
                                  .rounds = absl::GetFlag(FLAGS_rounds)};
  // Every flag is checked, used by this run or not: a typo'd value never hides.
  Check(ghost::ValidateMixedOptions(mixed));
  Check(ghost::ValidateDispersiveOptions(dispersive));
  Check(ghost::ValidateAntagonistOptions(antagonist));
  Check(ghost::ValidatePingpongOptions(pingpong));

  std::vector<std::string> names = absl::StrSplit(absl::GetFlag(FLAGS_workload), ',');
  for (const std::string& n : names) {
    if (n != "mixed" && n != "dispersive" && n != "antagonist" && n != "pingpong") {
      Usage(absl::StrFormat("unknown workload '%s' (mixed, dispersive, antagonist, pingpong)", n));
    }
  }
  // The enclave last among the checks: it needs a running class.
  const int enclave = absl::GetFlag(FLAGS_enclave);
  std::optional<ghost::Enrollment> enrollment;
  if (enclave != -1) {
    if (enclave < 0 || enclave >= GHOST_MAX_ENCLAVES) {
      Usage(absl::StrFormat("--enclave=%d is out of range (0..%d, or -1: none)", enclave,
                            GHOST_MAX_ENCLAVES - 1));
    }
    if (!run.sched_ext) Usage("--enclave needs --sched-ext (threads join an enclave as SCHED_EXT)");
    const std::string pin_dir = absl::GetFlag(FLAGS_pin_dir);
    absl::StatusOr<ghost::Enrollment> e = ghost::Enrollment::Open(pin_dir);
    Check(e.status());
    Check(ghost::CheckEnclaveInUse(pin_dir, static_cast<ghost::EnclaveId>(enclave)));
    enrollment.emplace(std::move(*e));
    run.enroll = [&enrollment, enclave](pid_t tid) {
      return enrollment->Enroll(tid, static_cast<ghost::EnclaveId>(enclave));
    };
  }
  if (run.sched_ext) Check(ghost::CheckSchedExtSupported(run.enroll));

  std::vector<ghost::BenchResult> results;
  for (const std::string& n : names) {
    if (n == "mixed") results.push_back(ghost::RunMixed(mixed, run));
    if (n == "dispersive") results.push_back(ghost::RunDispersive(dispersive, run));
    if (n == "antagonist") results.push_back(ghost::RunAntagonist(antagonist, run));
    if (n == "pingpong") results.push_back(ghost::RunPingpong(pingpong, run));
  }
  absl::PrintF("%s", ghost::FormatResults(results, *format));

  bool ok = true, abandoned = false;
  for (const ghost::BenchResult& r : results) {
    if (r.ok()) continue;
    ok = false;
    abandoned |= r.unfinished_threads > 0;
    if (!r.error.empty()) absl::FPrintF(stderr, "ghost-bench: %s: %s\n", r.workload, r.error);
    if (r.unfinished_threads > 0) {
      absl::FPrintF(stderr,
                    "ghost-bench: %s: %d of %d threads did not finish within --duration + --grace "
                    "(%s)\n",
                    r.workload, r.unfinished_threads, r.threads,
                    absl::FormatDuration(run.duration + run.grace));
    }
    if (r.lost > 0) {
      absl::FPrintF(stderr, "ghost-bench: %s: %d units of work (wake-ups, requests, round trips) were never done\n",
                    r.workload, r.lost);
    }
  }
  fflush(stdout);
  fflush(stderr);
  // Threads that never finished are still out there; don't run destructors under them.
  if (abandoned) _exit(1);
  return ok ? 0 : 1;
}
