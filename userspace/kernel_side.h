// The kernel side of the ghOSt ABI, as the agent library sees it.
//
// Two implementations exist and every policy runs unchanged on both:
//   - BpfKernelSide (userspace/bpf_kernel_side.*): the sched_ext class in
//     bpf/progs/, reached through its skeleton, mmapped maps and the
//     group-commit syscall program.
//   - sim::SimKernelSide (userspace/sim/): the deterministic simulator.
//
// Everything an agent reads without a syscall in ghOSt (status words, queue
// words, transaction slots) is exposed as memory here; everything that is a
// syscall in ghOSt is a virtual call. Layouts are those of kernel/ghost_abi.h.
#ifndef GHOST_SCX_USERSPACE_KERNEL_SIDE_H_
#define GHOST_SCX_USERSPACE_KERNEL_SIDE_H_

#include <linux/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "kernel/ghost_abi.h"
#include "kernel/ghost_ring.h"
#include "userspace/cpu_list.h"

namespace ghost {

using Tid = uint64_t;      // p->scx.tid: unique, never reused, never a pid
using QueueId = uint32_t;
using EnclaveId = uint32_t;

struct QueueOptions {
  EnclaveId enclave = 0;
  size_t ring_bytes = 256 * 1024;  // power of two, >= one page
  int wake_cpu = -1;               // CPU whose agent the queue wakes; -1: none
  bool wake_agent = true;          // false: the reader busy-polls
};

struct EnclaveOptions {
  // Which enclave number: GHOST_ENCLAVE_NONE takes the lowest free one. An
  // agent that names its enclave (ghost-agent --enclave) asks for it here.
  EnclaveId id = GHOST_ENCLAVE_NONE;
  CpuList cpus;
  uint32_t watchdog_ms = 1000;  // threads held longer run through the fallback
  bool tick_messages = false;   // send CPU_TICK
  // Bytes of each message queue the enclave's agents create (--queue-bytes):
  // a power of two, >= one page.
  size_t queue_bytes = 256 * 1024;
};

class KernelSide {
 public:
  virtual ~KernelSide() = default;

  // Number of CPUs this kernel side has (possible CPUs), <= GHOST_MAX_CPUS.
  virtual int NumCpus() const = 0;

  // ABI version of the kernel side; agents refuse a mismatch.
  virtual uint32_t AbiVersion() const = 0;

  // Enclaves ----------------------------------------------------------------
  virtual absl::StatusOr<EnclaveId> CreateEnclave(const EnclaveOptions& opts) = 0;
  virtual absl::Status DestroyEnclave(EnclaveId enclave) = 0;

  // Queues (ghOSt's CREATE/DESTROY/ASSOCIATE_QUEUE, CONFIG_QUEUE_WAKEUP) ----
  virtual absl::StatusOr<QueueId> CreateQueue(const QueueOptions& opts) = 0;
  virtual absl::Status DestroyQueue(QueueId queue) = 0;
  // Makes `queue` the enclave's default queue (new threads report there).
  virtual absl::Status SetDefaultQueue(EnclaveId enclave, QueueId queue) = 0;
  // Moves tid's future messages to `queue`. FailedPrecondition while its old
  // queue still holds unread messages about it (as in ghOSt).
  virtual absl::Status AssociateQueue(Tid tid, QueueId queue) = 0;
  virtual absl::Status ConfigQueueWakeup(QueueId queue, int wake_cpu,
                                         bool wake_agent) = 0;

  // Calls `fn` for every message waiting in `queue`, oldest first, and
  // consumes them. Never blocks. Returns the number consumed. The record is
  // only valid during the call.
  virtual size_t ConsumeQueue(QueueId queue,
                              absl::FunctionRef<void(const ghost_msg&)> fn) = 0;
  // Blocks until `queue` has a message or `timeout` passes (real kernel);
  // the simulator returns at once.
  virtual absl::Status WaitQueue(QueueId queue, absl::Duration timeout) = 0;
  // A descriptor that polls readable while `queue` has messages, so that an
  // agent can wait for its queue and for other agents (AgentWakeup) at once;
  // -1 if there is none (then WaitQueue is the only way to wait).
  virtual int QueueFd(QueueId queue) const { return -1; }

  // Shared memory, read without a syscall --------------------------------
  virtual const ghost_queue_word& QueueWord(QueueId queue) const = 0;
  // The status word array, GHOST_MAX_THREADS long.
  virtual const ghost_status_word* StatusWords() const = 0;
  // Transaction slot of `cpu`, written by the agent.
  virtual ghost_txn* TxnSlot(int cpu) = 0;

