// class_probe: looks at a pinned ghost class from outside any agent, for the
// scenarios (agent_restart; the placement checks of clients_*, policies, ghost_run,
// bench_workloads).
//
//   class_probe [--pin-dir=D] --print          abi=N fallback_runs=N committed=N
//                                              bss_nr_cpus=N msgs_dropped=N runs_by_agent=N
//                                              (committed, ring and pinned-push runs: the
//                                              agent's placements)
//                                              runs_by_fallback=N runs_resumed=N
//                                              watchdog_moves=N starved_runs=N
//                                              starved_pinned=N starved_agent_cpu=N
//                                              fifo_placements=N slice_renewals=N
//                                              live_threads=N
//                                              (committed: transactions that ran, class-wide;
//                                              bss_nr_cpus: set by ops.init in the class's .bss;
//                                              msgs_dropped: class-wide, since the load;
//                                              runs_*: runs of enclave threads by who placed
//                                              them; watchdog_moves, starved_runs: why the
//                                              fallback ran them (waited --watchdog-ms, or
//                                              ran on a CPU the kernel's ext server lent to
//                                              sched_ext); fifo_placements: threads of no enclave
//                                              queued in the class's FIFO; slice_renewals:
//                                              slices given anew in place (slices.bpf.h);
//                                              live_threads:
//                                              status words owned by a thread that has not
//                                              ended)
//   class_probe [--pin-dir=D] --set-abi=N      rewrite class_info.abi_version
//   class_probe --watch-pid=PID                until PID exits, sample its threads'
//                                              ext.enabled every 20 ms; exit 1 if
//                                              any live thread was ever off sched_ext
//   class_probe --print --enclave=N            also enclave N alone: e_committed= e_fallback=
//                                              e_resumed= e_starved= (runs by who placed
//                                              them: run_stats.bpf.h),
//                                              e_wait_max_us= (longest wait of a runnable
//                                              thread for a CPU), e_dropped= (messages lost
//                                              from its queues in use), e_queues=,
//                                              with --count-threads e_threads= (its live
//                                              threads, from the status words; slow),
//                                              e_ring= (runs placed by ring entries),
//                                              e_pinned= (runs the class queued for a per-CPU agent),
//                                              e_placed= (e_committed + e_ring + e_pinned: the agent's)
//   class_probe --reset-wait-max --enclave=N   e_wait_max_us starts again from 0 (prints
//                                              the value it had)
//   class_probe --find-pid=PID                 the enclave PID's status word names, or
//                                              "none" (not delegated to any agent)
#include <linux/types.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernel/ghost_abi.h"
#include "userspace/class_pins.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"
#include "userspace/ghost_skel.h"

ABSL_FLAG(std::string, pin_dir, ghost::kDefaultPinDir, "Where the class is pinned.");
ABSL_FLAG(bool, print, false, "Print the class's ABI version and counters.");
ABSL_FLAG(int, set_abi, -1, "Overwrite the class's published ABI version (tests the check).");
ABSL_FLAG(int, watch_pid, 0, "Watch this process's threads until it exits.");
ABSL_FLAG(int, enclave, -1, "With --print or --reset-wait-max: this enclave's own counters.");
ABSL_FLAG(bool, reset_wait_max, false, "Reset the enclave's longest wait (see --enclave).");
ABSL_FLAG(int, find_pid, 0, "Which enclave this thread's status word names.");
ABSL_FLAG(bool, count_threads, false, "With --print --enclave: count its live threads (slow).");

namespace {

int Fail(const std::string& msg) {
  absl::FPrintF(stderr, "class_probe: %s\n", msg);
  return 2;
}

// 1 if `tid` of `pid` is run by a sched_ext class, 0 if not, -1 if gone.
int ExtEnabled(int pid, const std::string& tid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/task/", tid, "/sched"));
  std::string line;
  while (f && std::getline(f, line)) {
    if (line.rfind("ext.enabled", 0) == 0) {
      size_t colon = line.find(':');
      int v;
      if (colon != std::string::npos &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(colon + 1)), &v)) {
        return v;
      }
    }
  }
  return -1;
}

int Watch(int pid) {
  long samples = 0, off = 0;
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  for (;;) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) break;
    bool any = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      int v = ExtEnabled(pid, e->d_name);
      if (v < 0) continue;
      any = true;
      samples++;
      if (v == 0) {
        // A zombie's or exiting thread's last word is no evidence: look again.
        if (kill(pid, 0) == 0 && ExtEnabled(pid, e->d_name) == 0) {
          if (off++ < 5) {
            absl::PrintF("class_probe: thread %s of %d is off sched_ext\n", e->d_name, pid);
          }
        }
      }
    }
    closedir(d);
    if (!any) break;
    usleep(20000);
  }
  absl::PrintF("class_probe: watched %d: %d samples, %d off sched_ext\n", pid, samples, off);
  return samples > 0 && off == 0 ? 0 : 1;
}

