#include "userspace/channel.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

TEST(ChannelTest, BarrierCountsMessagesAndConsumeDrainsInOrder) {
  FakeKernelSide kernel(2);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(2)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  Channel ch(kernel, (*enclave)->default_queue());
  ASSERT_TRUE(ch.valid());
  const uint64_t before = ch.barrier();
  Tid a = kernel.NewThread();
  Tid b = kernel.NewThread();
  EXPECT_GT(ch.barrier(), before);
  std::vector<Tid> seen;
  size_t n = ch.Consume([&](const Message& m) {
    EXPECT_EQ(m.type(), GHOST_MSG_TASK_NEW);
    seen.push_back(m.tid());
  });
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(seen, (std::vector<Tid>{a, b}));
  EXPECT_EQ(ch.Consume([](const Message&) { FAIL() << "queue should be empty"; }), 0u);
  EXPECT_EQ(ch.dropped(), 0u);
}

TEST(ChannelTest, AssociateIsRefusedWhileTheOldQueueHoldsMessages) {
  FakeKernelSide kernel(2);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(2)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  Channel def(kernel, (*enclave)->default_queue());
  auto q = (*enclave)->CreateQueue({.wake_cpu = 1});
  ASSERT_TRUE(q.ok()) << q.status();
  Channel mine(kernel, *q);
  Tid t = kernel.NewThread();
  EXPECT_EQ(mine.Associate(t).code(), absl::StatusCode::kFailedPrecondition);
  def.Consume([](const Message&) {});
  EXPECT_TRUE(mine.Associate(t).ok());
  kernel.Wake(t);
  EXPECT_EQ(def.Consume([](const Message&) {}), 0u);
  EXPECT_GE(mine.Consume([&](const Message& m) { EXPECT_EQ(m.tid(), t); }), 1u);
}

}  // namespace
}  // namespace ghost
