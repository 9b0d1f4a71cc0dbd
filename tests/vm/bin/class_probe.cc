// class_probe: looks at a pinned ghost class from outside any agent, for the
// agent_restart scenario.
//
//   class_probe [--pin-dir=D] --print          abi=N fallback_runs=N committed=N
//                                              (committed: transactions that ran, class-wide;
//                                              bss_nr_cpus: set by ops.init in the class's .bss)
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
    absl::PrintF("abi=%d fallback_runs=%d committed=%d bss_nr_cpus=%d\n", ci.abi_version,
                 ci.fallback_runs, bss.nr_txn_results[GHOST_TXN_COMMITTED], bss.nr_cpus);
  }
  return 0;
}
