#include "userspace/discovery.h"

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/policy_test_util.h"
#include "userspace/policies/registry.h"
#include "userspace/message.h"

namespace ghost {
namespace {

ghost_status_word Word(uint64_t tid, uint32_t flags, uint32_t enclave, uint64_t seq = 1) {
  ghost_status_word w = {};
  w.lock = 2;
  w.flags = flags;
  w.tid = tid;
  w.seqnum = seq;
  w.enclave = enclave;
  w.cpu = 1;
  w.pid = static_cast<uint32_t>(tid + 1000);
  w.runtime_ns = 42;
  return w;
}

TEST(DiscoveryTest, FindsTheLiveThreadsOfOneEnclave) {
  std::vector<ghost_status_word> words(16);
  words[1] = Word(11, GHOST_SW_INUSE | GHOST_SW_RUNNABLE, 0, 7);
  words[3] = Word(13, GHOST_SW_INUSE, 0, 9);                      // blocked: still ours
  words[4] = Word(14, GHOST_SW_INUSE | GHOST_SW_DEAD, 0);         // gone
  words[5] = Word(15, GHOST_SW_INUSE | GHOST_SW_RUNNABLE, 1);     // other enclave
  words[6] = Word(16, GHOST_SW_RUNNABLE, 0);                      // free word
  words[7] = Word(17, GHOST_SW_INUSE | GHOST_SW_ON_CPU | GHOST_SW_RUNNABLE, 0, 3);
  words[8] = Word(18, GHOST_SW_INUSE | GHOST_SW_RUNNABLE, 0);
  words[8].lock = 3;  // a writer never leaves: skipped, not waited on forever
  std::vector<DiscoveredThread> found = DiscoverThreads(words.data(), words.size(), 0);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].sw_index, 1u);
  EXPECT_EQ(found[0].word.tid, 11u);
  EXPECT_EQ(found[1].sw_index, 3u);
  EXPECT_EQ(found[1].word.tid, 13u);
  EXPECT_EQ(found[2].sw_index, 7u);
  EXPECT_EQ(found[2].word.tid, 17u);
  ASSERT_EQ(DiscoverThreads(words.data(), words.size(), 1).size(), 1u);
  EXPECT_EQ(DiscoverThreads(words.data(), words.size(), 1)[0].word.tid, 15u);
}

TEST(DiscoveryTest, MessageIsATaskNewFromTheWord) {
  std::vector<ghost_status_word> words(4);
  words[2] = Word(21, GHOST_SW_INUSE | GHOST_SW_RUNNABLE, 0, 12);
  words[3] = Word(22, GHOST_SW_INUSE, 0, 5);
  std::vector<DiscoveredThread> found = DiscoverThreads(words.data(), words.size(), 0);
  ASSERT_EQ(found.size(), 2u);
  ghost_msg raw = DiscoveryMessage(found[0]);
  absl::StatusOr<Message> m = Message::Decode(&raw, sizeof(raw));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type(), GHOST_MSG_TASK_NEW);
  EXPECT_EQ(m->tid(), 21u);
  EXPECT_EQ(m->seqnum(), 12u);  // commits made from it are current, not stale
  EXPECT_EQ(raw.task_new.sw_index, 2u);
  EXPECT_EQ(raw.task_new.runnable, 1u);
  EXPECT_EQ(raw.task_new.pid, 1021u);
  EXPECT_EQ(raw.task_new.runtime_ns, 42u);
  EXPECT_EQ(raw.cpu, 1u);
  EXPECT_EQ(DiscoveryMessage(found[1]).task_new.runnable, 0u);
}

// An agent dies with three runnable threads it never placed; its queue and
// their messages are gone. A new agent on the same enclave number learns of
// them only from the status words, and runs them.
class TakeOverTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(TakeOverTest, NewAgentRunsThePreviousAgentsThreads) {
  const std::string policy = std::get<0>(GetParam());
  const bool take_over = std::get<1>(GetParam());
  testing::PolicyRig old_agent(4);
  ASSERT_TRUE(old_agent.Start(CpuList::FirstN(4), {.name = policy}));
  std::vector<Tid> tids;
  for (int i = 0; i < 3; i++) tids.push_back(old_agent.kernel.NewThread());
  testing::FakeKernelSide& kernel = old_agent.kernel;
  old_agent.policy.reset();
  old_agent.enclave.reset();  // its queue (holding the TASK_NEWs) goes with it

