// The ring protocol's BPF build (bpf/progs/ring_check.bpf.c, which compiles
// kernel/ghost_ring_ops.h) on the host kernel: loaded by the real verifier,
// run by the JIT through BPF_PROG_TEST_RUN from two consumer threads while the
// agent's Ring pushes, revokes and reaps in the same mmapped memory. Every
// entry is accounted for exactly once, as in ring_test.cc's stress tests.
// Needs a kernel that loads BPF (CAP_BPF); `make test` runs as root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "kernel/ghost_ring.h"
#include "skel/ring_check.skel.h"
#include "userspace/ring.h"

namespace ghost {
namespace {

// The context of ring_consume / ring_push (bpf/progs/ring_check.bpf.c).
struct RingCheckArgs {
  __u32 node, cpu, max, pad;
  __u64 tid, seqnum, ran, stale, pushed, full, errors;
};
static_assert(sizeof(RingCheckArgs) == 72);
constexpr uint64_t kThreads = 65536;  // RING_CHECK_THREADS

template <typename T>
T* MapMemory(bpf_map* map, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
  return p == MAP_FAILED ? nullptr : static_cast<T*>(p);
}

// Loads the test programs. A host that may not load BPF at all (no
// privilege: EPERM) skips, saying so; anything else, a verifier rejection
// included, fails.
ring_check_bpf* LoadOrSkipReason(std::string& skip) {
  ring_check_bpf* skel = ring_check_bpf__open_and_load();
  if (skel == nullptr && (errno == EPERM || errno == ENOSYS)) {
    skip = absl::StrCat("this host may not load BPF programs (errno ", errno,
                        "): the ring's BPF build is checked where it may");
  }
  return skel;
}

TEST(RingBpfTest, BpfConsumersAndAgentAccountForEveryEntry) {
  std::string skip;
  ring_check_bpf* skel = LoadOrSkipReason(skip);
  if (skel == nullptr && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_NE(skel, nullptr) << "ring_check did not load (verifier or no BPF): errno " << errno;
  absl::Cleanup destroy = [skel] { ring_check_bpf__destroy(skel); };
  const size_t ring_bytes = sizeof(ghost_ring) * GHOST_RING_MAX_NODES;
  ghost_ring* rings = MapMemory<ghost_ring>(skel->maps.rings, ring_bytes);
  auto* seq = MapMemory<std::atomic<uint64_t>>(skel->maps.thread_seq, kThreads * 8);
  auto* runs = MapMemory<std::atomic<uint64_t>>(skel->maps.runs, kThreads * 8);
  ASSERT_TRUE(rings && seq && runs);
  absl::Cleanup unmap = [&] {
    munmap(rings, ring_bytes);
    munmap(seq, kThreads * 8);
    munmap(runs, kThreads * 8);
  };
  absl::StatusOr<Ring> made = Ring::Create(&rings[0], 64, 0);
  ASSERT_TRUE(made.ok()) << made.status();
  Ring& ring = *made;

  constexpr uint64_t kPushes = 5000;  // tid = push id, each pushed once
  for (uint64_t t = 0; t < kThreads; ++t) seq[t] = 1;
  const int consume_fd = bpf_program__fd(skel->progs.ring_consume);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> run_errors{0};
  std::vector<std::thread> consumers;
  for (uint32_t cpu = 0; cpu < 2; ++cpu) {
    consumers.emplace_back([&, cpu] {
      while (!stop.load(std::memory_order_relaxed)) {
        RingCheckArgs a = {.node = 0, .cpu = cpu, .max = 64};
        LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));
        if (bpf_prog_test_run_opts(consume_fd, &opts) != 0 || opts.retval != 0) run_errors++;
        if (a.ran == 0) std::this_thread::yield();  // nothing claimed this call
      }
    });
  }
  absl::Cleanup join = [&] {
    stop = true;
    for (std::thread& t : consumers) t.join();
  };

