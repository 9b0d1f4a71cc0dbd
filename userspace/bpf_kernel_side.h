// BpfKernelSide: the KernelSide of the real sched_ext class (bpf/progs/).
//
// Shared memory is the class's BPF_F_MMAPABLE arrays, mmapped once: status
// words, queue words, transaction slots, enclave words, class info. Queues are
// RINGBUF maps created here at run time and stored in the class's
// array-of-maps; they are read with libbpf's ring_buffer. Group commit is one
// BPF_PROG_TEST_RUN of the `ghost_commit` syscall program (one bpf() call);
// thread requests (ASSOCIATE_QUEUE, ON_CPU, CPU timers) go through `ghost_ctl`.
#ifndef GHOST_SCX_USERSPACE_BPF_KERNEL_SIDE_H_
#define GHOST_SCX_USERSPACE_BPF_KERNEL_SIDE_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "userspace/bpf_class.h"
#include "userspace/kernel_side.h"

struct ring_buffer;

namespace ghost {

class BpfKernelSide : public KernelSide {
 public:
  // Loads and attaches the class (BpfClass), then maps its memory. Fails with
  // FailedPrecondition naming both versions if the class speaks another ABI.
  static absl::StatusOr<std::unique_ptr<BpfKernelSide>> Create(const ClassOptions& opts);
  // Takes a loaded (and attached or re-attached) class and owns it.
  static absl::StatusOr<std::unique_ptr<BpfKernelSide>> Create(std::unique_ptr<BpfClass> cls);
  // Uses a class that is already loaded (and attached, or about to be); `cls`
  // must outlive the result.
  static absl::StatusOr<std::unique_ptr<BpfKernelSide>> Open(BpfClass& cls);
  ~BpfKernelSide() override;

  int NumCpus() const override;
  uint32_t AbiVersion() const override;

  absl::StatusOr<EnclaveId> CreateEnclave(const EnclaveOptions& opts) override;
  absl::Status DestroyEnclave(EnclaveId enclave) override;

  absl::StatusOr<QueueId> CreateQueue(const QueueOptions& opts) override;
  absl::Status DestroyQueue(QueueId queue) override;
  absl::Status SetDefaultQueue(EnclaveId enclave, QueueId queue) override;
  absl::Status AssociateQueue(Tid tid, QueueId queue) override;
  absl::Status ConfigQueueWakeup(QueueId queue, int wake_cpu, bool wake_agent) override;
  size_t ConsumeQueue(QueueId queue, absl::FunctionRef<void(const ghost_msg&)> fn) override;
  absl::Status WaitQueue(QueueId queue, absl::Duration timeout) override;
  int QueueFd(QueueId queue) const override;

  const ghost_queue_word& QueueWord(QueueId queue) const override;
  const ghost_status_word* StatusWords() const override { return status_words_; }
  ghost_txn* TxnSlot(int cpu) override;

  absl::Status Commit(const CpuList& cpus) override;
  absl::Status SetWantOnCpu(Tid tid, bool want) override;

  // ghost-run: `pid` joins `enclave` when it next switches to SCHED_EXT
  // (its children inherit the enclave).
  absl::Status EnrollPid(pid_t pid, EnclaveId enclave);
  // Marks thread `tid` (a pid) as an agent thread: when it takes a CPU from
  // the class, that is not a higher class taking the CPU (no CPU_BUSY). A
  // per-CPU agent (`global` false) blocks when idle, so a commit it just made
  // to its CPU stays queued until then; a global agent spins, so the class
  // sends what waits on its CPU back to the agents (bpf/progs/agents.bpf.h).
  absl::Status RegisterAgentThread(pid_t tid, bool global);
  bool TakeYieldRequest(int cpu) override;
  // Which optional CPU messages the enclave's CPUs send (GHOST_ENCLAVE_MSG_*).
  absl::Status SetEnclaveCpuMessages(EnclaveId enclave, uint32_t msg_bits);
  // A CPU_TIMER_EXPIRED message for `cpu` after `delay`, carrying `cookie`.
  absl::Status ArmCpuTimer(int cpu, absl::Duration delay, uint64_t cookie);

  // What a previous agent of a re-attached class left behind (ghOSt's agent
  // restart): destroys its enclaves, forgets its agent threads, frees
  // transaction slots it left open or unread, and retires its queues: no more
  // messages go to them and what they hold is discarded, so its threads can be
  // associated with new queues (TakeOverThreads). Retired queue numbers are not
  // reused until ReleasePreviousQueues: a thread's last position in an old
  // ring must never be compared with a new ring of the same number. Threads of
  // its enclaves keep their enclave number and wait (or run via the fallback)
  // until a new enclave with that number takes them. Returns the enclaves.
  absl::StatusOr<std::vector<EnclaveId>> ClearPreviousAgent();
  // After the takeover: removes the retired queues from the class.
  void ReleasePreviousQueues();

  // Group-commit bpf() calls made through this object.
  uint64_t commit_syscalls() const { return commit_syscalls_.load(); }
  // Records that were shorter than a ghost_msg (never expected; counted).
  uint64_t malformed_messages() const { return malformed_.load(); }
  const ghost_class_info& ClassInfo() const { return *class_info_; }
  const ghost_enclave_word& EnclaveWord(EnclaveId e) const { return enclave_words_[e]; }
  // OK while the kernel runs the class; Aborted with its reason once it ended it.
  absl::Status Health() const { return cls_->Health(); }
  BpfClass& bpf_class() { return *cls_; }

 private:
  struct Queue {
    int fd = -1;
    ring_buffer* rb = nullptr;
    // The consumer callback of the ConsumeQueue call in progress.
    absl::FunctionRef<void(const ghost_msg&)>* fn = nullptr;
    size_t consumed = 0;
    BpfKernelSide* self = nullptr;
  };

  explicit BpfKernelSide(BpfClass& cls) : cls_(&cls) {}
  absl::Status MapMemory();
  absl::Status RunCtl(ghost_ctl_args& args);
  static int OnRecord(void* ctx, void* data, size_t size);

  std::unique_ptr<BpfClass> owned_;
  BpfClass* cls_;
  ghost_status_word* status_words_ = nullptr;
  ghost_queue_word* queue_words_ = nullptr;
  ghost_txn* txn_slots_ = nullptr;
  ghost_enclave_word* enclave_words_ = nullptr;
  ghost_class_info* class_info_ = nullptr;
  ghost_cpu_word* cpu_words_ = nullptr;
  struct Mapping {
    void* addr;
    size_t len;
  };
  std::vector<Mapping> mappings_;
  int nr_cpus_ = 0;
  int commit_fd_ = -1, ctl_fd_ = -1, queues_fd_ = -1, enroll_fd_ = -1;

  absl::Mutex mu_;  // queue and enclave creation/destruction
  std::array<Queue, GHOST_MAX_QUEUES> queues_;
  std::array<bool, GHOST_MAX_QUEUES> retired_{};  // a previous agent's (ClearPreviousAgent)
  std::atomic<uint64_t> commit_syscalls_{0};
  std::atomic<uint64_t> malformed_{0};
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_BPF_KERNEL_SIDE_H_
