// ghost-agent: loads the ghost sched_ext class (or re-attaches to the one
// pinned) and runs a ghOSt policy over one enclave of CPUs until SIGINT/SIGTERM.
// If the kernel ends the class first, prints the kernel's reason and exits 1.
// Exit 2: bad flags, this host cannot run it, another agent runs this
// enclave, its CPUs belong to another enclave, or the running class speaks
// another ABI.
//
// Several agents share one class, each with its own enclave (--enclave, as
// ghost-run names it) on disjoint CPUs and with its own policy. The class is
// pinned under --pin-dir (class_pins.h) and outlives every agent: if one dies
// (kill -9, crash), its enclave's threads run through the class's fallback
// and the other enclaves go on. The next ghost-agent for that enclave
// re-attaches without loading a second class, takes the dead agent's enclave
// over in place and rediscovers its threads from their status words
// (discovery.h). SIGUSR1 hands over (`ghost-agent --upgrade`: live upgrade).
// SIGTERM of the last agent unloads the class; of any other, it returns its
// enclave's threads to the fair class and leaves the class to the rest.
// docs/AGENT_LIFECYCLE.md tells the whole story.
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

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
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
#include "userspace/hints/hint_table.h"
#include "userspace/ghost_skel.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"
#include "userspace/message.h"
#include "userspace/ring_config.h"
#include "userspace/run_request.h"
#include "userspace/topology.h"

ABSL_FLAG(std::string, policy, "fifo-centralized",
          "Scheduling policy: fifo-centralized, fifo-per-cpu, shinjuku (centralized, preemptive, "
          "QoS classes from --hints), edf (centralized, earliest deadline first within a QoS "
          "class, from --hints), sol (the leanest centralized FIFO: each thread to its last CPU, "
          "then its SMT sibling), search (NUMA/CCX: the thread that ran least first, onto the idle "
          "CPU nearest its last one, waiting up to 100 us for its own LLC), or none (the class "
          "alone: SCHED_EXT threads run in its FIFO).");
ABSL_FLAG(std::string, cpus, "", "CPUs of the enclave, e.g. 0-3,6 (default: every CPU).");
ABSL_FLAG(int, enclave, 0,
          "The enclave this agent runs (ghost-run --enclave puts threads in it). One agent per "
          "enclave; enclaves of different agents need disjoint --cpus.");
ABSL_FLAG(int64_t, slice_us, 20000,
          "Time slice in microseconds (0..1000000; the default is sched_ext's own, measured in "
          "docs/BENCHMARKS.md; shinjuku's default is 30, edf's and sol's 0): a thread that has run this "
          "long gives its CPU up when another waits for it (under shinjuku and edf: one of its "
          "QoS class or a higher one), and keeps it while none does; 0: threads run until they "
          "block or "
          "yield. With --policy=none: the class FIFO's slice (0 means 5000).");
ABSL_FLAG(std::string, hints, "",
          "shinjuku and edf: the application's hint table (docs/HINTS.md) its threads' QoS "
          "classes (and deadlines, for edf) come from, as the application's HintWriter names it "
          "(/proc/PID/fd/FD); empty: every thread in class 0, with no deadline.");
ABSL_FLAG(int64_t, batch_below, 0,
          "shinjuku: Shenango-style sharing: QoS classes below this one (0..4294967295) are a "
          "batch application's: they get the CPUs higher classes leave idle, give each back at "
          "once, and take turns among themselves every 20 ms (or the slice, if longer); 0: off.");
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
ABSL_FLAG(std::string, lock_dir, ghost::kDefaultLockDir,
          "Directory (not on bpffs) of the agents' lock files: enclave-N.lock keeps a second "
          "agent off enclave N, class.lock orders loading and unloading the class.");
ABSL_FLAG(bool, upgrade, false,
          "Live upgrade: ask the running ghost-agent of --enclave to hand over (SIGUSR1), wait "
          "for it to exit, then take over its enclave and threads.");
ABSL_FLAG(int64_t, upgrade_timeout_ms, 10000, "How long --upgrade waits for the old agent.");
ABSL_FLAG(bool, stats, false, "Print the class's and the agents' counters at exit.");
ABSL_FLAG(std::string, fast_path, "auto",
          "fifo-centralized's fast path (docs/FAST_PATH.md): auto (the default), on or off. "
          "auto/on: push runnable threads to per-NUMA-node rings that idle CPUs take from in "
          "BPF, when the class has rings (on: a note on stderr if it has none); off: every "
          "placement is a transaction.");
ABSL_FLAG(std::string, wakeup_push, "on",
          "With the fast path: on (the default) lets the class push threads that wake up into "
          "the rings itself (no round trip to the agent) while no older thread waits for them; "
          "off: the agent pushes every entry.");
