#include "userspace/agent_lock.h"

#include <stdlib.h>
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

TEST(AgentLockTest, UnusablePathIsOneLine) {
  absl::StatusOr<AgentLock> l = AgentLock::Acquire("/proc/no/such/dir/agent.lock");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message().find('\n'), absl::string_view::npos);
}

}  // namespace
}  // namespace ghost
