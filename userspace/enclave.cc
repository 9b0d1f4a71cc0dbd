#include "userspace/enclave.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Enclave>> Enclave::Create(
    KernelSide& kernel, const EnclaveOptions& opts) {
  if (kernel.AbiVersion() != GHOST_ABI_VERSION) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "kernel side speaks ABI %u, this agent ABI %u", kernel.AbiVersion(),
        GHOST_ABI_VERSION));
  }
  if (opts.cpus.Empty()) {
    return absl::InvalidArgumentError("enclave needs at least one CPU");
  }
  for (int cpu : opts.cpus.ToVector()) {
    if (cpu >= kernel.NumCpus()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "enclave CPU %d does not exist (kernel side has %d)", cpu,
          kernel.NumCpus()));
    }
  }
  absl::StatusOr<EnclaveId> id = kernel.CreateEnclave(opts);
  if (!id.ok()) return id.status();
  std::unique_ptr<Enclave> e(new Enclave(kernel, *id, opts.cpus));
  e->queue_bytes_ = opts.queue_bytes;
  absl::StatusOr<QueueId> q =
      e->CreateQueue({.wake_cpu = opts.cpus.ToVector().front()});
  if (!q.ok()) return q.status();  // ~Enclave undoes the enclave
  if (absl::Status s = kernel.SetDefaultQueue(*id, *q); !s.ok()) return s;
  e->default_queue_ = *q;
  return e;
}

Enclave::~Enclave() {
  if (released_) return;
  // Best effort: the kernel side may already be gone or have reaped them.
  for (QueueId q : queues_) (void)kernel_.DestroyQueue(q);
  (void)kernel_.DestroyEnclave(id_);
}

void Enclave::DestroyQueuesButDefault() {
  std::vector<QueueId> keep;
  for (QueueId q : queues_) {
    if (q == default_queue_) {
      keep.push_back(q);
    } else {
      (void)kernel_.DestroyQueue(q);
    }
  }
  queues_ = std::move(keep);
}

absl::StatusOr<QueueId> Enclave::CreateQueue(const QueueOptions& opts) {
  QueueOptions o = opts;
  o.ring_bytes = queue_bytes_;
  o.enclave = id_;
  absl::StatusOr<QueueId> q = kernel_.CreateQueue(o);
  if (q.ok()) queues_.push_back(*q);
  return q;
}

}  // namespace ghost
