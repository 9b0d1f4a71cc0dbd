#include "userspace/policy.h"
#include "userspace/policies/registry.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"
#include "userspace/topology.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

TEST(EnclaveTest, CreatesDefaultQueueAndCleansUp) {
  FakeKernelSide kernel(4);
  {
    auto e = Enclave::Create(kernel, {.cpus = CpuList{1, 2}});
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->cpus(), (CpuList{1, 2}));
    EXPECT_EQ(kernel.DefaultQueue((*e)->id()), (*e)->default_queue());
    EXPECT_EQ(kernel.QueueWord((*e)->default_queue()).enclave, (*e)->id());
    auto q = (*e)->CreateQueue({.wake_cpu = 2});
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(kernel.QueueWord(*q).enclave, (*e)->id());  // filled in
    // The CPUs are taken while it lives.
    EXPECT_FALSE(Enclave::Create(kernel, {.cpus = CpuList{2}}).ok());
  }
  EXPECT_TRUE(Enclave::Create(kernel, {.cpus = CpuList{2}}).ok());
}

TEST(EnclaveTest, RejectsBadInput) {
  FakeKernelSide kernel(4);
  EXPECT_EQ(Enclave::Create(kernel, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Enclave::Create(kernel, {.cpus = CpuList{4}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  kernel.set_abi_version(GHOST_ABI_VERSION + 1);
  EXPECT_EQ(Enclave::Create(kernel, {.cpus = CpuList{0}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = Enclave::Create(kernel_, {.cpus = CpuList::FirstN(4)});
    ASSERT_TRUE(e.ok()) << e.status();
    enclave_ = std::move(*e);
  }
  FakeKernelSide kernel_{4};
  std::unique_ptr<Enclave> enclave_;
};

TEST_F(PolicyTest, KnowsItsNames) {
  EXPECT_EQ(PolicyNames(),
            (std::vector<std::string>{"fifo-per-cpu", "fifo-centralized", "shinjuku", "edf", "sol",
                                      "search"}));
  for (const std::string& name : PolicyNames()) {
    PolicyOptions o{.name = name};
    o.topology = std::make_shared<const Topology>(*Topology::Preset("flat4"));
    auto p = MakePolicy(o, *enclave_);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status();
    EXPECT_EQ((*p)->name(), name);
    EXPECT_FALSE((*p)->agents().empty());
  }
}

TEST_F(PolicyTest, UnknownNameSaysWhatIsKnown) {
  auto p = MakePolicy({.name = "x"}, *enclave_);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "unknown policy 'x' (known: fifo-per-cpu, fifo-centralized, shinjuku, edf, sol, search)");
}

TEST_F(PolicyTest, RejectsBadOptions) {
  EXPECT_EQ(MakePolicy({.name = "fifo-per-cpu", .slice = absl::Milliseconds(-1)},
                       *enclave_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakePolicy({.name = "fifo-centralized", .global_cpu = 7}, *enclave_)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  FakeKernelSide one(1);
  auto e = Enclave::Create(one, {.cpus = CpuList{0}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(MakePolicy({.name = "fifo-centralized"}, **e).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PolicyLimitsTest, PerCpuNeedsAQueuePerCpu) {
  FakeKernelSide big(GHOST_MAX_QUEUES + 1);
  auto e = Enclave::Create(big, {.cpus = CpuList::FirstN(GHOST_MAX_QUEUES + 1)});
  ASSERT_TRUE(e.ok());
  auto p = MakePolicy({.name = "fifo-per-cpu"}, **e);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MakePolicy({.name = "fifo-centralized"}, **e).ok());
}

TEST_F(PolicyTest, CentralizedAgentCpuIsConfigurable) {
  auto p = MakePolicy({.name = "fifo-centralized", .global_cpu = 2}, *enclave_);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ((*p)->agents().size(), 1u);
  Agent* a = (*p)->agents()[0];
  EXPECT_EQ(a->cpu(), 2);
  // Threads go everywhere but CPU 2.
  for (int i = 0; i < 3; ++i) kernel_.NewThread();
  a->RunOnce();
  EXPECT_EQ(kernel_.last_commit_cpus(), (std::vector<int>{0, 1, 3}));
}

}  // namespace
}  // namespace ghost
