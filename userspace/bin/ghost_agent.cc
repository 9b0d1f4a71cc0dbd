// ghost-agent: loads the ghost sched_ext class and runs a ghOSt policy over an
// enclave of CPUs until SIGINT/SIGTERM, then detaches the class (every thread
// goes back to the fair class). If the kernel ends the class first, prints the
// kernel's reason and exits 1. Exit 2: bad flags, this host cannot run it,
// another agent is running, or the running class speaks another ABI.
//
// The class is pinned under --pin-dir (class_pins.h) and outlives the agent:
// if the agent dies (kill -9, crash), the class stays attached and its BPF
// fallback runs the enclave's threads. The next ghost-agent finds the pinned
// class, re-attaches to it without loading a second one, replaces the dead
// agent's enclave and rediscovers its threads from their status words
// (discovery.h). SIGUSR1 hands over: the agent exits 0 leaving the class
// pinned, for `ghost-agent --upgrade` (live upgrade).
//
// Agents run as SCHED_FIFO threads pinned to their CPUs, so they outrank
// every thread they schedule, as ghOSt's agents do.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "userspace/agent_lock.h"
#include "userspace/agent_thread.h"
#include "userspace/bpf_class.h"
#include "userspace/class_pins.h"
#include "userspace/discovery.h"
#include "userspace/bpf_kernel_side.h"
#include "userspace/enclave.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/ghost_skel.h"
#include "userspace/policy.h"
#include "userspace/message.h"
#include "userspace/run_request.h"

ABSL_FLAG(std::string, policy, "fifo-centralized",
          "Scheduling policy: fifo-centralized, fifo-per-cpu, or none (the class alone: "
          "SCHED_EXT threads run in its FIFO).");
ABSL_FLAG(std::string, cpus, "", "CPUs of the enclave, e.g. 0-3,6 (default: every CPU).");
ABSL_FLAG(int64_t, slice_us, 0,
          "Time slice in microseconds. fifo-centralized preempts a thread that ran longer "
          "when others wait; 0: threads run until they block or yield. With --policy=none: "
          "the FIFO's slice (0 means 5000).");
ABSL_FLAG(int64_t, watchdog_ms, 1000,
          "A runnable thread the agent has not placed within this time runs through the "
          "class's fallback FIFO (the enclave degrades, the class is never ejected).");
ABSL_FLAG(int64_t, kernel_timeout_ms, 5000,
          "sched_ext's own stall watchdog (2000..30000 ms): the kernel ejects the class if a "
          "runnable thread waits longer. At least twice --watchdog-ms.");
ABSL_FLAG(int, agent_priority, 50, "SCHED_FIFO priority of the agent threads (1..99).");
ABSL_FLAG(std::string, pin_dir, ghost::kDefaultPinDir,
          "bpffs directory where the class is pinned (its link and maps; ghost-run finds the "
          "enroll map there). A class pinned there by an earlier agent is re-attached.");
ABSL_FLAG(std::string, lock_file, ghost::kDefaultAgentLock,
          "Lock file (not on bpffs) that keeps a second agent from driving the class.");
ABSL_FLAG(bool, upgrade, false,
          "Live upgrade: ask the running ghost-agent to hand over (SIGUSR1), wait for it to "
          "exit, then take over its class and threads.");
ABSL_FLAG(int64_t, upgrade_timeout_ms, 10000, "How long --upgrade waits for the old agent.");
ABSL_FLAG(bool, stats, false, "Print the class's and the agents' counters at exit.");

