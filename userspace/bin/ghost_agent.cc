// ghost-agent: loads the ghost sched_ext class, runs until SIGINT/SIGTERM,
// then detaches it. If the kernel ends the class first, prints the kernel's
// reason and exits 1. Exit 2: this host cannot run it, or bad flags.
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "userspace/ghost_skel.h"
#include "userspace/bpf_class.h"
#include "userspace/flags.h"

ABSL_FLAG(int64_t, slice_us, 5000, "Time slice of a ghost thread, in microseconds.");
ABSL_FLAG(int64_t, kernel_timeout_ms, 5000,
          "sched_ext's own stall watchdog (100..30000 ms): the kernel ejects the class if a "
          "runnable thread waits longer.");
ABSL_FLAG(bool, stats, false, "Print the class's counters when the agent exits.");

namespace {

int Fail(int code, const std::string& msg) {
  absl::FPrintF(stderr, "ghost-agent: %s\n", msg);
  return code;
}

void PrintStats(struct ghost_bpf* skel) {
  absl::PrintF("ghost-agent: stats: enqueued=%d dispatched=%d direct=%d\n",
               skel->bss->nr_enqueued, skel->bss->nr_dispatched, skel->bss->nr_direct);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> rest = ghost::ParseFlagsOrExit(
      argc, argv, "usage: ghost-agent [flags]\nRuns the ghost sched_ext class until SIGINT/SIGTERM.");
  if (!rest.empty()) return Fail(2, absl::StrFormat("unexpected argument '%s'", rest[0]));
  int64_t slice_us = absl::GetFlag(FLAGS_slice_us);
  int64_t timeout_ms = absl::GetFlag(FLAGS_kernel_timeout_ms);
  if (slice_us <= 0 || slice_us > 1000000) {
    return Fail(2, absl::StrFormat("--slice-us=%d is out of range (1..1000000)", slice_us));
  }
  if (timeout_ms < 100 || timeout_ms > 30000) {
    return Fail(2, absl::StrFormat("--kernel-timeout-ms=%d is out of range (100..30000)", timeout_ms));
  }
  if (absl::Status s = ghost::CheckSchedExtHost(); !s.ok()) return Fail(2, std::string(s.message()));

  // Signals are taken synchronously so shutdown is an ordinary code path.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);

  absl::StatusOr<std::unique_ptr<ghost::BpfClass>> cls = ghost::BpfClass::Load({
      .slice = absl::Microseconds(slice_us),
      .kernel_timeout = absl::Milliseconds(timeout_ms),
  });
  if (!cls.ok()) return Fail(1, std::string(cls.status().message()));
  if (absl::Status s = (*cls)->Attach(); !s.ok()) return Fail(1, std::string(s.message()));
  absl::PrintF("ghost-agent: class 'ghost' attached (slice %dus)\n", slice_us);
  fflush(stdout);

  int code = 0;
  for (;;) {
    struct timespec poll = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    int sig = sigtimedwait(&sigs, nullptr, &poll);
    if (absl::Status h = (*cls)->Health(); !h.ok()) {
      code = Fail(1, std::string(h.message()));
      break;
    }
    if (sig == SIGINT || sig == SIGTERM) {
      absl::PrintF("ghost-agent: %s: detaching\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
  }
  if (absl::GetFlag(FLAGS_stats)) PrintStats((*cls)->skel());
  (*cls)->Detach();
  return code;
}