  absl::StatusOr<std::unique_ptr<Enclave>> e =
      Enclave::Create(kernel, {.cpus = CpuList::FirstN(4)});
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ((*e)->id(), 0u);
  absl::StatusOr<std::unique_ptr<Policy>> p = MakePolicy(
      {.name = policy, .clock = [&kernel] { return kernel.NowNs(); }}, **e);
  ASSERT_TRUE(p.ok()) << p.status();
  if (take_over) {
    EXPECT_EQ(TakeOverThreads(kernel, **e, **p).taken, 3);
  }
  for (int round = 0; round < 10; round++) {
    for (Agent* a : (*p)->agents()) a->RunOnce();
  }
  std::vector<Tid> running;
  for (int cpu = 0; cpu < 4; cpu++) {
    if (kernel.CurrentOn(cpu) != GHOST_TID_NONE) running.push_back(kernel.CurrentOn(cpu));
  }
  std::sort(running.begin(), running.end());
  if (take_over) {
    EXPECT_EQ(running, tids);
  } else {
    EXPECT_TRUE(running.empty());  // the control: nothing else tells the new agent
  }
}

// A message produced into a previous agent's queue while it was being retired
// makes the association fail; TakeOverThreads drains such stragglers and tries
// again (else the thread, whose last message may be the WAKEUP that lies in
// that queue, would be left to the fallback). Without a drain it is "missed".
TEST(TakeOverRetryTest, DrainsAStragglerAndTriesAgain) {
  for (bool drain : {true, false}) {
    testing::PolicyRig old_agent(4);
    ASSERT_TRUE(old_agent.Start(CpuList::FirstN(4), {.name = "fifo-centralized"}));
    std::vector<Tid> tids;
    for (int i = 0; i < 3; i++) tids.push_back(old_agent.kernel.NewThread());
    testing::FakeKernelSide& kernel = old_agent.kernel;
    old_agent.policy.reset();
    old_agent.enclave.reset();
    absl::StatusOr<std::unique_ptr<Enclave>> e =
        Enclave::Create(kernel, {.cpus = CpuList::FirstN(4)});
    ASSERT_TRUE(e.ok()) << e.status();
    // The previous agent's queue, still holding a late message about tids[1].
    absl::StatusOr<QueueId> old_queue = (*e)->CreateQueue({});
    ASSERT_TRUE(old_queue.ok());
    ASSERT_TRUE(kernel.AssociateQueue(tids[1], *old_queue).ok());
    ghost_msg late = {};
    late.type = GHOST_MSG_TASK_WAKEUP;
    late.size = sizeof(late);
    late.tid = tids[1];
    kernel.PushRaw(*old_queue, late);
    absl::StatusOr<std::unique_ptr<Policy>> p = MakePolicy(
        {.name = "fifo-centralized", .clock = [&kernel] { return kernel.NowNs(); }}, **e);
    ASSERT_TRUE(p.ok()) << p.status();
    int drains = 0;
    TakeOverResult r = TakeOverThreads(kernel, **e, **p, drain ? std::function<void()>([&] {
      drains++;
      kernel.ConsumeQueue(*old_queue, [](const ghost_msg&) {});
    }) : nullptr);
    EXPECT_EQ(r.retried, 1) << "drain " << drain;
    EXPECT_EQ(r.gone, 0);
    if (drain) {
      EXPECT_EQ(drains, 1);
      EXPECT_EQ(r.taken, 3);
      EXPECT_EQ(r.missed, 0);
    } else {
      EXPECT_EQ(r.taken, 2);
      EXPECT_EQ(r.missed, 1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, TakeOverTest,
                         ::testing::Combine(::testing::Values("fifo-centralized", "fifo-per-cpu"),
                                            ::testing::Bool()));

}  // namespace
}  // namespace ghost