namespace {

int Fail(int code, const std::string& msg) {
  absl::FPrintF(stderr, "ghost-agent: %s\n", msg);
  return code;
}

// The pid holding the agent lock, or 0.
pid_t LockHolder(const std::string& lock_file) {
  FILE* f = fopen(lock_file.c_str(), "r");
  if (f == nullptr) return 0;
  int pid = 0;
  if (fscanf(f, "%d", &pid) != 1) pid = 0;
  fclose(f);
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> rest = ghost::ParseFlagsOrExit(
      argc, argv,
      "usage: ghost-agent [flags]\n"
      "Loads the ghost sched_ext class and runs a ghOSt policy until SIGINT/SIGTERM.");
  if (!rest.empty()) return Fail(2, absl::StrFormat("unexpected argument '%s'", rest[0]));
  const std::string policy_name = absl::GetFlag(FLAGS_policy);
  const int64_t slice_us = absl::GetFlag(FLAGS_slice_us);
  const int64_t watchdog_ms = absl::GetFlag(FLAGS_watchdog_ms);
  const int64_t timeout_ms = absl::GetFlag(FLAGS_kernel_timeout_ms);
  const int priority = absl::GetFlag(FLAGS_agent_priority);
  const std::string pin_dir = absl::GetFlag(FLAGS_pin_dir);
  std::vector<std::string> known = ghost::PolicyNames();
  known.push_back("none");
  if (std::find(known.begin(), known.end(), policy_name) == known.end()) {
    return Fail(2, absl::StrFormat("unknown policy '%s' (known: %s)", policy_name,
                                   absl::StrJoin(known, ", ")));
  }
  if (slice_us < 0 || slice_us > 1000000) {
    return Fail(2, absl::StrFormat("--slice-us=%d is out of range (0..1000000)", slice_us));
  }
  if (timeout_ms < absl::ToInt64Milliseconds(ghost::kMinKernelTimeout) || timeout_ms > 30000) {
    return Fail(2, absl::StrFormat("--kernel-timeout-ms=%d is out of range (%d..30000)", timeout_ms,
                                   absl::ToInt64Milliseconds(ghost::kMinKernelTimeout)));
  }
  if (watchdog_ms < 1 || watchdog_ms > timeout_ms / 2) {
    return Fail(2, absl::StrFormat(
        "--watchdog-ms=%d must be within 1..%d (at most half of --kernel-timeout-ms)", watchdog_ms,
        timeout_ms / 2));
  }
  if (priority < 1 || priority > 99) {
    return Fail(2, absl::StrFormat("--agent-priority=%d is out of range (1..99)", priority));
  }
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_CONF));
  ghost::CpuList cpus = ghost::CpuList::FirstN(ncpus);
  if (!absl::GetFlag(FLAGS_cpus).empty()) {
    absl::StatusOr<ghost::CpuList> l = ghost::CpuList::Parse(absl::GetFlag(FLAGS_cpus), ncpus);
    if (!l.ok()) return Fail(2, absl::StrCat("--cpus: ", l.status().message()));
    cpus = *l;
  }
  if (absl::Status s = ghost::CheckSchedExtHost(); !s.ok()) return Fail(2, std::string(s.message()));

  // Signals are taken synchronously (every thread inherits the mask), so
  // shutdown and hand-over are ordinary code paths.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // One agent at a time drives the class; the kernel drops a dead one's lock.
  const std::string lock_file = absl::GetFlag(FLAGS_lock_file);
  absl::StatusOr<ghost::AgentLock> lock = ghost::AgentLock::Acquire(lock_file);
  if (!lock.ok() && absl::IsAlreadyExists(lock.status()) && absl::GetFlag(FLAGS_upgrade)) {
    pid_t old = LockHolder(lock_file);
    if (old <= 0) return Fail(2, absl::StrCat("--upgrade: no agent pid in ", lock_file));
    if (kill(old, SIGUSR1) != 0) {
      return Fail(2, absl::StrFormat("--upgrade: cannot signal the running agent (pid %d): %s", old,
                                     strerror(errno)));
    }
    lock = ghost::AgentLock::AcquireWithin(
        lock_file, static_cast<int>(absl::GetFlag(FLAGS_upgrade_timeout_ms)));
  }
  if (!lock.ok()) {
    bool refused = absl::IsAlreadyExists(lock.status()) || absl::IsInvalidArgument(lock.status());
    return Fail(refused ? 2 : 1, std::string(lock.status().message()));
  }

  const ghost::ClassPins pins = {.dir = pin_dir};
  ghost::ClassProbe probe = ghost::ProbeClass(pins);
  ghost::ClassFound found = ghost::Classify(probe);
  std::unique_ptr<ghost::BpfClass> cls;
  if (found == ghost::ClassFound::kPinned) {
    absl::StatusOr<std::unique_ptr<ghost::BpfClass>> c = ghost::BpfClass::Reattach(pins);
    if (!c.ok()) {  // FailedPrecondition: another ABI
      return Fail(absl::IsFailedPrecondition(c.status()) ? 2 : 1,
                  std::string(c.status().message()));
    }
    cls = std::move(*c);
  } else {
    if (found == ghost::ClassFound::kStale) ghost::BpfClass::RemoveStalePins(pins);
    absl::StatusOr<std::unique_ptr<ghost::BpfClass>> c = ghost::BpfClass::Load({
        .slice = absl::Microseconds(slice_us > 0 && policy_name == "none" ? slice_us : 5000),
        .kernel_timeout = absl::Milliseconds(timeout_ms),
    });
    if (!c.ok()) return Fail(1, std::string(c.status().message()));
    cls = std::move(*c);
    if (absl::Status s = cls->Attach(); !s.ok()) return Fail(1, std::string(s.message()));
    if (absl::Status s = cls->Pin(pins); !s.ok()) return Fail(1, std::string(s.message()));
  }
  const bool reattached = cls->reattached();
  absl::StatusOr<std::unique_ptr<ghost::BpfKernelSide>> kernel =
      ghost::BpfKernelSide::Create(std::move(cls));
  if (!kernel.ok()) return Fail(1, std::string(kernel.status().message()));
  struct ghost_bpf* skel = (*kernel)->bpf_class().skel();
  // A re-attached class runs threads a previous agent enrolled: if this
  // agent fails to start, it leaves the class running (its fallback keeps
  // the threads going) for the next one, instead of unloading it.
  absl::Cleanup keep_class_on_failure = [&] {
    if (reattached) (*kernel)->bpf_class().Release();
  };
  if (reattached) {
    // The pinned class keeps the stall timeout it was loaded with: check the
    // watchdog against that before touching the previous agent's state.
    const ghost_class_info& ci = (*kernel)->ClassInfo();
    if (policy_name != "none" && watchdog_ms > ci.max_watchdog_ms) {
      return Fail(2, absl::StrFormat(
                         "--watchdog-ms=%d is above %u, half the pinned class's kernel timeout "
                         "(%u ms; --kernel-timeout-ms applies only to a new load)",
                         watchdog_ms, ci.max_watchdog_ms, ci.kernel_timeout_ms));
    }
    absl::StatusOr<std::vector<ghost::EnclaveId>> old = (*kernel)->ClearPreviousAgent();
    if (!old.ok()) return Fail(1, std::string(old.status().message()));
    absl::PrintF("ghost-agent: re-attached to the class pinned at %s (no new load); replaced %d "
                 "enclave(s) of the previous agent\n",
                 pin_dir, old->size());
  }

  std::unique_ptr<ghost::Enclave> enclave;
  std::unique_ptr<ghost::Policy> policy;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::atomic<int> thread_errors{0};
  int rediscovered = 0;
  if (policy_name != "none") {
    absl::StatusOr<std::unique_ptr<ghost::Enclave>> e = ghost::Enclave::Create(**kernel, {
        .cpus = cpus,
        .watchdog_ms = static_cast<uint32_t>(watchdog_ms),
    });
    if (!e.ok()) {
      return Fail(absl::IsInvalidArgument(e.status()) ? 2 : 1, std::string(e.status().message()));
    }
    enclave = std::move(*e);
    absl::StatusOr<std::unique_ptr<ghost::Policy>> p = ghost::MakePolicy(
        {.name = policy_name, .slice = absl::Microseconds(slice_us)}, *enclave);
    if (!p.ok()) return Fail(2, std::string(p.status().message()));
    policy = std::move(*p);
    if (reattached) {
      rediscovered = ghost::TakeOverThreads(**kernel, *enclave, *policy);
      absl::PrintF("ghost-agent: rediscovered %d thread(s) of enclave %d from status words\n",
                   rediscovered, enclave->id());
    }
    (*kernel)->ReleasePreviousQueues();
    for (ghost::Agent* agent : policy->agents()) {
      threads.emplace_back([agent, priority, &stop, &thread_errors, k = kernel->get()] {
        absl::Status s = ghost::BecomeAgentThread(*k, *agent, priority);
        if (!s.ok()) {
          absl::FPrintF(stderr, "ghost-agent: %s\n", s.message());
          thread_errors++;
          return;
        }
        agent->Run(stop);
      });
    }
    absl::PrintF("ghost-agent: policy %s on enclave %d (CPUs %s), %d agent thread(s)\n",
                 policy_name, enclave->id(), cpus.ToString(), threads.size());
  } else {
    (*kernel)->ReleasePreviousQueues();
    absl::PrintF("ghost-agent: class 'ghost' %s, no policy: SCHED_EXT threads run in its FIFO\n",
                 reattached ? "re-attached" : "attached");
  }
  fflush(stdout);
  std::move(keep_class_on_failure).Cancel();  // started: SIGTERM unloads as usual

  int code = 0;
  bool handover = false;
  absl::Time leaving_since = absl::InfiniteFuture();
  for (;;) {
    struct timespec poll = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    int sig = sigtimedwait(&sigs, nullptr, &poll);
    if (absl::Status h = (*kernel)->Health(); !h.ok()) {
      code = Fail(1, std::string(h.message()));
      // What every CPU and waiting thread looked like, with the class's own
      // view of each (sched_ext's debug dump; bpf/progs/dump.bpf.h).
      if (std::string dump = (*kernel)->bpf_class().ExitDump(); !dump.empty()) {
        absl::FPrintF(stderr, "ghost-agent: the kernel's dump of the class follows\n%s%s", dump,
                      dump.back() == '\n' ? "" : "\n");
      }
      break;
    }
    // The kernel is taking the class down (SysRq-S, its stall watchdog, an
    // error) but has not called ops.exit yet: stop the agents now. A
    // SCHED_FIFO agent busy-polling meanwhile starves whatever sched_ext put
    // in its CPU's bypass queue, and the teardown can wait on such a thread
    // (one preempted inside an RCU read-side section) for as long as the
    // agent spins.
    if (leaving_since == absl::InfiniteFuture()) {
      if (absl::StatusOr<std::string> st = ghost::SchedExtState(); st.ok() && *st != "enabled") {
        stop = true;
        leaving_since = absl::Now();
      }
    } else if (absl::Now() - leaving_since > absl::Seconds(30)) {
      code = Fail(1, "the kernel is ending the class, but gave no reason within 30 s");
      break;
    }
    if (thread_errors > 0) {
      code = 1;
      break;
    }
    if (sig == SIGINT || sig == SIGTERM) {
      absl::PrintF("ghost-agent: %s: detaching\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sig == SIGUSR1) {
      absl::PrintF("ghost-agent: SIGUSR1: handing over, the class stays pinned at %s\n", pin_dir);
      handover = true;
      break;
    }
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  if (absl::GetFlag(FLAGS_stats)) {
    const ghost_class_info& ci = (*kernel)->ClassInfo();
    absl::PrintF("ghost-agent: stats: enqueued=%d dispatched=%d direct=%d fallback_runs=%d "
                 "msgs_dropped=%d commit_calls=%d tid_index_failures=%d\n",
                 skel->bss->nr_enqueued, skel->bss->nr_dispatched, skel->bss->nr_direct,
                 ci.fallback_runs, ci.msgs_dropped, (*kernel)->commit_syscalls(),
                 skel->bss->tid_index_failures);
    absl::PrintF("ghost-agent: lifecycle: reattached=%d rediscovered=%d\n", reattached ? 1 : 0,
                 rediscovered);
    absl::PrintF(
        "ghost-agent: runs: committed=%d fallback=%d resumed=%d starved_cpu=%d "
        "(pinned there %d)\n",
        skel->bss->nr_runs_committed, skel->bss->nr_runs_fallback, skel->bss->nr_runs_resumed,
        skel->bss->nr_starved_runs, skel->bss->nr_starved_runs_pinned);
    std::string results;
    for (uint32_t r = 0; r <= GHOST_TXN_RESULT_LAST; ++r) {
      if (uint64_t n = skel->bss->nr_txn_results[r]; n != 0) {
        absl::StrAppend(&results, " ", ghost::TxnResultName(r), "=", n);
      }
    }
    absl::PrintF("ghost-agent: transactions: watchdog_moves=%d%s\n", skel->bss->nr_watchdog_moves,
                 results);
    if (policy) {
      if (std::string line = policy->StatsLine(); !line.empty()) {
        absl::PrintF("ghost-agent: policy %s: %s\n", policy->name(), line);
      }
      for (ghost::Agent* a : policy->agents()) {
        absl::PrintF("ghost-agent: agent cpu %d: %d rounds, %d messages, stepped aside %d times "
                     "for its policy, %d for the class; longest stall %s\n",
                     a->cpu(), a->rounds(), a->messages(), a->policy_yields(), a->kernel_yields(),
                     absl::FormatDuration(a->longest_stall()));
      }
    }
  }
  policy.reset();
  enclave.reset();
  if (handover) (*kernel)->bpf_class().Release();  // the successor re-attaches
  kernel->reset();  // unpins and detaches the class, unless handed over
  fflush(stdout);
  return code;
}
