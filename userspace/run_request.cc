#include "userspace/run_request.h"

#include "absl/strings/str_format.h"

namespace ghost {

const char* TxnResultName(uint32_t result) {
  switch (result) {
    case GHOST_TXN_PENDING: return "PENDING";
    case GHOST_TXN_COMMITTED: return "COMMITTED";
    case GHOST_TXN_TARGET_STALE: return "TARGET_STALE";
    case GHOST_TXN_AGENT_STALE: return "AGENT_STALE";
    case GHOST_TXN_NOT_FOUND: return "NOT_FOUND";
    case GHOST_TXN_NOT_RUNNABLE: return "NOT_RUNNABLE";
    case GHOST_TXN_RUNNING_ELSEWHERE: return "RUNNING_ELSEWHERE";
    case GHOST_TXN_CPU_UNAVAILABLE: return "CPU_UNAVAILABLE";
    case GHOST_TXN_NOT_ALLOWED: return "NOT_ALLOWED";
    case GHOST_TXN_INVALID: return "INVALID";
    case GHOST_TXN_ABORTED: return "ABORTED";
    case GHOST_TXN_PREEMPTED: return "PREEMPTED";
    default: return "UNKNOWN";
  }
}

const char* TxnStateName(uint32_t state) {
  switch (state) {
    case GHOST_TXN_FREE: return "FREE";
    case GHOST_TXN_OPEN: return "OPEN";
    case GHOST_TXN_READY: return "READY";
    case GHOST_TXN_CLAIMED: return "CLAIMED";
    case GHOST_TXN_DONE: return "DONE";
    default: return "UNKNOWN";
  }
}

RunRequest::RunRequest(KernelSide& kernel, int cpu)
    : kernel_(kernel), cpu_(cpu), slot_(kernel.TxnSlot(cpu)) {}

ghost_txn_state RunRequest::state() const {
  if (slot_ == nullptr) return GHOST_TXN_FREE;
  return static_cast<ghost_txn_state>(
      __atomic_load_n(&slot_->state, __ATOMIC_ACQUIRE));
}

ghost_txn_result RunRequest::result() const {
  if (slot_ == nullptr) return GHOST_TXN_PENDING;
  return static_cast<ghost_txn_result>(
      __atomic_load_n(&slot_->result, __ATOMIC_ACQUIRE));
}

uint64_t RunRequest::commit_seq() const {
  return slot_ ? __atomic_load_n(&slot_->commit_seq, __ATOMIC_ACQUIRE) : 0;
}

uint64_t RunRequest::commit_time_ns() const {
  return slot_ ? __atomic_load_n(&slot_->commit_time_ns, __ATOMIC_ACQUIRE) : 0;
}

bool RunRequest::in_flight() const {
  const uint32_t s = state();
  return s == GHOST_TXN_OPEN || s == GHOST_TXN_READY || s == GHOST_TXN_CLAIMED;
}

bool RunRequest::CasState(uint32_t from, uint32_t to) {
  return __atomic_compare_exchange_n(&slot_->state, &from, to, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

absl::Status RunRequest::Open(const RunRequestOptions& opts) {
  if (slot_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("no transaction slot for cpu %d", cpu_));
  }
  if (opts.commit_flags & ~static_cast<uint32_t>(GHOST_TXN_F_ALL)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown commit flags 0x%x", opts.commit_flags));
  }
  if (opts.slice < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("negative slice");
  }
  if (!CasState(GHOST_TXN_FREE, GHOST_TXN_OPEN) &&
      !CasState(GHOST_TXN_DONE, GHOST_TXN_OPEN)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "transaction slot of cpu %d is %s", cpu_, TxnStateName(state())));
  }
  uint32_t flags = opts.commit_flags;
  if (opts.queue == GHOST_QUEUE_NONE) flags |= GHOST_TXN_F_NO_BARRIER;
  slot_->tid = opts.target;
  slot_->task_seqnum = opts.target_barrier;
  slot_->agent_barrier = opts.agent_barrier;
  slot_->queue = opts.queue;
  slot_->flags = flags;
  slot_->group = opts.sync_group;
  slot_->cpu = static_cast<__u32>(cpu_);
  slot_->slice_ns = static_cast<__u64>(absl::ToInt64Nanoseconds(opts.slice));
  __atomic_store_n(&slot_->result, GHOST_TXN_PENDING, __ATOMIC_RELAXED);
  target_ = opts.target;
  target_barrier_ = opts.target_barrier;
  commit_error_ = absl::OkStatus();
  // Publishes the fields: the kernel side only reads a READY slot.
  __atomic_store_n(&slot_->state, GHOST_TXN_READY, __ATOMIC_RELEASE);
  return absl::OkStatus();
}

bool RunRequest::Commit() {
  if (slot_ == nullptr || state() != GHOST_TXN_READY) return false;
  CpuList cpus;
  cpus.Set(cpu_);
  commit_error_ = kernel_.Commit(cpus);
  if (!commit_error_.ok()) {
    Abort();
    if (state() != GHOST_TXN_DONE) return false;
  }
  if (Done()) return result() == GHOST_TXN_COMMITTED;
  return state() != GHOST_TXN_FREE;
}

void RunRequest::Abort() {
  if (slot_ == nullptr) return;
  if (!CasState(GHOST_TXN_READY, GHOST_TXN_FREE)) {
    CasState(GHOST_TXN_OPEN, GHOST_TXN_FREE);
  }
}

void RunRequest::Release() {
  if (slot_ != nullptr) CasState(GHOST_TXN_DONE, GHOST_TXN_FREE);
}

absl::Status CommitGroup(KernelSide& kernel, absl::Span<RunRequest* const> reqs) {
  CpuList cpus;
  for (RunRequest* r : reqs) {
    if (r == nullptr) return absl::InvalidArgumentError("null run request");
    if (r->state() != GHOST_TXN_READY) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "run request of cpu %d is %s, not READY", r->cpu(),
          TxnStateName(r->state())));
    }
    if (cpus.IsSet(r->cpu())) {
      return absl::InvalidArgumentError(
          absl::StrFormat("cpu %d twice in one group commit", r->cpu()));
    }
    cpus.Set(r->cpu());
  }
  if (cpus.Empty()) return absl::OkStatus();
  absl::Status s = kernel.Commit(cpus);
  for (RunRequest* r : reqs) {
    r->commit_error_ = s;
    if (!s.ok()) r->Abort();
  }
  return s;
}

}  // namespace ghost
