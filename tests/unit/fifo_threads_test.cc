// The per-CPU FIFO with its agents on real threads (Agent::Run), as on a real
// kernel: one shared scheduler, concurrent message handling and commits. The
// fake kernel side is made thread-safe by a wrapper that serialises calls.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

class LockedKernelSide : public KernelSide {
 public:
  explicit LockedKernelSide(FakeKernelSide& k) : k_(k) {}
  absl::Mutex& mu() { return mu_; }

  int NumCpus() const override { return k_.NumCpus(); }
  uint32_t AbiVersion() const override { return k_.AbiVersion(); }
  absl::StatusOr<EnclaveId> CreateEnclave(const EnclaveOptions& o) override {
    absl::MutexLock l(&mu_);
    return k_.CreateEnclave(o);
  }
  absl::Status DestroyEnclave(EnclaveId e) override {
    absl::MutexLock l(&mu_);
    return k_.DestroyEnclave(e);
  }
  absl::StatusOr<QueueId> CreateQueue(const QueueOptions& o) override {
    absl::MutexLock l(&mu_);
    return k_.CreateQueue(o);
  }
  absl::Status DestroyQueue(QueueId q) override {
    absl::MutexLock l(&mu_);
    return k_.DestroyQueue(q);
  }
  absl::Status SetDefaultQueue(EnclaveId e, QueueId q) override {
    absl::MutexLock l(&mu_);
    return k_.SetDefaultQueue(e, q);
  }
  absl::Status AssociateQueue(Tid tid, QueueId q) override {
    absl::MutexLock l(&mu_);
    return k_.AssociateQueue(tid, q);
  }
  absl::Status ConfigQueueWakeup(QueueId q, int cpu, bool wake) override {
    absl::MutexLock l(&mu_);
    return k_.ConfigQueueWakeup(q, cpu, wake);
  }
  // Handlers run without the lock, as a ring buffer reader's would.
  size_t ConsumeQueue(QueueId q,
                      absl::FunctionRef<void(const ghost_msg&)> fn) override {
    std::vector<ghost_msg> msgs;
    {
      absl::MutexLock l(&mu_);
      k_.ConsumeQueue(q, [&](const ghost_msg& m) { msgs.push_back(m); });
    }
    for (const ghost_msg& m : msgs) fn(m);
    return msgs.size();
  }
  absl::Status WaitQueue(QueueId q, absl::Duration timeout) override {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    return absl::OkStatus();
  }
  const ghost_queue_word& QueueWord(QueueId q) const override {
    return k_.QueueWord(q);
  }
  const ghost_status_word* StatusWords() const override { return k_.StatusWords(); }
  ghost_txn* TxnSlot(int cpu) override { return k_.TxnSlot(cpu); }
  absl::Status Commit(const CpuList& cpus) override {
    absl::MutexLock l(&mu_);
    return k_.Commit(cpus);
  }
  absl::Status SetWantOnCpu(Tid tid, bool want) override {
    absl::MutexLock l(&mu_);
    return k_.SetWantOnCpu(tid, want);
  }

 private:
  FakeKernelSide& k_;
  absl::Mutex mu_;
};

TEST(FifoThreadsTest, PerCpuAgentsOnThreadsRunEveryThreadToCompletion) {
  constexpr int kCpus = 4;
  constexpr int kThreads = 64;
  FakeKernelSide fake(kCpus);
  LockedKernelSide kernel(fake);
  auto enclave = Enclave::Create(kernel, {.cpus = CpuList::FirstN(kCpus)});
  ASSERT_TRUE(enclave.ok()) << enclave.status();
  auto policy = MakePolicy(
      {.name = "fifo-per-cpu", .clock = [&] { return fake.NowNs(); }}, **enclave);
  ASSERT_TRUE(policy.ok()) << policy.status();

  std::atomic<bool> stop{false};
  std::vector<std::thread> agents;
  for (Agent* a : (*policy)->agents()) {
    agents.emplace_back([a, &stop] { a->Run(stop); });
  }
  std::map<Tid, int> runs;
  int exited = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  {
    absl::MutexLock l(&kernel.mu());
    for (int i = 0; i < kThreads; ++i) runs[fake.NewThread()] = 0;
  }
  while (exited < kThreads && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    absl::MutexLock l(&kernel.mu());
    for (int cpu = 0; cpu < kCpus; ++cpu) {
      const Tid t = fake.CurrentOn(cpu);
      if (t == GHOST_TID_NONE) continue;
      if (++runs[t] == 3) {
        fake.Exit(t);
        ++exited;
      } else if (runs[t] == 1) {
        fake.Preempt(t);
      } else {
        fake.Block(t);
        fake.Wake(t);
      }
    }
  }
  stop = true;
  for (std::thread& t : agents) t.join();
  EXPECT_EQ(exited, kThreads);
  for (auto [t, n] : runs) EXPECT_EQ(n, 3) << t;
}

}  // namespace
}  // namespace ghost
