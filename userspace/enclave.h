// An enclave (ghOSt's Enclave): a set of CPUs on some KernelSide with its own
// default queue, where new threads of the enclave report. Destroying the
// object destroys the enclave and the queues made through it.
#ifndef GHOST_SCX_USERSPACE_ENCLAVE_H_
#define GHOST_SCX_USERSPACE_ENCLAVE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/cpu_list.h"
#include "userspace/kernel_side.h"

namespace ghost {

class Enclave {
 public:
  // Checks the ABI version and the CPU list, creates the enclave and its
  // default queue (woken agent: the enclave's first CPU).
  static absl::StatusOr<std::unique_ptr<Enclave>> Create(
      KernelSide& kernel, const EnclaveOptions& opts);
  ~Enclave();
  Enclave(const Enclave&) = delete;
  Enclave& operator=(const Enclave&) = delete;

  EnclaveId id() const { return id_; }
  const CpuList& cpus() const { return cpus_; }
  KernelSide& kernel() { return kernel_; }
  QueueId default_queue() const { return default_queue_; }
  // Every queue made through it, the default one first.
  const std::vector<QueueId>& queues() const { return queues_; }
  // Creates a queue in this enclave (opts.enclave and, from the enclave's
  // options, opts.ring_bytes are filled in); it is destroyed with the enclave.
  absl::StatusOr<QueueId> CreateQueue(const QueueOptions& opts);
  // Lets go without destroying anything: the enclave and its queues stay in
  // the kernel side for a successor to take over (a live-upgrade hand-over).
  void Release() { released_ = true; }
  // Destroys every queue but the default one (a policy being replaced in the
  // same enclave made them; threads associated with them report to the
  // default queue until told otherwise).
  void DestroyQueuesButDefault();

 private:
  Enclave(KernelSide& kernel, EnclaveId id, const CpuList& cpus)
      : kernel_(kernel), id_(id), cpus_(cpus) {}

  KernelSide& kernel_;
  const EnclaveId id_;
  const CpuList cpus_;
  QueueId default_queue_ = GHOST_QUEUE_NONE;
  size_t queue_bytes_ = 256 * 1024;  // EnclaveOptions::queue_bytes, for every queue
  std::vector<QueueId> queues_;
  bool released_ = false;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_ENCLAVE_H_
