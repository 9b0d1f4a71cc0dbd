// class_probe: looks at a pinned ghost class from outside any agent, for the
// scenarios (agent_restart; the placement checks of clients_*, policies, ghost_run,
// bench_workloads).
//
//   class_probe [--pin-dir=D] --print          abi=N fallback_runs=N committed=N
//                                              bss_nr_cpus=N runs_by_agent=N runs_by_fallback=N
//                                              runs_resumed=N watchdog_moves=N starved_runs=N
//                                              fifo_placements=N live_threads=N
//                                              (committed: transactions that ran, class-wide;
//                                              bss_nr_cpus: set by ops.init in the class's .bss;
//                                              runs_*: runs of enclave threads by who placed
//                                              them; watchdog_moves, starved_runs: why the
//                                              fallback ran them (waited --watchdog-ms, or
//                                              ran on a CPU the kernel's ext server lent to
//                                              sched_ext); fifo_placements: threads of no enclave
//                                              queued in the class's FIFO; live_threads:
//                                              status words owned by a thread that has not
//                                              ended)
//   class_probe [--pin-dir=D] --set-abi=N      rewrite class_info.abi_version
//   class_probe --watch-pid=PID                until PID exits, sample its threads'
//                                              ext.enabled every 20 ms; exit 1 if
//                                              any live thread was ever off sched_ext
#include <linux/types.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
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

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: class_probe [--print | --set-abi=N | --watch-pid=P]");
  if (int pid = absl::GetFlag(FLAGS_watch_pid); pid > 0) return Watch(pid);
  const ghost::ClassPins pins = {.dir = absl::GetFlag(FLAGS_pin_dir)};
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
    using Bss = std::remove_pointer_t<decltype(ghost_bpf::bss)>;
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
    absl::PrintF("abi=%d fallback_runs=%d committed=%d bss_nr_cpus=%d runs_by_agent=%d "
                 "runs_by_fallback=%d runs_resumed=%d watchdog_moves=%d starved_runs=%d "
                 "starved_pinned=%d fifo_placements=%d live_threads=%d\n",
                 ci.abi_version, ci.fallback_runs, bss.nr_txn_results[GHOST_TXN_COMMITTED],
                 bss.nr_cpus, bss.nr_runs_committed, bss.nr_runs_fallback, bss.nr_runs_resumed,
                 bss.nr_watchdog_moves, bss.nr_starved_runs, bss.nr_starved_runs_pinned,
                 bss.nr_enqueued + bss.nr_direct,
                 *live);
  }
  return 0;
}