  // Group commit: every READY slot among `cpus`, in one call (one bpf()
  // syscall on the real kernel). Results appear in the slots.
  virtual absl::Status Commit(const CpuList& cpus) = 0;

  // Agents ------------------------------------------------------------------
  // True (once) if the kernel side asked the agent on `cpu` to step aside: a
  // thread that may run nowhere else waits there while the agent spins
  // (ghost_cpu_word). Agent::Run then yields the CPU for a moment.
  virtual bool TakeYieldRequest(int cpu) { return false; }
  // A global agent sleeping on its queue says so (ghost_cpu_word.agent_asleep):
  // meanwhile its CPU takes threads from the fast-path rings like any other.
  virtual void SetAgentAsleep(int cpu, bool asleep) {}
  // The agent reading `queue` is alive (Agent::Run calls it every few ms):
  // refreshes its enclave's agent heartbeat if one is kept and the agent is
  // not marked absent (handing over, resyncing). Agent threads, not only the
  // process's own fair-class thread, keep it: RT threads on every CPU (a
  // spinning global agent, an RT program) starve that thread, and the class
  // would send the enclave's threads to the fallback while its agents run.
  virtual void AgentHeartbeat(QueueId queue) {}
  // A per-CPU agent with nothing waiting for `cpu` lets the class queue a
  // thread of its enclave that may run only there on it itself
  // (ghost_cpu_word.pinned_push, bpf/progs/pinned.bpf.h); such a thread's
  // messages then carry GHOST_SW_CLASS_HELD in its status word. A kernel
  // side without it keeps committing (the default).
  virtual void SetPinnedPush(int cpu, bool on) {}
  // Whether a higher class holds `cpu`, as the kernel side itself last saw
  // it (what CPU_BUSY and CPU_AVAILABLE report), if it exposes that: an agent
  // that lost a CPU_AVAILABLE (its queue overflowed) would otherwise keep
  // the CPU for busy for good. nullopt: only the messages tell.
  virtual std::optional<bool> CpuBusy(int cpu) const { return std::nullopt; }
  // Hand-over (ghost_hand_over_args): gives the class threads that wait for
  // this agent and may run only on `cpu`; it queues them there in the order
  // given, as pinned push would have. Each entry's `result` is a GHOST_TXN_*
  // code: COMMITTED means the class holds it now (the agent neither queues
  // nor commits it until a message without GHOST_SW_CLASS_HELD). One bpf()
  // call per GHOST_HAND_OVER_MAX entries. Unimplemented where the kernel
  // side has no pinned push (the simulator): keep committing.
  struct HandOverEntry {
    Tid tid = GHOST_TID_NONE;
    uint64_t seqnum = 0;  // the thread's seqnum the agent acted on
    uint32_t result = 0;  // out
  };
  virtual absl::Status HandOver(int cpu, absl::Span<HandOverEntry> entries) {
    return absl::UnimplementedError("this kernel side has no hand-over");
  }

  // Fast-path rings (issue 9, docs/FAST_PATH.md) ----------------------------
  // Each enclave has one ring per NUMA node; an idle CPU of the enclave
  // (ops.dispatch with nothing local) claims entries from its node's ring.
  // A kernel side without rings keeps these defaults (one node, no region).
  virtual int NumNodes() const { return 1; }
  // NUMA node of `cpu`, as the consumers see it; always < NumNodes().
  virtual int NodeOfCpu(int cpu) const { return 0; }
  // The shared memory of `enclave`'s ring for `node` (Ring::Create/Attach it),
  // or nullptr when this kernel side has no rings.
  virtual ghost_ring* RingRegion(EnclaveId enclave, int node) { return nullptr; }
  // Doorbell: wakes up to kicks[node] idle CPUs of `enclave` on each node, so
  // that they consume what was just pushed; one call (one bpf() syscall).
  virtual absl::Status RingDoorbell(EnclaveId enclave, absl::Span<const uint32_t> kicks) {
    return absl::UnimplementedError("this kernel side has no fast-path rings");
  }

  // Thread control (tests and ghost-run) ------------------------------------
  // Asks for TASK_ON_CPU messages about `tid`.
  virtual absl::Status SetWantOnCpu(Tid tid, bool want) = 0;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_KERNEL_SIDE_H_
