// pin_access: what a user can do with the pinned class and the agents' lock
// files, for the unprivileged scenario.
//
//   pin_access --check-modes    (root) every pin and lock is root's, with
//                               directories 0700 (pins) / 0755 (locks) and
//                               files 0600; prints each, exit 1 on a wrong one
//   pin_access --expect-denied  (a user) opening, bpf_obj_get-ing and mmapping
//                               every pin, opening and locking every lock
//                               file, and creating a file in each directory
//                               all fail; prints each, exit 1 on a success
#include <linux/types.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/agent_lock.h"
#include "userspace/class_pins.h"
#include "userspace/enrollment.h"
#include "userspace/flags.h"

ABSL_FLAG(std::string, pin_dir, ghost::kDefaultPinDir, "Where the class is pinned.");
ABSL_FLAG(std::string, lock_dir, ghost::kDefaultLockDir, "The agents' lock directory.");
ABSL_FLAG(bool, check_modes, false, "Check owners and modes (run as root).");
ABSL_FLAG(bool, expect_denied, false, "Try every access (run as a user): all must fail.");

namespace {

struct Entry {
  std::string path;
  bool dir;
};

void Walk(const std::string& path, std::vector<Entry>& out) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  out.push_back({path, S_ISDIR(st.st_mode)});
  if (!S_ISDIR(st.st_mode)) return;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return;  // a user cannot list it: the root's stat is enough
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
  }
  closedir(d);
  for (const std::string& n : names) Walk(path + "/" + n, out);
}

int CheckModes(const std::vector<Entry>& pins, const std::vector<Entry>& locks) {
  int bad = 0;
  auto check = [&](const Entry& e, unsigned want) {
    struct stat st;
    if (lstat(e.path.c_str(), &st) != 0) return;
    bool ok = st.st_uid == 0 && (st.st_mode & 07777) == want;
    absl::PrintF("%s: %s uid %d mode %04o (want uid 0 mode %04o)\n", ok ? "ok" : "WRONG", e.path,
                 st.st_uid, st.st_mode & 07777, want);
    bad += !ok;
  };
  for (const Entry& e : pins) check(e, e.dir ? 0700 : 0600);
  for (const Entry& e : locks) check(e, e.dir ? 0755 : 0600);
  return bad == 0 && !pins.empty() && !locks.empty() ? 0 : 1;
}

int ExpectDenied(const std::vector<Entry>& pins, const std::vector<Entry>& locks) {
  int allowed = 0;
  auto report = [&](const std::string& what, const std::string& path, bool ok, int err) {
    absl::PrintF("%s: %s %s%s\n", ok ? "ALLOWED" : "denied", what, path,
                 ok ? "" : absl::StrCat(" (", strerror(err), ")"));
    allowed += ok;
  };
  for (const Entry& e : pins) {
    if (e.dir) {
      std::string p = e.path + "/intruder";
      bool ok = mkdir(p.c_str(), 0777) == 0;
      report("mkdir in", e.path, ok, errno);
      continue;
    }
    int fd = open(e.path.c_str(), O_RDONLY);
    report("open", e.path, fd >= 0, errno);
    if (fd >= 0) close(fd);
    fd = bpf_obj_get(e.path.c_str());
    report("bpf_obj_get", e.path, fd >= 0, errno);
    if (fd >= 0) {
      void* m = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
      report("mmap", e.path, m != MAP_FAILED, errno);
      if (m != MAP_FAILED) munmap(m, 4096);
      close(fd);
    }
  }
  for (const Entry& e : locks) {
    if (e.dir) {
      std::string p = e.path + "/intruder.lock";
      int fd = open(p.c_str(), O_RDWR | O_CREAT, 0666);
      report("create in", e.path, fd >= 0, errno);
      if (fd >= 0) close(fd);
      continue;
    }
    int fd = open(e.path.c_str(), O_RDONLY);
    report("open", e.path, fd >= 0, errno);
    if (fd >= 0) close(fd);
  }
  // Even through a path it can name, a user never holds an agent's lock.
  for (const Entry& e : locks) {
    if (e.dir) continue;
    absl::StatusOr<ghost::AgentLock> l = ghost::AgentLock::Acquire(e.path);
    report("lock", e.path, l.ok(), EACCES);
  }
  return allowed == 0 && !pins.empty() && !locks.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ghost::ParseFlagsOrExit(argc, argv, "usage: pin_access --check-modes | --expect-denied");
  std::vector<Entry> pins, locks;
  Walk(absl::GetFlag(FLAGS_pin_dir), pins);
  Walk(absl::GetFlag(FLAGS_lock_dir), locks);
  if (absl::GetFlag(FLAGS_check_modes)) return CheckModes(pins, locks);
  if (absl::GetFlag(FLAGS_expect_denied)) {
    // A user cannot list the pin directory: name what is in it.
    const ghost::ClassPins p = {.dir = absl::GetFlag(FLAGS_pin_dir)};
    pins.push_back({p.MapsDir(), true});
    for (const std::string& path :
         {p.Link(), p.Enroll(), p.Map("status_words"), p.Map("queue_words"), p.Map("txn_slots"),
          p.Map("enclave_words"), p.Map("class_info"), p.Map("enroll"), p.Map("agent_tids"),
          p.Map("ghost_bpf.bss"), p.Map("ghost_bpf.data")}) {
      pins.push_back({path, false});
    }
    return ExpectDenied(pins, locks);
  }
  absl::FPrintF(stderr, "pin_access: give --check-modes or --expect-denied\n");
  return 2;
}
