#include "userspace/agent_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace ghost {
namespace {

// mkdir -p of the lock's directory; new directories are 0755.
void MakeParents(const std::string& path) {
  for (size_t i = 1; i < path.size(); i++) {
    if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
}

// The lock's own directory must be a real directory of ours that no one
// else may write: otherwise another user could replace the lock file.
absl::Status CheckDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot use the lock directory ", dir, ": ", strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the lock directory ", dir, " is not a directory (a symlink?)"));
  }
  if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the lock directory %s belongs to uid %d with mode %04o: it must be ours and writable "
        "by no one else",
        dir, st.st_uid, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

struct flock WholeFile(short type) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  return fl;  // l_start = l_len = 0: the whole file
}

std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  int pid;
  if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &pid)) return absl::StrCat(pid);
  return "?";
}

}  // namespace

std::string AgentLockPaths::Enclave(uint32_t enclave) const {
  return absl::StrCat(dir, "/enclave-", enclave, ".lock");
}

absl::StatusOr<AgentLock> AgentLock::AcquireWithin(const std::string& path, int timeout_ms) {
  if (path.empty()) return absl::InvalidArgumentError("empty lock file path");
  MakeParents(path);
  if (absl::Status s = CheckDirectory(path); !s.ok()) return s;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the agent lock ", path, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      fchmod(fd, 0600) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("the agent lock ", path, " is not a regular file of ours"));
  }
  for (int waited = 0;; waited += 10) {
    struct flock fl = WholeFile(F_WRLCK);
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) break;
    int err = errno;
    if (err != EAGAIN && err != EACCES && err != EINTR) {
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("cannot lock ", path, ": ", strerror(err)));
    }
    if (waited >= timeout_ms) {
      std::string holder = HolderPid(fd);
      close(fd);
      return absl::AlreadyExistsError(absl::StrCat(
          "another ghost-agent (pid ", holder, ") is running: it holds ", path));
    }
    struct timespec ten_ms = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    nanosleep(&ten_ms, nullptr);
  }
  // Who holds it, for the refusal message of the next one and for --upgrade.
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the refusal message loses the pid; the lock itself holds.
  }
  return AgentLock(fd);
}

absl::StatusOr<AgentLock> AgentLock::Acquire(const std::string& path) {
  return AcquireWithin(path, 0);
}

bool AgentLock::Held(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  // A read lock is enough to test against a holder's write lock.
  struct flock fl = WholeFile(F_RDLCK);
  bool held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  close(fd);
  return held;
}

pid_t AgentLock::Holder(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  int pid = 0;
  std::string s = HolderPid(fd);
  close(fd);
  return absl::SimpleAtoi(s, &pid) ? pid : 0;
}

AgentLock& AgentLock::operator=(AgentLock&& o) noexcept {
  if (this != &o) {
    Unlock();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void AgentLock::Unlock() {
  if (fd_ >= 0) close(fd_);  // the last reference to the description: unlocked
  fd_ = -1;
}

AgentLock::~AgentLock() { Unlock(); }

}  // namespace ghost
