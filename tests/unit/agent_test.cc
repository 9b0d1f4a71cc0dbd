#include "userspace/agent.h"

#include <functional>
#include <memory>
#include <vector>

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

}  // namespace
}  // namespace ghost
