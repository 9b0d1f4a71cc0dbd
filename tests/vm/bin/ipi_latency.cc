// ipi_latency: how long this guest takes to interrupt a busy CPU from another
// one, under whatever scheduler runs: the floor beneath any preemption one
// CPU asks of another (an agent's preempting commit ends a thread on a remote
// CPU the same way: an inter-processor interrupt, then a reschedule there).
//
// A receiver thread spins on --to, a sender on --from; the sender notes the
// time, signals the receiver (the kernel interrupts the receiver's CPU to
// deliver it), and the receiver's handler notes when it ran. --rounds times,
// --gap-us apart; with --busy-others every other CPU spins meanwhile (under
// single-threaded emulation an idle CPU costs nothing, a busy one a share of
// the host thread). Prints one line:
//   ipi_latency: from=F to=T rounds=N mean=X us p50=X us p90=X us max=X us
// Exit 0 on success; 1 if a thread could not be pinned or a signal was lost
// (no reply in 5 s); 2 for bad flags.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "userspace/flags.h"

ABSL_FLAG(int, from, 1, "CPU of the sender.");
ABSL_FLAG(int, to, 2, "CPU of the receiver (kept busy).");
ABSL_FLAG(int, rounds, 200, "Signals sent.");
ABSL_FLAG(int, gap_us, 2000, "Time between two signals.");
ABSL_FLAG(bool, busy_others, true, "Keep every other CPU busy too (as a loaded guest is).");

namespace {

std::atomic<int64_t> handled_ns{0};

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void OnSignal(int) { handled_ns.store(NowNs(), std::memory_order_release); }

bool PinSelf(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv,
                         "ipi_latency [--from=CPU] [--to=CPU] [--rounds=N] [--gap-us=N] [--busy-others]");
  const int from = absl::GetFlag(FLAGS_from), to = absl::GetFlag(FLAGS_to);
  const int rounds = absl::GetFlag(FLAGS_rounds), gap_us = absl::GetFlag(FLAGS_gap_us);
  if (from < 0 || to < 0 || from == to || rounds < 1 || gap_us < 0) {
    std::fprintf(stderr, "ipi_latency: need two different CPUs, --rounds >= 1, --gap-us >= 0\n");
    return 2;
  }
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGUSR1, &sa, nullptr);
  // Only the receiver takes the signal.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);

  std::atomic<bool> stop{false}, ready{false}, pinned{true};
  std::vector<std::thread> others;
  if (absl::GetFlag(FLAGS_busy_others)) {
    for (int c = 0; c < CPU_SETSIZE && c < static_cast<int>(std::thread::hardware_concurrency()); c++) {
      if (c == from || c == to) continue;
      others.emplace_back([&stop, c] {
        PinSelf(c);
        while (!stop.load(std::memory_order_relaxed)) {
        }
      });
    }
  }
  std::thread receiver([&] {
    if (!PinSelf(to)) pinned = false;
    pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
    ready = true;
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  while (!ready) {
  }
  if (!pinned || !PinSelf(from)) {
    std::fprintf(stderr, "ipi_latency: cannot pin to CPU %d and %d\n", from, to);
    stop = true;
    receiver.join();
    for (auto& o : others) o.join();
    return 1;
  }
  std::vector<double> us;
  bool lost = false;
  for (int i = 0; i < rounds && !lost; i++) {
    const int64_t gap_end = NowNs() + gap_us * 1000LL;
    while (NowNs() < gap_end) {
    }
    handled_ns.store(0);
    const int64_t sent = NowNs();
    pthread_kill(receiver.native_handle(), SIGUSR1);
    int64_t got;
    while ((got = handled_ns.load(std::memory_order_acquire)) == 0) {
      if (NowNs() - sent > 5000000000LL) {
        lost = true;
        break;
      }
    }
    if (!lost) us.push_back((got - sent) / 1000.0);
  }
  stop = true;
  receiver.join();
  for (auto& o : others) o.join();
  if (lost) {
    std::fprintf(stderr, "ipi_latency: a signal got no reply in 5 s\n");
    return 1;
  }
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double u : us) sum += u;
  auto at = [&](double q) { return us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]; };
  absl::PrintF("ipi_latency: from=%d to=%d rounds=%d mean=%.0f us p50=%.0f us p90=%.0f us max=%.0f us\n",
               from, to, rounds, sum / us.size(), at(0.5), at(0.9), us.back());
  return 0;
}
