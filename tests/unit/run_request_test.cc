#include "userspace/run_request.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"

namespace ghost {
namespace {

using testing::FakeKernelSide;

class RunRequestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Enclave>> e =
        Enclave::Create(kernel_, {.cpus = CpuList::FirstN(4)});
    ASSERT_TRUE(e.ok()) << e.status();
    enclave_ = std::move(*e);
    q_ = enclave_->default_queue();
  }
  // Options acting on everything the agent has seen so far.
  RunRequestOptions Current(Tid tid) {
    while (kernel_.Pending(q_) > 0) {
      kernel_.ConsumeQueue(q_, [](const ghost_msg&) {});
    }
    return {.target = tid,
            .target_barrier = kernel_.thread(tid).seq,
            .agent_barrier = kernel_.QueueWord(q_).barrier,
            .queue = q_};
  }

  FakeKernelSide kernel_{4};
  std::unique_ptr<Enclave> enclave_;
  QueueId q_ = GHOST_QUEUE_NONE;
};

TEST_F(RunRequestTest, OpenCommitRunsTheThread) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 1);
  EXPECT_EQ(req.state(), GHOST_TXN_FREE);
  ASSERT_TRUE(req.Open(Current(t)).ok());
  EXPECT_EQ(req.state(), GHOST_TXN_READY);
  EXPECT_TRUE(req.in_flight());
  EXPECT_TRUE(req.Commit());
  EXPECT_TRUE(req.Done());
  EXPECT_TRUE(req.committed());
  EXPECT_EQ(req.result(), GHOST_TXN_COMMITTED);
  EXPECT_EQ(kernel_.CurrentOn(1), t);
  EXPECT_EQ(kernel_.commit_calls(), 1u);
  // DONE may be reopened (or released) by the agent.
  req.Release();
  EXPECT_EQ(req.state(), GHOST_TXN_FREE);
}

TEST_F(RunRequestTest, DoubleOpenIsRefused) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 1);
  ASSERT_TRUE(req.Open(Current(t)).ok());
  absl::Status s = req.Open(Current(t));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  // A second object on the same slot is refused too.
  RunRequest other(kernel_, 1);
  EXPECT_EQ(other.Open(Current(t)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(RunRequestTest, AbortFreesTheSlotAndNothingRuns) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 2);
  ASSERT_TRUE(req.Open(Current(t)).ok());
  req.Abort();
  EXPECT_EQ(req.state(), GHOST_TXN_FREE);
  EXPECT_FALSE(req.Commit());  // nothing open
  ASSERT_TRUE(kernel_.Commit(CpuList{2}).ok());
  EXPECT_EQ(kernel_.CurrentOn(2), GHOST_TID_NONE);
  EXPECT_TRUE(req.Open(Current(t)).ok());  // usable again
}

TEST_F(RunRequestTest, RejectsBadOptions) {
  RunRequest req(kernel_, 0);
  EXPECT_EQ(req.Open({.commit_flags = 1u << 7}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(req.Open({.slice = absl::Milliseconds(-1)}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(req.state(), GHOST_TXN_FREE);
  RunRequest none(kernel_, 99);  // no such CPU
  EXPECT_FALSE(none.Open({}).ok());
}

TEST_F(RunRequestTest, QueueNoneMeansNoBarrier) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 1);
  RunRequestOptions o = Current(t);
  o.queue = GHOST_QUEUE_NONE;
  o.agent_barrier = 12345;  // would be stale
  ASSERT_TRUE(req.Open(o).ok());
  EXPECT_TRUE(kernel_.TxnSlot(1)->flags & GHOST_TXN_F_NO_BARRIER);
  EXPECT_TRUE(req.Commit());
  EXPECT_TRUE(req.committed());
}

TEST_F(RunRequestTest, SurfacesResultCodes) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 1);
  auto expect = [&](RunRequestOptions o, ghost_txn_result want) {
    ASSERT_TRUE(req.Open(o).ok());
    EXPECT_FALSE(req.Commit()) << TxnResultName(want);
    EXPECT_TRUE(req.Done());
    EXPECT_FALSE(req.committed());
    EXPECT_EQ(req.result(), want)
        << "got " << TxnResultName(req.result()) << " want " << TxnResultName(want);
  };
  RunRequestOptions o = Current(t);
  o.target_barrier -= 1;
  expect(o, GHOST_TXN_TARGET_STALE);
  o = Current(t);
  kernel_.NewThread();  // a message the agent has not seen
  expect(o, GHOST_TXN_AGENT_STALE);
  o = Current(t);
  o.target = 9999;
  expect(o, GHOST_TXN_NOT_FOUND);
  Tid sleeper = kernel_.NewThread(0, /*runnable=*/false);
  expect(Current(sleeper), GHOST_TXN_NOT_RUNNABLE);
  kernel_.SetAffinity(t, CpuList{0, 2});
  expect(Current(t), GHOST_TXN_NOT_ALLOWED);
  kernel_.TakeCpu(1, /*notify=*/false);
  kernel_.SetAffinity(t, CpuList{0, 1, 2});
  expect(Current(t), GHOST_TXN_CPU_UNAVAILABLE);
  kernel_.ReturnCpu(1);
  // Running on CPU 2, asked for on CPU 1.
  RunRequest r2(kernel_, 2);
  ASSERT_TRUE(r2.Open(Current(t)).ok());
  ASSERT_TRUE(r2.Commit());
  expect(Current(t), GHOST_TXN_RUNNING_ELSEWHERE);
  EXPECT_STREQ(TxnResultName(GHOST_TXN_RUNNING_ELSEWHERE), "RUNNING_ELSEWHERE");
}