  std::vector<uint64_t> pos_of(kPushes + 1, ~0ull);
  std::vector<int> revoke(kPushes + 1, -1), outcomes(kPushes + 1, 0);
  std::vector<RingOutcome> kind(kPushes + 1, RingOutcome::kRan);
  std::vector<uint32_t> reason(kPushes + 1, 0);
  uint64_t reaped = 0;
  bool bad = false;
  auto reap = [&] {
    ring.Reap([&](const RingOutcomeRecord& o) {
      if (o.tid == 0 || o.tid > kPushes || o.pos != pos_of[o.tid]) {
        bad = true;
        return;
      }
      outcomes[o.tid]++;
      kind[o.tid] = o.outcome;
      reason[o.tid] = o.stale_reason;
      ++reaped;
    });
  };
  absl::BitGen rng;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  for (uint64_t tid = 1; tid <= kPushes && absl::Now() < deadline;) {
    RingPush p = ring.Push(tid, 1);
    if (!p.ok()) {
      reap();
      std::this_thread::yield();
      continue;
    }
    pos_of[tid] = p.pos;
    const uint32_t dice = absl::Uniform(rng, 0u, 8u);
    if (dice == 0) revoke[tid] = static_cast<int>(ring.Revoke(p.pos));
    if (dice == 1) seq[tid] = 2;  // it blocked: the pushed seqnum is stale
    ++tid;
  }
  while (reaped < kPushes && absl::Now() < deadline && !bad) {
    reap();
    std::this_thread::yield();
  }
  std::move(join).Invoke();

  EXPECT_EQ(run_errors.load(), 0u);
  EXPECT_EQ(skel->bss->nr_errors, 0u) << "a claimed entry's complete/fail failed";
  ASSERT_FALSE(bad);
  ASSERT_EQ(reaped, kPushes);
  uint64_t ran = 0, revoked = 0, stale = 0;
  for (uint64_t tid = 1; tid <= kPushes; ++tid) {
    SCOPED_TRACE(::testing::Message() << "tid " << tid);
    ASSERT_EQ(outcomes[tid], 1);
    switch (kind[tid]) {
      case RingOutcome::kRan:
        ++ran;
        ASSERT_EQ(runs[tid].load(), 1u);
        ASSERT_NE(revoke[tid], static_cast<int>(RingRevoke::kRevoked));
        break;
      case RingOutcome::kRevoked:
        ++revoked;
        ASSERT_EQ(runs[tid].load(), 0u) << "revoked, yet BPF ran it";
        ASSERT_EQ(revoke[tid], static_cast<int>(RingRevoke::kRevoked));
        break;
      case RingOutcome::kStale:
        ++stale;
        ASSERT_EQ(runs[tid].load(), 0u);
        ASSERT_EQ(seq[tid].load(), 2u);
        ASSERT_EQ(reason[tid], uint32_t{GHOST_RING_STALE_SEQNUM});
        break;
    }
  }
  EXPECT_EQ(skel->bss->nr_ran, ran);
  EXPECT_EQ(skel->bss->nr_stale, stale);
  EXPECT_GT(ran, 0u);
  EXPECT_GT(revoked, 0u);
  EXPECT_GT(stale, 0u);
}

// A BPF producer and the agent's Ring in one ring: positions never collide.
TEST(RingBpfTest, BpfProducerPushesIntoTheAgentsRing) {
  std::string skip;
  ring_check_bpf* skel = LoadOrSkipReason(skip);
  if (skel == nullptr && !skip.empty()) GTEST_SKIP() << skip;
  ASSERT_NE(skel, nullptr);
  absl::Cleanup destroy = [skel] { ring_check_bpf__destroy(skel); };
  const size_t ring_bytes = sizeof(ghost_ring) * GHOST_RING_MAX_NODES;
  ghost_ring* rings = MapMemory<ghost_ring>(skel->maps.rings, ring_bytes);
  ASSERT_NE(rings, nullptr);
  absl::Cleanup unmap = [&] { munmap(rings, ring_bytes); };
  absl::StatusOr<Ring> ring = Ring::Create(&rings[1], 64, 1);
  ASSERT_TRUE(ring.ok());
  ASSERT_TRUE(ring->Push(1, 1).ok());
  RingCheckArgs a = {.node = 1, .max = 100, .tid = 7, .seqnum = 3};
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));
  ASSERT_EQ(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ring_push), &opts), 0);
  EXPECT_EQ(a.pushed, 63u);  // 64 slots, one taken; the program stops at 64 tries
  EXPECT_EQ(a.full, 1u);
  EXPECT_EQ(a.errors, 0u);
  EXPECT_EQ(ring->Push(2, 1).status, RingPushStatus::kFull);
  for (uint64_t pos = 1; pos < 64; ++pos) {
    ASSERT_EQ(ring->Revoke(pos), RingRevoke::kRevoked) << pos;
  }
  ASSERT_EQ(ring->Revoke(0), RingRevoke::kRevoked);
  int n = 0;
  ring->Reap([&](const RingOutcomeRecord& o) {
    EXPECT_EQ(o.tid, n == 0 ? 1u : 7u);
    EXPECT_EQ(o.outcome, RingOutcome::kRevoked);
    ++n;
  });
  EXPECT_EQ(n, 64);
}

}  // namespace
}  // namespace ghost
