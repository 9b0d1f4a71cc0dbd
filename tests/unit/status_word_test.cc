#include "userspace/status_word.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace ghost {
namespace {

TEST(StatusWordTest, ReadsASettledWord) {
  ghost_status_word sw = {};
  sw.lock = 4;
  sw.flags = GHOST_SW_INUSE | GHOST_SW_RUNNABLE | GHOST_SW_ON_CPU;
  sw.tid = 77;
  sw.seqnum = 12;
  sw.runtime_ns = 5000;
  sw.cpu = 2;
  sw.enclave = 1;
  sw.queue = 3;
  sw.pid = 4242;
  absl::StatusOr<StatusWordSnapshot> s = ReadStatusWord(sw);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tid, 77u);
  EXPECT_EQ(s->seqnum, 12u);
  EXPECT_EQ(s->runtime_ns, 5000u);
  EXPECT_EQ(s->cpu, 2);
  EXPECT_EQ(s->enclave, 1u);
  EXPECT_EQ(s->queue, 3u);
  EXPECT_EQ(s->pid, 4242u);
  EXPECT_TRUE(s->in_use());
  EXPECT_TRUE(s->runnable());
  EXPECT_TRUE(s->on_cpu());
  EXPECT_FALSE(s->dead());
}

TEST(StatusWordTest, WriterStuckInsideIsUnavailable) {
  ghost_status_word sw = {};
  sw.lock = 5;  // odd forever
  sw.flags = GHOST_SW_INUSE;
  absl::StatusOr<StatusWordSnapshot> s = ReadStatusWord(sw);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
}

// A writer keeps rewriting the word so that tid, seqnum and runtime agree;
// every snapshot the reader gets must be one the writer published.
TEST(StatusWordTest, NeverReturnsATornCopy) {
  ghost_status_word sw = {};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 1; !stop.load(std::memory_order_relaxed); ++i) {
      __atomic_fetch_add(&sw.lock, 1, __ATOMIC_ACQ_REL);
      __atomic_store_n(&sw.tid, i, __ATOMIC_RELAXED);
      // Widen the window a torn copy needs (a reader that does not recheck
      // the lock then sees tid and seqnum from different versions).
      for (int k = 0; k < 20; ++k) __atomic_signal_fence(__ATOMIC_SEQ_CST);
      __atomic_store_n(&sw.seqnum, i * 2, __ATOMIC_RELAXED);
      __atomic_store_n(&sw.runtime_ns, i * 3, __ATOMIC_RELAXED);
      __atomic_store_n(&sw.flags, GHOST_SW_INUSE, __ATOMIC_RELAXED);
      __atomic_fetch_add(&sw.lock, 1, __ATOMIC_RELEASE);
    }
  });
  // Read while the writer is really running: from its first write until it
  // has published a good number of versions.
  while (__atomic_load_n(&sw.tid, __ATOMIC_RELAXED) == 0) std::this_thread::yield();
  int ok = 0;
  for (int i = 0; i < 300000; ++i) {
    absl::StatusOr<StatusWordSnapshot> s = ReadStatusWord(sw);
    if (!s.ok()) continue;  // the writer can win every retry on a busy box
    ++ok;
    ASSERT_EQ(s->seqnum, s->tid * 2);
    ASSERT_EQ(s->runtime_ns, s->tid * 3);
  }
  stop = true;
  writer.join();
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace ghost
