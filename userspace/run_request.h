// ghOSt's transactions: a RunRequest owns one CPU's slot in the kernel side's
// transaction array and walks it through the ABI's state machine:
//
//   FREE/DONE -(Open)-> OPEN -(fields written)-> READY -(Commit)-> CLAIMED
//   -(thread started on the CPU, or validation failed)-> DONE
//
// A commit is only "committed" once the thread really started on the CPU; on a
// real kernel the result may arrive after Commit() returned (pending).
#ifndef GHOST_SCX_USERSPACE_RUN_REQUEST_H_
#define GHOST_SCX_USERSPACE_RUN_REQUEST_H_

#include <linux/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "kernel/ghost_abi.h"
#include "userspace/kernel_side.h"

namespace ghost {

struct RunRequestOptions {
  Tid target = GHOST_TID_NONE;       // GHOST_TID_NONE = idle the CPU
  uint64_t target_barrier = 0;       // the thread seqnum the agent acted on
  uint64_t agent_barrier = 0;        // queue barrier the agent acted on
  QueueId queue = GHOST_QUEUE_NONE;  // whose barrier; NONE -> flag NO_BARRIER
  uint32_t commit_flags = 0;         // GHOST_TXN_F_*
  uint32_t sync_group = 0;
  absl::Duration slice = absl::ZeroDuration();
};

class RunRequest {
 public:
  RunRequest(KernelSide& kernel, int cpu);
  RunRequest(const RunRequest&) = delete;
  RunRequest& operator=(const RunRequest&) = delete;

  // FREE/DONE -> OPEN -> (fields) -> READY. FailedPrecondition if the slot is
  // in flight (OPEN, READY or CLAIMED: also a second Open before Commit);
  // InvalidArgument for unknown flags or a negative slice.
  absl::Status Open(const RunRequestOptions& opts);
  // Single commit: one KernelSide::Commit({cpu}). True iff the transaction is
  // COMMITTED or still pending; false if it failed (see result()), was not
  // open, or the commit call itself failed (see commit_error()).
  bool Commit();
  // READY/OPEN -> FREE, if the kernel side has not claimed it yet.
  void Abort();
  // DONE -> FREE: the agent has read the result (optional; Open accepts DONE).
  void Release();

  bool Done() const { return state() == GHOST_TXN_DONE; }
  // The slot's result: PENDING until the kernel side wrote one.
  ghost_txn_result result() const;
  bool committed() const { return Done() && result() == GHOST_TXN_COMMITTED; }
  // Open, READY or CLAIMED: the slot belongs to this transaction.
  bool in_flight() const;
  int cpu() const { return cpu_; }
  ghost_txn_state state() const;

  // What the last Open() asked for.
  Tid target() const { return target_; }
  uint64_t target_barrier() const { return target_barrier_; }
  // The kernel side's commit_seq / commit_time_ns of the current result.
  uint64_t commit_seq() const;
  uint64_t commit_time_ns() const;
  // Error of the last KernelSide::Commit call made for this request.
  const absl::Status& commit_error() const { return commit_error_; }

 private:
  friend absl::Status CommitGroup(KernelSide&, absl::Span<RunRequest* const>);
  bool CasState(uint32_t from, uint32_t to);

  KernelSide& kernel_;
  const int cpu_;
  ghost_txn* slot_;
  Tid target_ = GHOST_TID_NONE;
  uint64_t target_barrier_ = 0;
  absl::Status commit_error_;
};

// Group commit (ghOSt's TXNS_COMMIT): every request must be Open()ed (READY),
// on distinct CPUs; one KernelSide::Commit over all their CPUs. Results are in
// the requests. If the call fails, the requests still READY are aborted.
absl::Status CommitGroup(KernelSide& kernel, absl::Span<RunRequest* const> reqs);

// "COMMITTED", "TARGET_STALE", ...; "UNKNOWN" for anything else.
const char* TxnResultName(uint32_t result);
const char* TxnStateName(uint32_t state);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_RUN_REQUEST_H_