ABSL_FLAG(std::string, ring_steal, "off",
          "fifo-centralized with the fast path: on lets an idle CPU whose own node's ring is "
          "empty take entries from the other nodes' rings; off (the default) runs every entry "
          "on the node the agent pushed it to.");
ABSL_FLAG(std::string, pinned_push, "on",
          "on (the default) lets the class queue a thread that may run on one CPU only on "
          "that CPU itself, while nothing of the agent's waits for that CPU (no round trip: "
          "docs/FAST_PATH.md); fifo-per-cpu's agent also hands such threads that wait for it "
          "to the class in one call; off: the agents place every run.");
ABSL_FLAG(std::string, ring_depth, "all",
          "fifo-centralized with the fast path: all (the default) pushes every waiting thread a "
          "ring may take, so the rings hold the backlog in FIFO order and wake-ups the class "
          "pushes queue behind it; idle keeps each node's ring as deep as its idle CPUs plus "
          "one, the rest waiting with the agent.");
ABSL_FLAG(int64_t, agent_sleep_us, 1000,
          "fifo-centralized with the fast path: 1..1000000 (default 1000) lets the global agent "
          "sleep on its queue for up to this long when it has nothing to do, its CPU running "
          "threads from the rings meanwhile (a message that needs it wakes it); 0: it spins, as "
          "ghOSt's global agent did.");
ABSL_FLAG(std::string, ring_size, "256",
          "Fast-path ring entries per node, each a power of two in 2..4096: N (every node), "
          "NODE:N,... (per node; other nodes 256) or N,NODE:N (N for the nodes not named).");
ABSL_FLAG(int64_t, queue_bytes, 256 * 1024,
          "Bytes of each agent message queue: a power of two in 4096..67108864 (64 MiB).");

namespace {

int Fail(int code, const std::string& msg) {
  absl::FPrintF(stderr, "ghost-agent: %s\n", msg);
  return code;
}

// The enclave other than `self` that already has one of `cpus` (and which
// CPU), or -1.
int EnclaveHolding(const ghost::BpfKernelSide& k, uint32_t self, const ghost::CpuList& cpus,
                   int* which_cpu) {
  for (uint32_t e = 0; e < GHOST_MAX_ENCLAVES; e++) {
    const ghost_enclave_word& w = k.EnclaveWord(e);
    if (e == self || !(__atomic_load_n(&w.flags, __ATOMIC_ACQUIRE) & GHOST_ENCLAVE_INUSE)) continue;
    for (int cpu : cpus.ToVector()) {
      if ((w.cpus[cpu / 64] >> (cpu % 64)) & 1) {
        *which_cpu = cpu;
        return static_cast<int>(e);
      }
    }
  }
  return -1;
}

// Agents of other enclaves that live (or are still leaving).
std::vector<uint32_t> OtherLiveAgents(const ghost::AgentLockPaths& locks, uint32_t self) {
  std::vector<uint32_t> live;
  for (uint32_t e = 0; e < GHOST_MAX_ENCLAVES; e++) {
    if (e != self && ghost::AgentLock::Held(locks.Enclave(e))) live.push_back(e);
  }
  return live;
}

}  // namespace

