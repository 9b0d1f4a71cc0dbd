#include "userspace/agent_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ghost {
namespace {

// mkdir -p of the lock's directory.
void MakeParents(const std::string& path) {
  for (size_t i = 1; i < path.size(); i++) {
    if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
}

std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  int pid;
  if (n > 0 && absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &pid)) return absl::StrCat(pid);
  return "?";
}

}  // namespace

absl::StatusOr<AgentLock> AgentLock::AcquireWithin(const std::string& path, int timeout_ms) {
  if (path.empty()) return absl::InvalidArgumentError("empty lock file path");
  MakeParents(path);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the agent lock ", path, ": ", strerror(errno)));
  }
  for (int waited = 0;; waited += 10) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    int err = errno;
    if (err != EWOULDBLOCK && err != EINTR) {
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
  // Who holds it, for the refusal message of the next one.
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Only the refusal message loses the pid; the lock itself holds.
  }
  return AgentLock(fd);
}

absl::StatusOr<AgentLock> AgentLock::Acquire(const std::string& path) {
  return AcquireWithin(path, 0);
}

AgentLock& AgentLock::operator=(AgentLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

AgentLock::~AgentLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

}  // namespace ghost