// Status words still owned by a thread (sw_owner != 0): threads of an enclave
// whose end (TASK_DEAD/DEPARTED) the class has not seen yet.
absl::StatusOr<int> LiveThreads(const ghost::ClassPins& pins) {
  std::string path = pins.Map("sw_owner");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  // One batched read (one bpf() call per kernel batch, not one per word).
  std::vector<__u32> keys(GHOST_MAX_THREADS);
  std::vector<__u64> owners(GHOST_MAX_THREADS, 0);
  __u32 count = GHOST_MAX_THREADS, out_batch = 0;
  int err = bpf_map_lookup_batch(fd, nullptr, &out_batch, keys.data(), owners.data(), &count,
                                 nullptr);
  int saved = errno;
  close(fd);
  // ENOENT: the whole map was read in this batch.
  if (err != 0 && saved != ENOENT) {
    return absl::InternalError(absl::StrCat("reading ", path, ": ", strerror(saved)));
  }
  if (count != GHOST_MAX_THREADS) {
    return absl::InternalError(absl::StrCat("reading ", path, ": ", count, " of ",
                                            GHOST_MAX_THREADS, " entries"));
  }
  return static_cast<int>(std::count_if(owners.begin(), owners.end(), [](__u64 o) { return o; }));
}

}  // namespace

using Bss = std::remove_pointer_t<decltype(ghost_bpf::bss)>;

// The class's .bss, mmapped from its pin (global data maps are mmapable), so
// single words can be exchanged atomically while the class runs.
Bss* MapBss(const ghost::ClassPins& pins, std::string* err) {
  std::string path = pins.Map("ghost_bpf.bss");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    *err = absl::StrCat("cannot open ", path, ": ", strerror(errno));
    return nullptr;
  }
  size_t page = sysconf(_SC_PAGESIZE), len = (sizeof(Bss) + page - 1) / page * page;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    *err = absl::StrCat("cannot map ", path, ": ", strerror(errno));
    return nullptr;
  }
  return static_cast<Bss*>(m);
}

