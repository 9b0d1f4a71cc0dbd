#include "userspace/discovery.h"

#include <vector>

#include "gtest/gtest.h"
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

}  // namespace
}  // namespace ghost