int main(int argc, char** argv) {
  const ghost::ParsedArgs args = ghost::ParseArgsOrExit(
      argc, argv,
      "usage: ghost-agent [flags]\n"
      "Loads the ghost sched_ext class and runs a ghOSt policy until SIGINT/SIGTERM.");
  const std::vector<std::string>& rest = args.positional;
  if (!rest.empty()) return Fail(2, absl::StrFormat("unexpected argument '%s'", rest[0]));
  const std::string policy_name = absl::GetFlag(FLAGS_policy);
  // Without --slice-us, the policy's own default (20 ms; shinjuku 30 us; edf, sol none).
  const int64_t slice_us =
      args.given.contains("slice_us")
          ? absl::GetFlag(FLAGS_slice_us)
          : absl::ToInt64Microseconds(ghost::DefaultSlice(policy_name));
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
  if (const std::string hints = absl::GetFlag(FLAGS_hints); !hints.empty()) {
    if (absl::Status s = ghost::CheckHintsFor(policy_name, hints); !s.ok()) {
      return Fail(2, std::string(s.message()));
    }
    // Checked before the class loads; the policy opens it again.
    if (absl::StatusOr<std::unique_ptr<ghost::HintReader>> r = ghost::HintReader::Open(hints);
        !r.ok()) {
      return Fail(2, absl::StrCat("--hints: ", r.status().message()));
    }
  }
  if (absl::Status s = ghost::CheckBatchBelowFor(policy_name, absl::GetFlag(FLAGS_batch_below));
      !s.ok()) {
    return Fail(2, std::string(s.message()));
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
  absl::StatusOr<ghost::PolicyOptions::FastPath> fast_path =
      ghost::ParseFastPath(absl::GetFlag(FLAGS_fast_path));
  if (!fast_path.ok()) return Fail(2, std::string(fast_path.status().message()));
  absl::StatusOr<bool> wakeup_push = ghost::ParseWakeupPush(absl::GetFlag(FLAGS_wakeup_push));
  if (!wakeup_push.ok()) return Fail(2, std::string(wakeup_push.status().message()));
  absl::StatusOr<bool> ring_steal = ghost::ParseRingSteal(absl::GetFlag(FLAGS_ring_steal));
  if (!ring_steal.ok()) return Fail(2, std::string(ring_steal.status().message()));
  absl::StatusOr<bool> pinned_push = ghost::ParsePinnedPush(absl::GetFlag(FLAGS_pinned_push));
  if (!pinned_push.ok()) return Fail(2, std::string(pinned_push.status().message()));
  absl::StatusOr<bool> deep_rings = ghost::ParseRingDepth(absl::GetFlag(FLAGS_ring_depth));
  if (!deep_rings.ok()) return Fail(2, std::string(deep_rings.status().message()));
  const int64_t agent_sleep_us = absl::GetFlag(FLAGS_agent_sleep_us);
  if (agent_sleep_us < 0 || agent_sleep_us > 1'000'000) {
    return Fail(2, absl::StrFormat("--agent-sleep-us=%d is out of range (0..1000000)",
                                   agent_sleep_us));
  }
  absl::StatusOr<ghost::RingSizes> ring_sizes = ghost::ParseRingSizes(absl::GetFlag(FLAGS_ring_size));
  if (!ring_sizes.ok()) {
    return Fail(2, absl::StrCat("--ring-size: ", ring_sizes.status().message()));
  }
  const int64_t queue_bytes = absl::GetFlag(FLAGS_queue_bytes);
  if (absl::Status s = ghost::ValidateQueueBytes(queue_bytes < 0 ? 0 : queue_bytes); !s.ok()) {
    return Fail(2, absl::StrCat("--queue-bytes=", queue_bytes, ": ", s.message()));
  }
  const int enclave_flag = absl::GetFlag(FLAGS_enclave);
  if (enclave_flag < 0 || enclave_flag >= GHOST_MAX_ENCLAVES) {
    return Fail(2, absl::StrFormat("--enclave=%d is out of range (0..%d)", enclave_flag,
                                   GHOST_MAX_ENCLAVES - 1));
  }
  const ghost::EnclaveId enclave_id = static_cast<ghost::EnclaveId>(enclave_flag);
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_CONF));
  ghost::CpuList cpus = ghost::CpuList::FirstN(ncpus);
  if (!absl::GetFlag(FLAGS_cpus).empty()) {
    absl::StatusOr<ghost::CpuList> l = ghost::CpuList::Parse(absl::GetFlag(FLAGS_cpus), ncpus);
    if (!l.ok()) return Fail(2, absl::StrCat("--cpus: ", l.status().message()));
    cpus = *l;
  }
  if (absl::Status s = ghost::CheckSchedExtHost(); !s.ok()) return Fail(2, std::string(s.message()));
  // A pin directory someone else made (bpffs's root is world-writable) is
  // refused before anything is loaded; a missing one is made by Pin.
  if (struct stat st; lstat(pin_dir.c_str(), &st) == 0) {
    if (absl::Status s = ghost::CheckPinDir(pin_dir); !s.ok()) return Fail(2, std::string(s.message()));
  }
  // This process's own work (loading or verifying the class, the main loop)
  // stays on its enclave's CPUs: it runs above the class, and must never
  // take another enclave's CPUs from that enclave's threads. Agent threads
  // pin themselves.
  if (policy_name != "none") {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus.ToVector()) CPU_SET(cpu, &set);
    (void)sched_setaffinity(0, sizeof(set), &set);
  }

  // Signals are taken synchronously (every thread inherits the mask), so
  // shutdown and hand-over are ordinary code paths.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // One agent per enclave; the kernel drops a dead one's lock.
  const ghost::AgentLockPaths locks = {.dir = absl::GetFlag(FLAGS_lock_dir)};
  const std::string enclave_lock = locks.Enclave(enclave_id);
  const ghost::ClassPins pins = {.dir = pin_dir};
  absl::StatusOr<ghost::AgentLock> lock = ghost::AgentLock::Acquire(enclave_lock);
  if (!lock.ok() && absl::IsAlreadyExists(lock.status()) && absl::GetFlag(FLAGS_upgrade)) {
    // The class is re-attached (its syscall programs verified) only after the
    // old agent has gone: meanwhile the enclave's threads run through the
    // fallback, while verifying beside a live agent could hold the CPUs it
    // leaves them (a fair-class task outranks them) for seconds.
    pid_t old = ghost::AgentLock::Holder(enclave_lock);
    if (old <= 0) return Fail(2, absl::StrCat("--upgrade: no agent pid in ", enclave_lock));
    if (kill(old, SIGUSR1) != 0) {
      return Fail(2, absl::StrFormat("--upgrade: cannot signal the running agent (pid %d): %s", old,
                                     strerror(errno)));
    }
    lock = ghost::AgentLock::AcquireWithin(
        enclave_lock, static_cast<int>(absl::GetFlag(FLAGS_upgrade_timeout_ms)));
  }
  if (!lock.ok()) {
    bool refused = absl::IsAlreadyExists(lock.status()) || absl::IsInvalidArgument(lock.status()) ||
                   absl::IsFailedPrecondition(lock.status());
    return Fail(refused ? 2 : 1, absl::IsAlreadyExists(lock.status())
                                     ? absl::StrFormat("enclave %d: %s", enclave_id,
                                                       lock.status().message())
                                     : std::string(lock.status().message()));
  }

  // Loading, re-attaching, taking an enclave over and leaving are done one
  // agent at a time: whoever leaves last must know it is last.
  absl::StatusOr<ghost::AgentLock> class_lock =
      ghost::AgentLock::AcquireWithin(locks.Class(), 60000);
  if (!class_lock.ok()) {
    return Fail(1, absl::StrCat("the class lock: ", class_lock.status().message()));
  }
  ghost::ClassProbe probe = ghost::ProbeClass(pins);
  ghost::ClassFound found = ghost::Classify(probe);
  std::unique_ptr<ghost::BpfClass> cls;
  if (found == ghost::ClassFound::kPinned) {
    absl::StatusOr<std::unique_ptr<ghost::BpfClass>> c = ghost::BpfClass::Reattach(pins);
    if (!c.ok()) {  // another ABI, or pins that are not safely ours: refused
      return Fail(absl::IsFailedPrecondition(c.status()) || absl::IsPermissionDenied(c.status())
                      ? 2
                      : 1,
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
    if (absl::Status s = cls->Pin(pins); !s.ok()) {
      return Fail(absl::IsFailedPrecondition(s) ? 2 : 1, std::string(s.message()));
    }
  }
  const bool reattached = cls->reattached();
  absl::StatusOr<std::unique_ptr<ghost::BpfKernelSide>> kernel =
      ghost::BpfKernelSide::Create(std::move(cls));
  if (!kernel.ok()) return Fail(1, std::string(kernel.status().message()));
  (*kernel)->set_agent_enclave(enclave_id);
  struct ghost_bpf* skel = (*kernel)->bpf_class().skel();
  // A re-attached class runs threads of other agents (and maybe of a dead
  // one of this enclave): if this agent fails to start, it leaves the class
  // running (its fallback keeps the threads going), as a crash would.
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
  }
  // Another enclave's CPUs are never taken, nor touched: refused before
  // anything of the previous agent of this enclave changes.
  if (int cpu = -1, other = EnclaveHolding(**kernel, enclave_id, cpus, &cpu);
      policy_name != "none" && other >= 0) {
    pid_t holder = ghost::AgentLock::Held(locks.Enclave(other))
                       ? ghost::AgentLock::Holder(locks.Enclave(other))
                       : 0;
    return Fail(2, absl::StrFormat(
                       "--cpus=%s: CPU %d belongs to enclave %d, %s", cpus.ToString(), cpu, other,
                       holder > 0 ? absl::StrFormat("whose agent (pid %d) is running", holder)
                                  : absl::StrFormat("whose agent is gone (restart it with "
                                                    "--enclave=%d, or stop it)", other)));
  }
  bool took_over = false;
  if (reattached) {
    absl::StatusOr<bool> had = (*kernel)->ClearPreviousAgent(enclave_id);
    if (!had.ok()) return Fail(1, std::string(had.status().message()));
    took_over = *had;
    absl::PrintF("ghost-agent: re-attached to the class pinned at %s (no new load); %s\n", pin_dir,
                 took_over ? absl::StrFormat("taking enclave %d over from its previous agent",
                                             enclave_id)
                           : absl::StrFormat("enclave %d is new", enclave_id));
  }

  std::unique_ptr<ghost::Enclave> enclave;
  std::unique_ptr<ghost::Policy> policy;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::atomic<int> thread_errors{0};
  int rediscovered = 0;
  uint64_t discarded = 0;
  auto start_agents = [&] {
    // A predecessor's per-CPU agents may have left pinned push on (killed, or
    // another policy): only agents that ask for it get it.
    for (int cpu : cpus.ToVector()) (*kernel)->SetPinnedPush(cpu, false);
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
  };
  ghost::PolicyOptions policy_opts = {.name = policy_name,
                                      .slice = absl::Microseconds(slice_us)};
  policy_opts.fast_path = *fast_path;
  policy_opts.ring_sizes = *ring_sizes;
  policy_opts.wakeup_push = *wakeup_push;
  policy_opts.ring_steal = *ring_steal;
  policy_opts.agent_sleep = absl::Microseconds(agent_sleep_us);
  policy_opts.deep_rings = *deep_rings;
  policy_opts.pinned_push = *pinned_push;
  policy_opts.hints = absl::GetFlag(FLAGS_hints);
  // The topology for placement (sol, search) and its counters; a machine
  // whose sysfs cannot be read has none known (sol places on any idle CPU,
  // search refuses to start).
  if (absl::StatusOr<ghost::Topology> t = ghost::Topology::FromSysfs(); t.ok()) {
    policy_opts.topology = std::make_shared<const ghost::Topology>(std::move(*t));
  }
  policy_opts.batch_below = static_cast<uint32_t>(absl::GetFlag(FLAGS_batch_below));
  if (policy_name != "none") {
    absl::StatusOr<std::unique_ptr<ghost::Enclave>> e = ghost::Enclave::Create(**kernel, {
        .id = enclave_id,
        .cpus = cpus,
        .watchdog_ms = static_cast<uint32_t>(watchdog_ms),
        .queue_bytes = static_cast<size_t>(queue_bytes),
    });
    if (!e.ok()) {
      return Fail(absl::IsInvalidArgument(e.status()) || absl::IsAlreadyExists(e.status()) ? 2 : 1,
                  std::string(e.status().message()));
    }
    enclave = std::move(*e);
    absl::StatusOr<std::unique_ptr<ghost::Policy>> p = ghost::MakePolicy(policy_opts, *enclave);
    if (!p.ok()) return Fail(2, std::string(p.status().message()));
    policy = std::move(*p);
    if (reattached) {
      // Our default queue is set: the previous agent's queues can go, and
      // its threads (status words) are ours.
      absl::StatusOr<uint64_t> d = (*kernel)->RetirePreviousQueues(enclave_id);
      if (!d.ok()) return Fail(1, std::string(d.status().message()));
      discarded = *d;
      ghost::TakeOverResult r = ghost::TakeOverThreads(
          **kernel, *enclave, *policy, [&] { discarded += (*kernel)->DrainRetiredQueues(); });
      rediscovered = r.taken;
      absl::PrintF("ghost-agent: rediscovered %d thread(s) of enclave %d from status words "
                   "(%d unread message(s) of the previous agent discarded; %d gone, %d "
                   "retried, %d missed)\n",
                   rediscovered, enclave->id(), discarded, r.gone, r.retried, r.missed);
    }
    (*kernel)->ReleasePreviousQueues();
    start_agents();
    // Our agents run: the class waits for them (heartbeats, below), and takes
    // them as gone if this process stops (SIGSTOP) or dies.
    (void)(*kernel)->SetAgentAbsent(enclave_id, false);
    absl::PrintF("ghost-agent: policy %s on enclave %d (CPUs %s, slice %dus), %d agent thread(s)\n",
                 policy_name, enclave->id(), cpus.ToString(), slice_us, threads.size());
  } else {
    if (took_over) {
      // The class alone: the previous agent's enclave goes, its threads run
      // in the class's FIFO.
      absl::StatusOr<uint64_t> d = (*kernel)->RetirePreviousQueues(enclave_id);
      if (!d.ok()) return Fail(1, std::string(d.status().message()));
      (void)(*kernel)->DestroyEnclave(enclave_id);
    }
    (*kernel)->ReleasePreviousQueues();
    absl::PrintF("ghost-agent: class 'ghost' %s, no policy: SCHED_EXT threads run in its FIFO\n",
                 reattached ? "re-attached" : "attached");
  }
  class_lock->Unlock();
  fflush(stdout);
  std::move(keep_class_on_failure).Cancel();  // started: SIGTERM leaves as usual
  // What this agent is judged on: runs of its enclave the fallback made, and
  // messages lost from its queues, after its agents started.
  const uint64_t fallback_at_start = skel->bss->enclave_runs[enclave_id][ghost::kRunFallback];
  auto messages_lost = [&] {
    uint64_t n = 0;
    if (enclave) {
      for (ghost::QueueId q : enclave->queues()) n += (*kernel)->QueueWord(q).dropped;
    }
    return n;
  };
  // Messages lost from our queues (they overflowed while this process was
  // stopped, or its agents fell far behind) leave the policy's view stale for
  // good: a lost TASK_DEAD or CPU_AVAILABLE would keep a CPU from it forever.
  // The agents then start afresh from the status words, as a successor would
  // (the enclave and its default queue stay; the fallback runs the threads
  // meanwhile).
  uint64_t lost_seen = 0, lost_before = 0;  // lost_before: in queues since replaced
  int resyncs = 0;
  auto resync = [&]() -> absl::Status {
    (void)(*kernel)->SetAgentAbsent(enclave_id, true);
    stop = true;
    for (std::thread& t : threads) t.join();
    threads.clear();
    stop = false;
    (*kernel)->ForgetAgentThreads(enclave_id);
    policy.reset();
    lost_before += messages_lost() - lost_seen;
    enclave->DestroyQueuesButDefault();
    (void)(*kernel)->ConsumeQueue(enclave->default_queue(), [](const ghost_msg&) {});
    absl::StatusOr<std::unique_ptr<ghost::Policy>> p = ghost::MakePolicy(policy_opts, *enclave);
    if (!p.ok()) return p.status();
    policy = std::move(*p);
    ghost::TakeOverResult r = ghost::TakeOverThreads(**kernel, *enclave, *policy);
    start_agents();
    (void)(*kernel)->SetAgentAbsent(enclave_id, false);
    resyncs++;
    lost_seen = messages_lost();
    absl::PrintF("ghost-agent: %d message(s) were lost from enclave %d's queues: its agents "
                 "started again from the status words (%d thread(s))\n",
                 lost_before, enclave_id, r.taken);
    fflush(stdout);
    return absl::OkStatus();
  };

  // A thread the class's watchdog had to move is a thread the policy did not
  // place in time: report it when it happens, with the policy's view of it
  // taken then, on the agent's own thread (by the end of the run the thread
  // may be gone). The first kMaxMoveReports moves of this enclave's threads.
  constexpr int kMaxMoveReports = 10;
  uint64_t moves_seen = skel->bss->nr_watchdog_moves;
  int moves_reported = 0;
  std::string last_move_view;  // the policy's view at the last reported move
  auto report_watchdog_move = [&]() {
    const uint64_t moves = skel->bss->nr_watchdog_moves;
    if (moves == moves_seen) return;
    moves_seen = moves;
    const ghost_watchdog_move_record w = skel->bss->last_watchdog_move;
    if (!enclave || !policy || policy->agents().empty() || moves_reported >= kMaxMoveReports) {
      return;
    }
    const std::vector<ghost::QueueId> qs = enclave->queues();
    if (std::find(qs.begin(), qs.end(), static_cast<ghost::QueueId>(w.queue)) == qs.end()) {
      return;  // another enclave's thread
    }
    struct View {
      absl::Mutex mu;
      std::string text ABSL_GUARDED_BY(mu);
      bool done ABSL_GUARDED_BY(mu) = false;
    };
    auto view = std::make_shared<View>();
    ghost::Policy* p = policy.get();
    policy->agents().front()->RunBetweenRounds([view, p, tid = w.tid] {
      std::string text = p->DescribeThread(static_cast<ghost::Tid>(tid));
      absl::MutexLock l(&view->mu);
      view->text = std::move(text);
      view->done = true;
    });
    std::string text = "(the agent did not answer within 200 ms)";
    {
      absl::MutexLock l(&view->mu);
      if (view->mu.AwaitWithTimeout(absl::Condition(&view->done), absl::Milliseconds(200))) {
        text = view->text;
      }
    }
    ++moves_reported;
    last_move_view = text;
    absl::FPrintF(stderr,
                  "ghost-agent: the class's watchdog ran tid=%d (pid %d) after it waited %d ms "
                  "(park_cpu=%d cpu=%d txn_cpu=%d nr_cpus_allowed=%d task_cpu=%d "
                  "migration_disabled=%d cpus_ptr=%#x cpus_mask=%#x)%s; policy: %s\n",
                  w.tid, w.pid, w.held_ns / 1000000, w.park_cpu, w.cpu, w.txn_cpu,
                  w.nr_cpus_allowed, w.task_cpu, w.migration_disabled, w.cpus_ptr0, w.cpus_mask0,
                  moves_reported == kMaxMoveReports ? " [last one reported]" : "", text);
  };

  int code = 0;
  bool handover = false;
  absl::Time leaving_since = absl::InfiniteFuture();
  for (;;) {
    struct timespec poll = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    int sig = sigtimedwait(&sigs, nullptr, &poll);
    if (enclave) (*kernel)->Heartbeat(enclave_id);
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
    if (leaving_since == absl::InfiniteFuture()) report_watchdog_move();
    if (thread_errors > 0) {
      code = 1;
      break;
    }
    if (enclave && leaving_since == absl::InfiniteFuture() && messages_lost() > lost_seen) {
      if (absl::Status s = resync(); !s.ok()) {
        code = Fail(1, absl::StrCat("starting the agents again: ", s.message()));
        break;
      }
    }
    if (sig == SIGINT || sig == SIGTERM) {
      absl::PrintF("ghost-agent: %s: detaching from enclave %d\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", enclave_id);
      break;
    }
    if (sig == SIGUSR1) {
      absl::PrintF("ghost-agent: SIGUSR1: handing over enclave %d; the class stays pinned at %s\n",
                   enclave_id, pin_dir);
      handover = true;
      break;
    }
  }
  const uint64_t fallback_at_end = skel->bss->enclave_runs[enclave_id][ghost::kRunFallback];
  // Handing over: from now on the enclave's threads do not wait for agents
  // that are stopping (the fallback runs them until the successor's run).
  if (handover && enclave) (void)(*kernel)->SetAgentAbsent(enclave_id, true);
  stop = true;
  for (std::thread& t : threads) t.join();
  if (absl::GetFlag(FLAGS_stats)) {
    const ghost_class_info& ci = (*kernel)->ClassInfo();
    absl::PrintF("ghost-agent: stats: enqueued=%d dispatched=%d direct=%d fallback_runs=%d "
                 "msgs_dropped=%d commit_calls=%d tid_index_failures=%d\n",
                 skel->bss->nr_enqueued, skel->bss->nr_dispatched, skel->bss->nr_direct,
                 ci.fallback_runs, ci.msgs_dropped, (*kernel)->commit_syscalls(),
                 skel->bss->tid_index_failures);
    absl::PrintF("ghost-agent: lifecycle: reattached=%d took_over=%d rediscovered=%d "
                 "discarded=%d resyncs=%d\n",
                 reattached ? 1 : 0, took_over ? 1 : 0, rediscovered, discarded, resyncs);
    // Threads the class sent to its fallback at once because the agents'
    // heartbeat was silent (bpf/progs/fallback.bpf.h): 0 while they run.
    absl::PrintF("ghost-agent: heartbeat: silent_sends=%d\n", skel->bss->nr_agent_gone_runs);
    // Threads the class queued on their one CPU for its per-CPU agent, and
    // the runs that came of it (bpf/progs/pinned.bpf.h).
    absl::PrintF("ghost-agent: pinned push: pushes=%d runs=%d\n", skel->bss->nr_pinned_pushes,
                 skel->bss->nr_runs_pinned);
    // Slices the class gave anew in place because nothing waited for the
    // CPU (bpf/progs/slices.bpf.h): each would have been a PREEMPT and a commit.
    absl::PrintF("ghost-agent: slices: renewed=%d\n", skel->bss->nr_slice_renewals);
    // Waiting threads the per-CPU agents gave the class the same way, and
    // the bpf() calls that took (ghost_hand_over).
    absl::PrintF("ghost-agent: hand-over: handed=%d calls=%d\n", skel->bss->nr_hand_overs,
                 (*kernel)->hand_over_syscalls());
    absl::PrintF(
        "ghost-agent: runs: committed=%d fallback=%d resumed=%d starved_cpu=%d "
        "(pinned there %d, on a global agent's CPU %d) ring=%d\n",
        skel->bss->nr_runs_committed, skel->bss->nr_runs_fallback, skel->bss->nr_runs_resumed,
        skel->bss->nr_starved_runs, skel->bss->nr_starved_runs_pinned,
        skel->bss->nr_starved_runs_agent_cpu, skel->bss->nr_runs_ring);
    {
      // The fast path as the class saw it (the policy line has the agent's view).
      const ghost::BpfKernelSide::FastPathCounters f = (*kernel)->FastPathStats();
      std::string stale;
      for (uint32_t r = 1; r <= GHOST_RING_STALE_LAST; ++r) {
        if (f.stale[r] != 0) absl::StrAppend(&stale, " stale_", r, "=", f.stale[r]);
      }
      absl::PrintF("ghost-agent: fast path (class): pops=%d steals=%d ring_runs=%d "
                   "settle_errors=%d doorbells=%d kicks=%d steal_kicks=%d skips_on_agent_cpu=%d "
                   "wakeup_pushes=%d wakeup_refused=%d wakeup_moves=%d%s\n",
                   f.pops, f.steals, f.ring_runs, f.settle_errors, f.doorbells, f.doorbell_kicks,
                   f.doorbell_steal_kicks,
                   skel->bss->nr_ring_skips_agent_cpu, f.wakeup_pushes, f.wakeup_refused,
                   f.wakeup_moves, stale);
    }
    std::string results;
    for (uint32_t r = 0; r <= GHOST_TXN_RESULT_LAST; ++r) {
      if (uint64_t n = skel->bss->nr_txn_results[r]; n != 0) {
        absl::StrAppend(&results, " ", ghost::TxnResultName(r), "=", n);
      }
    }
    absl::PrintF("ghost-agent: transactions: watchdog_moves=%d%s\n", skel->bss->nr_watchdog_moves,
                 results);
    // How fast a preempting commit takes a CPU (class-wide): the move, the
    // target's interrupt and reschedule (docs/POLICIES.md, "The quantum").
    if (const auto* b = skel->bss; b->nr_preempt_runs != 0 && b->nr_preempt_stops != 0) {
      absl::PrintF("ghost-agent: preempting commits: %d placed threads ran %d us after the commit "
                   "(mean; max %d us), %d displaced ones stopped after %d us (max %d us)\n",
                   b->nr_preempt_runs, b->preempt_run_lat_sum_ns / b->nr_preempt_runs / 1000,
                   b->preempt_run_lat_max_ns / 1000, b->nr_preempt_stops,
                   b->preempt_stop_lat_sum_ns / b->nr_preempt_stops / 1000,
                   b->preempt_stop_lat_max_ns / 1000);
    }
    if (enclave) {
      // This enclave alone (other agents share the class-wide counters).
      const __u64* runs = skel->bss->enclave_runs[enclave_id];
      const uint64_t dropped = lost_before + messages_lost() - lost_seen;
      absl::PrintF("ghost-agent: enclave %d: runs committed=%d fallback=%d resumed=%d "
                   "starved_cpu=%d, longest wait %d us; while this agent ran: fallback runs %d, "
                   "messages dropped %d\n",
                   enclave_id, runs[ghost::kRunCommitted], runs[ghost::kRunFallback],
                   runs[ghost::kRunResumed], runs[ghost::kRunStarved],
                   skel->bss->enclave_wait_max_ns[enclave_id] / 1000,
                   fallback_at_end - fallback_at_start, dropped);
    }
    if (policy) {
      if (std::string line = policy->StatsLine(); !line.empty()) {
        absl::PrintF("ghost-agent: policy %s: %s\n", policy->name(), line);
      }
      // A thread the watchdog had to move: how the class and the policy saw it.
      if (const auto& w = skel->bss->last_watchdog_move; w.tid != 0) {
        absl::PrintF(
            "ghost-agent: last watchdog move: tid=%d pid=%d seq=%d held=%dms queue=%d last_queue=%d "
            "state=%d park_cpu=%d cpu=%d txn_cpu=%d nr_cpus_allowed=%d task_cpu=%d "
            "migration_disabled=%d cpus_ptr=%#x cpus_mask=%#x (commits refused as migration-disabled "
            "elsewhere: %d); policy: %s\n",
            w.tid, w.pid, w.seq, w.held_ns / 1000000, w.queue, w.last_queue, w.state, w.park_cpu, w.cpu,
            w.txn_cpu, w.nr_cpus_allowed, w.task_cpu, w.migration_disabled, w.cpus_ptr0, w.cpus_mask0,
            skel->bss->nr_txn_migration_disabled,
            policy->DescribeThread(static_cast<ghost::Tid>(w.tid)));
        if (!last_move_view.empty()) {
          absl::PrintF("ghost-agent: policy's view at the last reported move: %s\n",
                       last_move_view);
        }
      }
      for (ghost::Agent* a : policy->agents()) {
        absl::PrintF("ghost-agent: agent cpu %d: %d rounds, %d messages, stepped aside %d times "
                     "for its policy, %d for the class; longest stall %s; idle sleeps %d; waits %d\n",
                     a->cpu(), a->rounds(), a->messages(), a->policy_yields(), a->kernel_yields(),
                     absl::FormatDuration(a->longest_stall()), a->idle_sleeps(), a->waits());
        if (a->messages() != 0) {
          absl::PrintF("ghost-agent: agent cpu %d: messages by type: %s\n", a->cpu(), a->MessagesByType());
        }
      }
    }
  }
  if (handover) {
    // The enclave, its queues and the class stay for the successor, which
    // takes them over in place; nothing shared is written after this.
    if (enclave) enclave->Release();
    policy.reset();
    enclave.reset();
    (*kernel)->bpf_class().Release();
    kernel->reset();
    fflush(stdout);
    return code;
  }
  // Leaving: the class goes with the last agent. The class lock keeps a
  // starting agent from re-attaching to a class being unloaded, and two
  // agents leaving at once from each leaving it to the other.
  class_lock = ghost::AgentLock::AcquireWithin(locks.Class(), 60000);
  std::vector<uint32_t> others = OtherLiveAgents(locks, enclave_id);
  const bool last = class_lock.ok() && others.empty() && (*kernel)->Health().ok();
  if (!last && (*kernel)->Health().ok()) {
    // Its threads return to the fair class, as an unloaded class would send
    // them; the enclave and its queues go; the other agents keep the class.
    int returned = enclave ? ghost::ReturnToFairClass((*kernel)->StatusWords(), enclave_id) : 0;
    policy.reset();
    enclave.reset();
    (*kernel)->ForgetAgentThreads(enclave_id);
    (*kernel)->bpf_class().Release();
    absl::PrintF("ghost-agent: enclave %d closed (%d thread(s) back to the fair class); the class "
                 "stays for the agent(s) of enclave(s) %s\n",
                 enclave_id, returned, absl::StrJoin(others, ","));
  }
  policy.reset();
  enclave.reset();
  kernel->reset();  // the last agent: unpins and detaches the class
  // Our enclave lock before the class lock: whoever leaves next must see us gone.
  lock->Unlock();
  fflush(stdout);
  return code;
}
