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

  // Fast-path rings: the class's `ghost_rings` map, mmapped once; nodes as the
  // class's consumers see them (class_info.cpu_node, set at load).
  int NumNodes() const override;
  int NodeOfCpu(int cpu) const override;
  ghost_ring* RingRegion(EnclaveId enclave, int node) override;
  absl::Status RingDoorbell(EnclaveId enclave, absl::Span<const uint32_t> kicks) override;
  // The class's fast-path counters (its .bss), for --stats and tests.
  struct FastPathCounters {
    uint64_t pops = 0, steals = 0, ring_runs = 0;  // summed over CPUs
    std::array<uint64_t, GHOST_RING_STALE_LAST + 1> stale = {};  // by reason
    uint64_t settle_errors = 0;  // must stay 0
    uint64_t doorbells = 0, doorbell_kicks = 0;
    uint64_t doorbell_steal_kicks = 0;  // of the kicks: another node's CPU, for a ring it may steal from
    // BPF producers at wake-up (GHOST_RING_F_WAKEUP): pushed, refused (full
    // or contended ring), parked on another idle CPU of the node.
    uint64_t wakeup_pushes = 0, wakeup_refused = 0, wakeup_moves = 0;
    std::vector<uint64_t> cpu_pops, cpu_steals, cpu_runs;  // per CPU (NumCpus())
    std::array<uint64_t, GHOST_MAX_ENCLAVES> enclave_ring_runs = {};
  };
  FastPathCounters FastPathStats() const;

  // ghost-run: `pid` joins `enclave` when it next switches to SCHED_EXT
  // (its children inherit the enclave).
  absl::Status EnrollPid(pid_t pid, EnclaveId enclave);
  // Marks thread `tid` (a pid) as an agent thread of agent_enclave(): when it
  // takes a CPU from the class, that is not a higher class taking the CPU (no
  // CPU_BUSY). A per-CPU agent (`global` false) blocks when idle, so a commit
  // it just made to its CPU stays queued until then; a global agent spins, so
  // the class sends what waits on its CPU back to the agents
  // (bpf/progs/agents.bpf.h). The enclave is recorded with the kind so that a
  // successor forgets only its own enclave's dead agent threads.
  absl::Status RegisterAgentThread(pid_t tid, bool global);
  bool TakeYieldRequest(int cpu) override;
  void SetAgentAsleep(int cpu, bool asleep) override;
  // The enclave this process's agent threads serve (RegisterAgentThread,
  // ClearPreviousAgent). Default 0.
  void set_agent_enclave(EnclaveId e) { agent_enclave_ = e; }
  EnclaveId agent_enclave() const { return agent_enclave_; }
  // Which optional CPU messages the enclave's CPUs send (GHOST_ENCLAVE_MSG_*).
  absl::Status SetEnclaveCpuMessages(EnclaveId enclave, uint32_t msg_bits);
  // A CPU_TIMER_EXPIRED message for `cpu` after `delay`, carrying `cookie`.
  absl::Status ArmCpuTimer(int cpu, absl::Duration delay, uint64_t cookie);

  // OK if `cpus` may form enclave `e`: no CPU belongs to another enclave in
  // use (a live agent's, or a dead one's that may be restarted). Otherwise
  // AlreadyExists naming the CPU and its enclave. Reads only.
  absl::Status CheckCpusFree(EnclaveId e, const CpuList& cpus) const;

  // Taking over enclave `e` from a previous agent that died or handed over
  // (ghOSt's agent restart), without touching any other enclave, its agent or
  // its queues:
  //  1. ClearPreviousAgent(e): its threads stop waiting for an agent (the
  //     class takes its agent as gone, so the fallback runs them at once,
  //     until SetAgentAbsent(e, false)), its agent threads are forgotten. Returns whether enclave e was in use; if so,
  //     CreateEnclave({.id = e}) adopts it in place: it never goes out of use,
  //     so its threads keep it, and so do threads forked meanwhile.
  //  2. RetirePreviousQueues(e), once our default queue is set: the previous
  //     agent's queues get no more messages (its threads report to the
  //     default queue) and what they hold is discarded, so its threads can be
  //     associated with new queues (TakeOverThreads). Returns the records
  //     discarded. Their numbers are not reused until step 3: a thread's last
  //     position in an old ring must never be compared with a new ring of the
  //     same number.
  //  3. ReleasePreviousQueues(), after the takeover: removes them.
  absl::StatusOr<bool> ClearPreviousAgent(EnclaveId e);
  absl::StatusOr<uint64_t> RetirePreviousQueues(EnclaveId e);
  //  2b. A producer that read a queue's word just before it was retired may
  //     still land its record after the drain: DrainRetiredQueues discards
  //     such stragglers (TakeOverThreads calls it when an association is
  //     refused). Returns the records discarded.
  uint64_t DrainRetiredQueues();
  void ReleasePreviousQueues();
  // The enclave's agent heartbeat (agent_heartbeat_ns in its word), which
  // tells the class whether the enclave's agent runs (enclaves.bpf.h): an
  // agent silent for its watchdog (at least 500 ms) is gone, and its
  // threads run through the fallback at once instead of each waiting out
  // the watchdog. absent = true: gone now (handing over, taking over);
  // false: running from now on, kept fresh by Heartbeat() at least every
  // 100 ms. An enclave nobody heartbeats is never taken as gone.
  absl::Status SetAgentAbsent(EnclaveId e, bool absent);
  void Heartbeat(EnclaveId e);
  void AgentHeartbeat(QueueId queue) override;
  void SetPinnedPush(int cpu, bool on) override;
  std::optional<bool> CpuBusy(int cpu) const override;
  absl::Status HandOver(int cpu, absl::Span<HandOverEntry> entries) override;
  // Unregisters every agent thread of enclave `e` (its agent is leaving, or
  // gone).
  void ForgetAgentThreads(EnclaveId e);

  // Group-commit bpf() calls made through this object.
  uint64_t commit_syscalls() const { return commit_syscalls_.load(); }
  uint64_t hand_over_syscalls() const { return hand_over_syscalls_.load(); }
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
  // Makes enclave e's rings unused (layout version 0, every slot zero): a new
  // agent never sees an old enclave's entries as live. mu_ held.
  void ClearRings(EnclaveId e);
  // Discards what queue slot q's ring holds (a previous agent's); mu_ held.
  absl::StatusOr<uint64_t> DrainQueueSlot(uint32_t q);
  static int OnRecord(void* ctx, void* data, size_t size);

  std::unique_ptr<BpfClass> owned_;
  BpfClass* cls_;
  ghost_status_word* status_words_ = nullptr;
  ghost_queue_word* queue_words_ = nullptr;
  ghost_txn* txn_slots_ = nullptr;
  ghost_enclave_word* enclave_words_ = nullptr;
  ghost_class_info* class_info_ = nullptr;
  ghost_cpu_word* cpu_words_ = nullptr;
  ghost_ring* rings_ = nullptr;  // GHOST_NR_RINGS rings
  struct Mapping {
    void* addr;
    size_t len;
  };
  std::vector<Mapping> mappings_;
  int nr_cpus_ = 0;
  int commit_fd_ = -1, hand_over_fd_ = -1, ctl_fd_ = -1, queues_fd_ = -1, enroll_fd_ = -1, doorbell_fd_ = -1;

  absl::Mutex mu_;  // queue and enclave creation/destruction
  std::array<Queue, GHOST_MAX_QUEUES> queues_;
  std::array<bool, GHOST_MAX_QUEUES> retired_{};  // a previous agent's (RetirePreviousQueues)
  EnclaveId agent_enclave_ = 0;
  EnclaveId adopting_ = GHOST_ENCLAVE_NONE;  // ClearPreviousAgent found it in use
  std::array<bool, GHOST_MAX_ENCLAVES> agent_absent_{};
  std::atomic<uint64_t> commit_syscalls_{0};
  std::atomic<uint64_t> hand_over_syscalls_{0};
  std::atomic<uint64_t> malformed_{0};
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_BPF_KERNEL_SIDE_H_
