#include "userspace/enrollment.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kernel/ghost_abi.h"
#include "userspace/class_pins.h"

namespace ghost {

absl::StatusOr<Enrollment> Enrollment::Open(const std::string& pin_dir) {
  std::string path = absl::StrCat(pin_dir, "/enroll");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no ghost class is running (", path,
                                              " is missing): start ghost-agent first"));
    }
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", strerror(err)));
  }
  std::string words = absl::StrCat(pin_dir, "/maps/enclave_words");
  int enclaves_fd = bpf_obj_get(words.c_str());
  if (enclaves_fd < 0) {
    int err = errno;
    close(fd);
    return absl::NotFoundError(absl::StrCat("cannot open ", words, ": ", strerror(err)));
  }
  return Enrollment(fd, enclaves_fd);
}

Enrollment::~Enrollment() {
  if (fd_ >= 0) close(fd_);
  if (enclaves_fd_ >= 0) close(enclaves_fd_);
}

absl::StatusOr<CpuList> Enrollment::EnclaveCpus(EnclaveId enclave) const {
  __u32 key = enclave;
  ghost_enclave_word w;
  if (enclave >= GHOST_MAX_ENCLAVES || bpf_map_lookup_elem(enclaves_fd_, &key, &w) != 0 ||
      !(w.flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(absl::StrCat("there is no enclave ", enclave,
                                            ": start a ghost-agent with --enclave=", enclave));
  }
  return CpuList::FromMask(w.cpus);
}

void ConfineToCpus(pid_t tid, const CpuList& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(tid, sizeof(set), &set) != 0) return;
  cpu_set_t within;
  CPU_ZERO(&within);
  bool any = false, narrower = false;
  for (int cpu = 0; cpu < CPU_SETSIZE && cpu < GHOST_MAX_CPUS; cpu++) {
    if (!CPU_ISSET(cpu, &set)) continue;
    if (cpus.IsSet(cpu)) {
      CPU_SET(cpu, &within);
      any = true;
    } else {
      narrower = true;
    }
  }
  if (any && narrower) sched_setaffinity(tid, sizeof(within), &within);
}

absl::Status Enrollment::Enroll(pid_t pid, EnclaveId enclave) {
  __u32 key = static_cast<__u32>(pid), value = enclave;
  if (bpf_map_update_elem(fd_, &key, &value, BPF_ANY) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("enrolling pid ", pid, " in enclave ", enclave, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CheckEnclaveInUse(const std::string& pin_dir, EnclaveId enclave) {
  if (enclave >= GHOST_MAX_ENCLAVES) {
    return absl::InvalidArgumentError(
        absl::StrCat("enclave ", enclave, " is out of range (0..", GHOST_MAX_ENCLAVES - 1, ")"));
  }
  std::string path = ClassPins{.dir = pin_dir}.Map("enclave_words");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrCat("no ghost class is running (", path,
                                              " is missing): start ghost-agent first"));
    }
    return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", strerror(err)));
  }
  __u32 key = enclave;
  ghost_enclave_word word = {};
  int rc = bpf_map_lookup_elem(fd, &key, &word);
  int err = errno;
  close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("reading ", path, ": ", strerror(err)));
  if (!(word.flags & GHOST_ENCLAVE_INUSE)) {
    return absl::NotFoundError(
        absl::StrCat("enclave ", enclave, " is not in use: no agent runs it (ghost-agent "
                     "--policy=none runs none; its threads run in the class's FIFO)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<pid_t>> ProcessThreads(pid_t pid) {
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::vector<pid_t> tids;
  while (dirent* e = readdir(d)) {
    int tid;
    if (absl::SimpleAtoi(e->d_name, &tid)) tids.push_back(tid);
  }
  closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

absl::StatusOr<int> MoveProcess(Enrollment& enrollment, pid_t pid, EnclaveId enclave,
                                const CpuList& cpus) {
  std::set<pid_t> moved;
  // A clone racing the walk inherits SCHED_EXT if its parent was already
  // moved, but not its enrolment unless the parent's was there: scan until a
  // pass finds nothing new.
  for (int pass = 0; pass < 100; pass++) {
    absl::StatusOr<std::vector<pid_t>> tids = ProcessThreads(pid);
    if (!tids.ok()) {
      if (moved.empty()) return tids.status();
      break;  // the process exited meanwhile
    }
    bool fresh = false;
    for (pid_t tid : *tids) {
      if (moved.count(tid)) continue;
      fresh = true;
      if (absl::Status s = enrollment.Enroll(tid, enclave); !s.ok()) return s;
      ConfineToCpus(tid, cpus);
      sched_param p = {.sched_priority = 0};
      if (sched_setscheduler(tid, kSchedExt, &p) != 0) {
        if (errno == ESRCH) continue;  // exited
        return absl::PermissionDeniedError(
            absl::StrCat("moving thread ", tid, " to SCHED_EXT: ", strerror(errno)));
      }
      moved.insert(tid);
    }
    if (!fresh) return static_cast<int>(moved.size());
  }
  return static_cast<int>(moved.size());
}

}  // namespace ghost
