#include "userspace/agent.h"

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"
#include "userspace/run_request.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

// Commits the newest thread it heard of to CPU 1, with the agent's barrier.
class CommitNewest : public Scheduler {
 public:
  explicit CommitNewest(KernelSide& k) : req_(k, 1) {}
  void TaskNew(const Message& m) override {
    newest_ = m.tid();
    seq_ = m.seqnum();
  }
  void Schedule(Agent& agent) override {
    ++schedules;
    if (before_commit) before_commit();
    if (newest_ == GHOST_TID_NONE) return;
    ASSERT_TRUE(req_.Open({.target = newest_,
                           .target_barrier = seq_,
                           .agent_barrier = agent.barrier(),
                           .queue = agent.queue()})
                    .ok());
    req_.Commit();
    results.push_back(req_.result());
  }
  std::function<void()> before_commit;
  std::vector<uint32_t> results;
  int schedules = 0;

 private:
  RunRequest req_;
  Tid newest_ = GHOST_TID_NONE;
  uint64_t seq_ = 0;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = Enclave::Create(kernel_, {.cpus = CpuList::FirstN(2)});
    ASSERT_TRUE(e.ok()) << e.status();
    enclave_ = std::move(*e);
  }
  FakeKernelSide kernel_{2};
  std::unique_ptr<Enclave> enclave_;
};

TEST_F(AgentTest, DrainsThenSchedules) {
  CommitNewest sched(kernel_);
  Agent agent(kernel_, sched, {.cpu = 0, .queue = enclave_->default_queue()});
  EXPECT_EQ(agent.RunOnce(), 0u);  // Schedule runs even with nothing new
  EXPECT_EQ(sched.schedules, 1);
  kernel_.NewThread();
  Tid b = kernel_.NewThread();
  EXPECT_EQ(agent.RunOnce(), 2u);
  EXPECT_EQ(agent.barrier(), 2u);
  ASSERT_EQ(sched.results.size(), 1u);
  EXPECT_EQ(sched.results[0], GHOST_TXN_COMMITTED);
  EXPECT_EQ(kernel_.CurrentOn(1), b);
  EXPECT_EQ(agent.messages(), 2u);
  EXPECT_EQ(agent.rounds(), 2u);
}

// --stats reads what woke an agent by type: messages read, and how many of
// them the class marked class-held (those wake no agent).
TEST_F(AgentTest, CountsMessagesByTypeAndClassHeld) {
  CommitNewest sched(kernel_);
  Agent agent(kernel_, sched, {.cpu = 0, .queue = enclave_->default_queue()});
  const Tid a = kernel_.NewThread();
  kernel_.NewThread();
  kernel_.set_class_held(a, true);
  kernel_.SetAffinityWhileRunning(a, CpuList::FirstN(1));
  kernel_.SetAffinityWhileRunning(a, CpuList::FirstN(2));
  EXPECT_EQ(agent.RunOnce(), 4u);
  EXPECT_EQ(agent.MessagesByType(), "TASK_NEW=2 TASK_AFFINITY_CHANGED=2 (held 2)");
}

// The barrier is read before draining: a message that lands while the agent
// drains is handled in this round, yet the round's commit is AGENT_STALE.
TEST_F(AgentTest, BarrierIsReadBeforeDraining) {
  CommitNewest sched(kernel_);
  Agent agent(kernel_, sched, {.cpu = 0, .queue = enclave_->default_queue()});
  kernel_.NewThread();
  bool injected = false;
  kernel_.set_on_consume([&](QueueId, const ghost_msg&) {
    if (!injected) {
      injected = true;
      kernel_.NewThread();
    }
  });
  EXPECT_EQ(agent.RunOnce(), 2u);
  EXPECT_EQ(agent.barrier(), 1u);
  ASSERT_EQ(sched.results.size(), 1u);
  EXPECT_EQ(sched.results[0], GHOST_TXN_AGENT_STALE);
  // Nothing new: the next round's barrier is current.
  kernel_.set_on_consume(nullptr);
  EXPECT_EQ(agent.RunOnce(), 0u);
  EXPECT_EQ(sched.results.back(), GHOST_TXN_COMMITTED);
}

TEST_F(AgentTest, MessageAfterDrainMakesCommitStale) {
  CommitNewest sched(kernel_);
  Agent agent(kernel_, sched, {.cpu = 0, .queue = enclave_->default_queue()});
  kernel_.NewThread();
  bool once = true;
  sched.before_commit = [&] {
    if (once) kernel_.NewThread();  // a message about another thread
    once = false;
  };
  agent.RunOnce();
  ASSERT_EQ(sched.results.size(), 1u);
  EXPECT_EQ(sched.results[0], GHOST_TXN_AGENT_STALE);
  EXPECT_EQ(kernel_.CurrentOn(1), GHOST_TID_NONE);
}

TEST_F(AgentTest, RunStopsWhenAsked) {
  CommitNewest sched(kernel_);
  std::atomic<bool> stop{false};
  sched.before_commit = [&] {
    if (sched.schedules == 5) stop = true;
  };
  for (bool global : {false, true}) {
    sched.schedules = 0;
    stop = false;
    Agent agent(kernel_, sched,
                {.cpu = 0, .queue = enclave_->default_queue(), .global = global});
    agent.Run(stop);
    EXPECT_EQ(sched.schedules, 5);
    EXPECT_EQ(agent.global(), global);
  }
}

// The agent threads keep their enclave's heartbeat from their rounds (the
// process's fair-class main thread can be starved by RT threads on every CPU),
// at most every 20 ms: a spinning agent makes far more rounds than that.
TEST_F(AgentTest, RoundsKeepTheHeartbeatAtAModestRate) {
  CommitNewest sched(kernel_);
  std::atomic<bool> stop{false};
  Agent agent(kernel_, sched,
              {.cpu = 0, .queue = enclave_->default_queue(), .global = true});
  std::thread runner([&] { agent.Run(stop); });
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (kernel_.agent_heartbeats() < 3 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  stop = true;
  runner.join();
  EXPECT_GE(kernel_.agent_heartbeats(), 3);
  EXPECT_LT(kernel_.agent_heartbeats() * 10, sched.schedules);
}

// What another thread posts runs on the agent's own thread, between two
// rounds. (That it also wakes an agent blocked on its queue needs a pollable
// queue, which the fake lacks: the VM runs cover it.)
TEST_F(AgentTest, RunsWhatIsPostedOnItsThreadBetweenRounds) {
  CommitNewest sched(kernel_);
  std::atomic<bool> stop{false};
  Agent agent(kernel_, sched,
              {.cpu = 0, .queue = enclave_->default_queue()});
  std::atomic<int> schedules{0};
  sched.before_commit = [&] { schedules = sched.schedules; };
  std::thread runner([&] { agent.Run(stop); });
  while (schedules.load() == 0) absl::SleepFor(absl::Milliseconds(1));
  absl::Notification ran;
  std::thread::id ran_on;
  int rounds_before = -1;
  agent.RunBetweenRounds([&] {
    ran_on = std::this_thread::get_id();
    rounds_before = sched.schedules;
    ran.Notify();
  });
  const bool in_time = ran.WaitForNotificationWithTimeout(absl::Seconds(20));
  const std::thread::id agent_thread = runner.get_id();
  stop = true;
  agent.Wake();
  runner.join();
  ASSERT_TRUE(in_time) << "the posted function did not run";
  EXPECT_EQ(ran_on, agent_thread);
  EXPECT_GE(rounds_before, 1);  // after a whole round, never inside one
}

}  // namespace
}  // namespace ghost