// Queue words and enclave words, read through their pins.
template <typename T>
bool ReadArray(const ghost::ClassPins& pins, const char* name, std::vector<T>& out) {
  int fd = bpf_obj_get(pins.Map(name).c_str());
  if (fd < 0) return false;
  for (__u32 i = 0; i < out.size(); i++) {
    if (bpf_map_lookup_elem(fd, &i, &out[i]) != 0) {
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: class_probe [--print | --set-abi=N | --watch-pid=P]");
  if (int pid = absl::GetFlag(FLAGS_watch_pid); pid > 0) return Watch(pid);
  const ghost::ClassPins pins = {.dir = absl::GetFlag(FLAGS_pin_dir)};
  const int enclave = absl::GetFlag(FLAGS_enclave);
  if (enclave >= GHOST_MAX_ENCLAVES) return Fail("--enclave out of range");
  if (int pid = absl::GetFlag(FLAGS_find_pid); pid > 0) {
    std::vector<ghost_status_word> words(GHOST_MAX_THREADS);
    if (!ReadArray(pins, "status_words", words)) return Fail("cannot read the status words");
    for (const ghost_status_word& w : words) {
      if ((w.flags & GHOST_SW_INUSE) && !(w.flags & GHOST_SW_DEAD) &&
          w.pid == static_cast<__u32>(pid)) {
        absl::PrintF("%d\n", w.enclave);
        return 0;
      }
    }
    absl::PrintF("none\n");
    return 0;
  }
  if (absl::GetFlag(FLAGS_reset_wait_max)) {
    if (enclave < 0) return Fail("--reset-wait-max needs --enclave");
    std::string err;
    Bss* bss = MapBss(pins, &err);
    if (bss == nullptr) return Fail(err);
    uint64_t old = __atomic_exchange_n(&bss->enclave_wait_max_ns[enclave], 0, __ATOMIC_SEQ_CST);
    absl::PrintF("e_wait_max_us=%d\n", old / 1000);
    return 0;
  }
  std::string path = pins.Map("class_info");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Fail(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  __u32 zero = 0;
  ghost_class_info ci;
  if (bpf_map_lookup_elem(fd, &zero, &ci) != 0) return Fail(absl::StrCat("reading ", path));
  if (int v = absl::GetFlag(FLAGS_set_abi); v >= 0) {
    ci.abi_version = static_cast<__u32>(v);
    if (bpf_map_update_elem(fd, &zero, &ci, BPF_ANY) != 0) {
      return Fail(absl::StrCat("writing ", path, ": ", strerror(errno)));
    }
  }
  if (absl::GetFlag(FLAGS_print)) {
    // The class's global counters, from its pinned .bss (the skeleton's layout).
    Bss bss;
    memset(&bss, 0, sizeof(bss));
    std::string bss_path = pins.Map("ghost_bpf.bss");
    int bfd = bpf_obj_get(bss_path.c_str());
    if (bfd < 0) return Fail(absl::StrCat("cannot open ", bss_path, ": ", strerror(errno)));
    struct bpf_map_info info;
    memset(&info, 0, sizeof(info));
    __u32 len = sizeof(info);
    if (bpf_map_get_info_by_fd(bfd, &info, &len) != 0) return Fail("reading the .bss map info");
    std::vector<char> raw(info.value_size);
    if (bpf_map_lookup_elem(bfd, &zero, raw.data()) != 0) return Fail("reading the .bss map");
    memcpy(&bss, raw.data(), std::min(raw.size(), sizeof(bss)));
    absl::StatusOr<int> live = LiveThreads(pins);
    if (!live.ok()) return Fail(std::string(live.status().message()));
    absl::PrintF("abi=%d fallback_runs=%d committed=%d bss_nr_cpus=%d msgs_dropped=%d "
                 "runs_by_agent=%d runs_by_fallback=%d runs_resumed=%d watchdog_moves=%d "
                 "starved_runs=%d starved_pinned=%d starved_agent_cpu=%d fifo_placements=%d "
                 "slice_renewals=%d live_threads=%d\n",
                 ci.abi_version, ci.fallback_runs, bss.nr_txn_results[GHOST_TXN_COMMITTED],
                 bss.nr_cpus, ci.msgs_dropped,
                 bss.nr_runs_committed + bss.nr_runs_ring + bss.nr_runs_pinned,
                 bss.nr_runs_fallback,
                 bss.nr_runs_resumed, bss.nr_watchdog_moves, bss.nr_starved_runs,
                 bss.nr_starved_runs_pinned, bss.nr_starved_runs_agent_cpu,
                 bss.nr_enqueued + bss.nr_direct, bss.nr_slice_renewals,
                 *live);
    // The fast path (fast_path.bpf.h): claims by CPUs of the ring's node and
    // by other nodes' CPUs, ring runs, drops by reason, refused settles.
    uint64_t pops = 0, steals = 0;
    for (int c = 0; c < GHOST_MAX_CPUS; c++) {
      pops += bss.ring_cpu_pops[c];
      steals += bss.ring_cpu_steals[c];
    }
    std::string stale;
    for (int r = 1; r <= GHOST_RING_STALE_LAST; r++) {
      absl::StrAppend(&stale, r > 1 ? "," : "", bss.nr_ring_stale[r]);
    }
    absl::PrintF("ring_pops=%d ring_steals=%d ring_runs=%d ring_stale=%s ring_settle_errors=%d "
                 "doorbells=%d doorbell_kicks=%d ring_skips_agent_cpu=%d\n",
                 pops, steals, bss.nr_runs_ring, stale, bss.nr_ring_settle_errors, bss.nr_doorbells,
                 bss.nr_doorbell_kicks, bss.nr_ring_skips_agent_cpu);
    if (enclave >= 0) {
      std::vector<ghost_queue_word> queues(GHOST_MAX_QUEUES);
      if (!ReadArray(pins, "queue_words", queues)) return Fail("cannot read the queue words");
      uint64_t dropped = 0;
      int n = 0;
      for (const ghost_queue_word& q : queues) {
        if ((q.flags & GHOST_QUEUE_INUSE) && q.enclave == static_cast<__u32>(enclave)) {
          dropped += q.dropped;
          n++;
        }
      }
      int threads = -1;  // reading every status word is slow: only when asked
      if (absl::GetFlag(FLAGS_count_threads)) {
        std::vector<ghost_status_word> words(GHOST_MAX_THREADS);
        if (!ReadArray(pins, "status_words", words)) return Fail("cannot read the status words");
        threads = 0;
        for (const ghost_status_word& w : words) {
          threads += (w.flags & GHOST_SW_INUSE) && !(w.flags & GHOST_SW_DEAD) &&
                     w.enclave == static_cast<__u32>(enclave);
        }
      }
      const __u64* runs = bss.enclave_runs[enclave];
      absl::PrintF("e_committed=%d e_fallback=%d e_resumed=%d e_starved=%d e_wait_max_us=%d "
                   "e_dropped=%d e_queues=%d e_threads=%d e_ring=%d e_pinned=%d e_placed=%d\n",
                   runs[ghost::kRunCommitted], runs[ghost::kRunFallback],
                   runs[ghost::kRunResumed], runs[ghost::kRunStarved],
                   bss.enclave_wait_max_ns[enclave] / 1000, dropped, n, threads,
                   runs[ghost::kRunRing], runs[ghost::kRunPinned],
                   runs[ghost::kRunCommitted] + runs[ghost::kRunRing] + runs[ghost::kRunPinned]);
    }
  }
  return 0;
}
