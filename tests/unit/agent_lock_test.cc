#include "userspace/agent_lock.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ghost {
namespace {

std::string TempLockPath() {
  char dir[] = "/tmp/agent_lock_test.XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  return absl::StrCat(dir, "/sub/agent.lock");  // the directory is made too
}

TEST(AgentLockTest, SecondAgentIsRefusedAndNamesTheHolder) {
  std::string path = TempLockPath();
  absl::StatusOr<AgentLock> first = AgentLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<AgentLock> second = AgentLock::Acquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", getpid())), absl::string_view::npos)
      << second.status().message();
  EXPECT_EQ(second.status().message().find('\n'), absl::string_view::npos);
}

TEST(AgentLockTest, ReleasedWhenTheHolderGoes) {
  std::string path = TempLockPath();
  {
    absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
    ASSERT_TRUE(held.ok()) << held.status();
  }
  EXPECT_TRUE(AgentLock::Acquire(path).ok());
}

TEST(AgentLockTest, ReleasedWhenTheHolderIsKilled) {
  std::string path = TempLockPath();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
    char c = held.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_FALSE(AgentLock::Acquire(path).ok());
  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  // The kernel dropped the dead holder's lock: no stale-lock cleanup needed.
  EXPECT_TRUE(AgentLock::AcquireWithin(path, 2000).ok());
  close(ready[0]);
  close(ready[1]);
}

TEST(AgentLockTest, WaitsForAHolderThatLetsGo) {
  std::string path = TempLockPath();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
    usleep(300 * 1000);
    _exit(held.ok() ? 0 : 1);
  }
  // Either the child holds it and lets go within the wait, or we got it first;
  // both must succeed within the timeout.
  absl::StatusOr<AgentLock> got = AgentLock::AcquireWithin(path, 5000);
  EXPECT_TRUE(got.ok()) << got.status();
  int status;
  waitpid(child, &status, 0);
}

TEST(AgentLockTest, HeldTellsWithoutTaking) {
  std::string path = TempLockPath();
  EXPECT_FALSE(AgentLock::Held(path));  // no file yet
  {
    absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_TRUE(AgentLock::Held(path));
    EXPECT_EQ(AgentLock::Holder(path), getpid());
    // Asking took nothing: the holder still holds, nobody else gets it.
    EXPECT_TRUE(AgentLock::Held(path));
    EXPECT_FALSE(AgentLock::Acquire(path).ok());
  }
  EXPECT_FALSE(AgentLock::Held(path));
  // ...and asking about a free lock does not keep a starting agent out.
  EXPECT_TRUE(AgentLock::Acquire(path).ok());
}

TEST(AgentLockTest, UnlockLetsGoAtOnce) {
  std::string path = TempLockPath();
  absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
  ASSERT_TRUE(held.ok()) << held.status();
  held->Unlock();
  EXPECT_FALSE(AgentLock::Held(path));
  EXPECT_TRUE(AgentLock::Acquire(path).ok());
}

TEST(AgentLockTest, LockFilesAreOursAloneWhateverTheUmask) {
  std::string path = TempLockPath();
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  mode_t old = umask(0);
  // A lock file left readable by all (an older agent, a careless umask)
  // would let any user hold it and keep every agent out.
  int fd = open(path.c_str(), O_RDWR | O_CREAT, 0666);
  ASSERT_GE(fd, 0);
  close(fd);
  absl::StatusOr<AgentLock> held = AgentLock::Acquire(path);
  umask(old);
  ASSERT_TRUE(held.ok()) << held.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(AgentLockTest, ADirectoryOthersMayWriteIsRefused) {
  std::string path = TempLockPath();
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);  // anyone could swap the lock file
  absl::StatusOr<AgentLock> l = AgentLock::Acquire(path);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(l.status().message().find("writable by no one else"), absl::string_view::npos)
      << l.status().message();
  EXPECT_EQ(l.status().message().find('\n'), absl::string_view::npos);
}

TEST(AgentLockTest, ASymlinkedLockFileIsRefused) {
  std::string path = TempLockPath();
  std::string dir = path.substr(0, path.rfind('/'));
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(symlink("/tmp/elsewhere.lock", path.c_str()), 0);
  EXPECT_FALSE(AgentLock::Acquire(path).ok());
}

TEST(AgentLockTest, OneLockPerEnclave) {
  AgentLockPaths locks = {.dir = "/run/x"};
  EXPECT_EQ(locks.Class(), "/run/x/class.lock");
  EXPECT_EQ(locks.Enclave(3), "/run/x/enclave-3.lock");
}

TEST(AgentLockTest, UnusablePathIsOneLine) {
  absl::StatusOr<AgentLock> l = AgentLock::Acquire("/proc/no/such/dir/agent.lock");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message().find('\n'), absl::string_view::npos);
}

}  // namespace
}  // namespace ghost