// The fake kernel side refuses sync groups as the class and the simulator
// do (not implemented yet): INVALID, checked before anything else.
TEST_F(RunRequestTest, SyncGroupIsRefusedAsInvalid) {
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 1);
  RunRequestOptions o = Current(t);
  o.commit_flags = GHOST_TXN_F_SYNC_GROUP;
  o.sync_group = 3;
  o.agent_barrier -= 1;  // would be AGENT_STALE
  ASSERT_TRUE(req.Open(o).ok());
  EXPECT_EQ(kernel_.TxnSlot(1)->group, 3u);
  EXPECT_FALSE(req.Commit());
  EXPECT_TRUE(req.Done());
  EXPECT_EQ(req.result(), GHOST_TXN_INVALID) << TxnResultName(req.result());
  EXPECT_EQ(kernel_.CurrentOn(1), GHOST_TID_NONE);
  EXPECT_TRUE(req.Open(Current(t)).ok());  // without the flag it runs
  EXPECT_TRUE(req.Commit());
  EXPECT_EQ(kernel_.CurrentOn(1), t);
}

TEST_F(RunRequestTest, PendingUntilTheKernelReports) {
  kernel_.set_defer_results(true);
  Tid t = kernel_.NewThread();
  RunRequest req(kernel_, 3);
  ASSERT_TRUE(req.Open(Current(t)).ok());
  EXPECT_TRUE(req.Commit());  // pending counts as "so far so good"
  EXPECT_FALSE(req.Done());
  EXPECT_EQ(req.state(), GHOST_TXN_CLAIMED);
  EXPECT_EQ(req.result(), GHOST_TXN_PENDING);
  req.Abort();  // too late: the kernel side owns it
  EXPECT_EQ(req.state(), GHOST_TXN_CLAIMED);
  EXPECT_EQ(req.Open(Current(t)).code(), absl::StatusCode::kFailedPrecondition);
  kernel_.CompleteDeferred();
  EXPECT_TRUE(req.committed());
}

TEST_F(RunRequestTest, GroupCommitIsOneCallForAllTargets) {
  std::vector<std::unique_ptr<RunRequest>> reqs;
  std::vector<RunRequest*> ptrs;
  std::vector<Tid> tids;
  for (int i = 0; i < 4; ++i) tids.push_back(kernel_.NewThread());
  for (int cpu = 0; cpu < 4; ++cpu) {
    reqs.push_back(std::make_unique<RunRequest>(kernel_, cpu));
    ASSERT_TRUE(reqs.back()->Open(Current(tids[cpu])).ok());
    ptrs.push_back(reqs.back().get());
  }
  ASSERT_TRUE(CommitGroup(kernel_, ptrs).ok());
  EXPECT_EQ(kernel_.commit_calls(), 1u);
  EXPECT_EQ(kernel_.last_commit_cpus(), (std::vector<int>{0, 1, 2, 3}));
  for (int cpu = 0; cpu < 4; ++cpu) {
    EXPECT_TRUE(reqs[cpu]->committed()) << cpu;
    EXPECT_EQ(kernel_.CurrentOn(cpu), tids[cpu]);
  }
}

TEST_F(RunRequestTest, GroupCommitRefusesUnopenedAndDuplicates) {
  Tid t = kernel_.NewThread();
  RunRequest a(kernel_, 0), b(kernel_, 1), dup(kernel_, 0);
  ASSERT_TRUE(a.Open(Current(t)).ok());
  RunRequest* unopened[] = {&a, &b};
  EXPECT_EQ(CommitGroup(kernel_, unopened).code(),
            absl::StatusCode::kFailedPrecondition);
  RunRequest* twice[] = {&a, &a};
  EXPECT_EQ(CommitGroup(kernel_, twice).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(kernel_.commit_calls(), 0u);
  EXPECT_EQ(a.state(), GHOST_TXN_READY);  // untouched, still committable
}

TEST_F(RunRequestTest, FailedCommitCallAbortsTheGroup) {
  Tid t = kernel_.NewThread();
  RunRequest a(kernel_, 0);
  ASSERT_TRUE(a.Open(Current(t)).ok());
  kernel_.set_fail_commit_calls(true);
  RunRequest* g[] = {&a};
  EXPECT_FALSE(CommitGroup(kernel_, g).ok());
  EXPECT_FALSE(a.commit_error().ok());
  EXPECT_EQ(a.state(), GHOST_TXN_FREE);
  ASSERT_TRUE(a.Open(Current(t)).ok());
  EXPECT_FALSE(a.Commit());
  EXPECT_EQ(a.state(), GHOST_TXN_FREE);
}

}  // namespace
}  // namespace ghost
