// Agents waking each other: AgentWakeup itself, Agent::Wait, and the per-CPU
// FIFO waking the agent it hands a thread to. No timings: a wait with a long
// timeout either returns with OK (woken) or, if the wake-up were lost, runs
// into that timeout and fails with DeadlineExceeded.
#include "userspace/agent_wakeup.h"

#include <unistd.h>

#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/agent.h"
#include "userspace/enclave.h"
#include "userspace/policies/fifo_per_cpu.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"

namespace ghost {
namespace {

constexpr absl::Duration kLong = absl::Seconds(30);  // "forever" for a test
constexpr absl::Duration kShort = absl::Milliseconds(10);

// A pipe nobody writes to: a queue fd that never polls readable.
class QuietPipe {
 public:
  QuietPipe() { EXPECT_EQ(pipe(fds_), 0); }
  ~QuietPipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int read_fd() const { return fds_[0]; }
  int write_fd() const { return fds_[1]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST(AgentWakeupTest, WaitWithoutWakeOrMessageTimesOut) {
  AgentWakeup w;
  ASSERT_TRUE(w.valid());
  QuietPipe q;
  EXPECT_TRUE(absl::IsDeadlineExceeded(w.Wait(q.read_fd(), kShort)));
}

TEST(AgentWakeupTest, WakeFromAnotherThreadEndsAWait) {
  AgentWakeup w;
  QuietPipe q;
  std::thread waker([&] { w.Wake(); });
  EXPECT_TRUE(w.Wait(q.read_fd(), kLong).ok());
  waker.join();
}

TEST(AgentWakeupTest, WakeBeforeTheWaitIsKeptAndConsumedOnce) {
  AgentWakeup w;
  QuietPipe q;
  w.Wake();
  w.Wake();
  EXPECT_TRUE(w.Wait(q.read_fd(), kLong).ok());
  // Both wake-ups were for that one wait.
  EXPECT_TRUE(absl::IsDeadlineExceeded(w.Wait(q.read_fd(), kShort)));
}

TEST(AgentWakeupTest, ReadableQueueEndsAWait) {
  AgentWakeup w;
  QuietPipe q;
  ASSERT_EQ(write(q.write_fd(), "m", 1), 1);
  EXPECT_TRUE(w.Wait(q.read_fd(), kLong).ok());
}

// The fake kernel side with a pollable queue fd that never becomes readable:
// only a wake-up can end an agent's wait early.
class PollableFake : public testing::FakeKernelSide {
 public:
  using FakeKernelSide::FakeKernelSide;
  int QueueFd(QueueId) const override { return quiet_.read_fd(); }

 private:
  QuietPipe quiet_;
};

TEST(AgentWakeupTest, AgentWaitEndsOnWake) {
  PollableFake kernel(2);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(2)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  auto policy = MakePolicy({.name = "fifo-per-cpu"}, **enclave);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Agent& a = *(*policy)->agents()[1];
  a.RunOnce();
  EXPECT_TRUE(absl::IsDeadlineExceeded(a.Wait(kShort)));
  std::thread waker([&] { a.Wake(); });
  EXPECT_TRUE(a.Wait(kLong).ok());
  waker.join();
}

// A thread handed to a CPU that runs nothing is committed there by the agent
// that placed it: the receiving agent sleeps on (its wake-up would cost more
// than the commit, and delay the thread: the affinity-churn case).
TEST(AgentWakeupTest, FifoPerCpuHandOffToAnIdleCpuCommitsThereWithoutWaking) {
  PollableFake kernel(2);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(2)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  auto policy = MakePolicy({.name = "fifo-per-cpu", .clock = [&] { return kernel.NowNs(); }},
                           **enclave);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Agent& a0 = *(*policy)->agents()[0];
  Agent& a1 = *(*policy)->agents()[1];
  ASSERT_EQ(a0.cpu(), 0);
  ASSERT_EQ(a1.cpu(), 1);
  a1.RunOnce();  // its barrier is current: only a wake-up ends its wait

  const Tid tid = kernel.NewThread((*enclave)->id());
  kernel.SetAffinity(tid, CpuList({1}));
  a0.RunOnce();  // reads TASK_NEW on the default queue, commits it to CPU 1
  EXPECT_EQ(kernel.CurrentOn(1), tid);
  EXPECT_TRUE(absl::IsDeadlineExceeded(a1.Wait(kShort)));
}

// A thread handed to a CPU that is busy waits in that CPU's runqueue, and its
// agent is woken rather than left blocked on an empty queue until its poll
// timeout (as in ghOSt).
TEST(AgentWakeupTest, FifoPerCpuHandOffToABusyCpuWakesItsAgent) {
  PollableFake kernel(2);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(2)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  auto policy = MakePolicy({.name = "fifo-per-cpu", .clock = [&] { return kernel.NowNs(); }},
                           **enclave);
  ASSERT_TRUE(policy.ok()) << policy.status();
  Agent& a0 = *(*policy)->agents()[0];
  Agent& a1 = *(*policy)->agents()[1];
  const Tid first = kernel.NewThread((*enclave)->id());
  kernel.SetAffinity(first, CpuList({1}));
  a0.RunOnce();
  ASSERT_EQ(kernel.CurrentOn(1), first);
  a1.RunOnce();  // reads the result: CPU 1 runs `first`
  EXPECT_TRUE(absl::IsDeadlineExceeded(a1.Wait(kShort)));

  absl::Status woke = absl::UnknownError("not returned");
  std::thread receiver([&] { woke = a1.Wait(kLong); });
  const Tid second = kernel.NewThread((*enclave)->id());
  kernel.SetAffinity(second, CpuList({1}));
  a0.RunOnce();  // hands it to CPU 1's runqueue, behind `first`
  receiver.join();
  EXPECT_TRUE(woke.ok()) << woke;
  EXPECT_EQ(kernel.CurrentOn(1), first);
  kernel.Block(first);
  a1.RunOnce();
  EXPECT_EQ(kernel.CurrentOn(1), second);
}

}  // namespace
}  // namespace ghost
