/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ghost-scx ABI: the only contract between the "kernel side" (the BPF
 * sched_ext class in bpf/progs/, or the simulator in userspace/sim/) and the
 * agents. It is included by BPF C (after vmlinux.h) and by C++ (after
 * <linux/types.h>), so it uses only __u64-style types and plain structs.
 *
 * ghOSt concepts and where they live:
 *   thread identity   p->scx.tid (never reused, never a pid)         ghost_tid
 *   messages          fixed 64-byte records in per-queue ring buffers struct ghost_msg
 *   status words      mmapped array, one word per thread, seqlocked   struct ghost_status_word
 *   agent barrier     per-queue counter bumped by every message       struct ghost_queue_word
 *   transactions      mmapped per-CPU slots, committed in groups      struct ghost_txn
 *   group commit      one bpf() call of a SEC("syscall") program      struct ghost_commit_args
 *   CPU words         mmapped, one per CPU: the class asks an agent   struct ghost_cpu_word
 *                     spinning there to step aside
 *   hand-over         one bpf() call: waiting threads pinned to a CPU struct ghost_hand_over_args
 *                     go to that CPU's queue, in order (pinned push)
 *
 * Every layout here is fixed-size and versioned by GHOST_ABI_VERSION; an agent
 * refuses to attach to a class whose version differs from its own.
 */
#ifndef GHOST_SCX_KERNEL_GHOST_ABI_H
#define GHOST_SCX_KERNEL_GHOST_ABI_H

#include "kernel/ghost_ring.h"

#define GHOST_ABI_VERSION 8 /* 6: pinned push (ghost_cpu_word, GHOST_SW_CLASS_HELD);
                              7: hand-over (ghost_hand_over_args), ghost_msg.flags;
                              8: ring layout 3 (consumers pass a stalled producer) */

/* Limits. Sized for the simulator's largest preset (2x64 cores, SMT2). */
#define GHOST_MAX_CPUS 256
#define GHOST_CPU_MASK_WORDS (GHOST_MAX_CPUS / 64)
#define GHOST_MAX_THREADS 8192 /* status words */
#define GHOST_MAX_QUEUES 64
#define GHOST_MAX_ENCLAVES 8

#define GHOST_TID_NONE 0ULL      /* no thread; in a transaction: idle the CPU */
#define GHOST_QUEUE_NONE 0xffffffffU
#define GHOST_ENCLAVE_NONE 0xffffffffU

/* ------------------------------------------------------------------------
 * Messages (kernel -> agent).
 *
 * Task messages carry the thread's seqnum *after* the event: the status word
 * holds the same number once the message is visible, so an agent that acted on
 * message N and commits with seqnum N is current. CPU messages carry a per-CPU
 * sequence number instead: unique and gap-free, but a CPU message produced on
 * another CPU (a timer's) may arrive before one with a lower number.
 */
enum ghost_msg_type {
	GHOST_MSG_NONE = 0,

	GHOST_MSG_TASK_NEW = 1,
	GHOST_MSG_TASK_WAKEUP,
	GHOST_MSG_TASK_BLOCKED,
	GHOST_MSG_TASK_PREEMPT,
	GHOST_MSG_TASK_YIELD,
	GHOST_MSG_TASK_DEAD,
	GHOST_MSG_TASK_DEPARTED,
	GHOST_MSG_TASK_AFFINITY_CHANGED,
	GHOST_MSG_TASK_PRIORITY_CHANGED,
	GHOST_MSG_TASK_ON_CPU,
	GHOST_MSG_TASK_LAST = GHOST_MSG_TASK_ON_CPU,

	GHOST_MSG_CPU_TICK = 64,
	GHOST_MSG_CPU_AVAILABLE,   /* a higher class gave the CPU back */
	GHOST_MSG_CPU_BUSY,        /* a higher class (CFS, RT) took the CPU */
	GHOST_MSG_CPU_NOT_IDLE,    /* the CPU went to run something not from the agent */
	GHOST_MSG_CPU_TIMER_EXPIRED,
	GHOST_MSG_CPU_LAST = GHOST_MSG_CPU_TIMER_EXPIRED,
};

struct ghost_msg_task_new {
	__u32 pid;        /* for display and for sched_setscheduler(); never an identity */
	__u32 tgid;
	__u32 sw_index;   /* status word of this thread */
	__s32 nice;
	__u32 weight;     /* sched_ext weight, 100 = nice 0 */
	__u32 runnable;   /* 1 if it is runnable right now (a WAKEUP is not sent) */
	__u64 runtime_ns;
};

struct ghost_msg_task_wakeup {
	__u32 waker_cpu;  /* CPU the wakeup came from, or ~0 */
	__u32 deferrable; /* 1: it does not wake a sleeping agent (in_ring) */
	__u64 wake_time_ns;
	/* The class pushed the woken thread into its enclave's ring for node
	 * `ring_node` at position `ring_pos` (in_ring = 1; a ring with
	 * GHOST_RING_F_WAKEUP, kernel/ghost_ring.h): the entry is the agent's
	 * to revoke, and its outcome is reaped like the agent's own pushes. */
	__u32 ring_node;
	__u32 in_ring;
	__u64 ring_pos;
};

/* BLOCKED, PREEMPT, YIELD, DEAD and DEPARTED. */
struct ghost_msg_task_off_cpu {
	__u64 runtime_ns; /* total runtime so far */
	__u32 from_cpu;   /* CPU it was on, or ~0 if it was not on a CPU */
	__u32 was_current;
};

/* AFFINITY_CHANGED; also right after TASK_NEW when the new thread may not
 * run on every CPU (TASK_NEW itself carries no mask). */
struct ghost_msg_task_affinity {
	__u64 cpus[GHOST_CPU_MASK_WORDS];
};

struct ghost_msg_task_priority {
	__s32 nice;
	__u32 weight;
};

struct ghost_msg_task_on_cpu {
	__u32 cpu;
	__u32 pad;
	__u64 commit_seq; /* the transaction that put it there, 0 if none */
};

/* All CPU messages. */
struct ghost_msg_cpu {
	__u32 reason;     /* CPU_BUSY: the sched_ext reason (SCX_CPU_PREEMPT_*) */
	__u32 pad;
	__u64 next_tid;   /* CPU_NOT_IDLE: what it switched to, if known */
	__u64 cookie;     /* TIMER_EXPIRED */
};

/* Message flags (ghost_msg.flags). */
enum ghost_msg_flags {
	/* The class queued the thread on its one CPU itself at this event
	 * (pinned push, bpf/progs/pinned.bpf.h): the agent neither queues nor
	 * commits it until a message without the flag. The status word says
	 * the same (GHOST_SW_CLASS_HELD) only while it is at this seqnum; the
	 * message says it however late it is read. */
	GHOST_MSG_F_CLASS_HELD = 1U << 0,
};

struct ghost_msg {
	__u8 type;        /* enum ghost_msg_type */
	__u8 flags;       /* enum ghost_msg_flags */
	__u16 size;       /* sizeof(struct ghost_msg): readers skip what they do not know */
	__u32 cpu;        /* CPU the event happened on */
	__u64 tid;        /* GHOST_TID_NONE for CPU messages */
	__u64 seqnum;     /* thread seqnum after this event (CPU messages: per-CPU seq) */
	__u64 time_ns;    /* bpf_ktime_get_ns() at the event */
	union {
		struct ghost_msg_task_new task_new;
		struct ghost_msg_task_wakeup wakeup;
		struct ghost_msg_task_off_cpu off_cpu;
		struct ghost_msg_task_affinity affinity;
		struct ghost_msg_task_priority priority;
		struct ghost_msg_task_on_cpu on_cpu;
		struct ghost_msg_cpu cpu_event;
		__u8 payload[32];
	};
};

/* ------------------------------------------------------------------------
 * Status words: one per thread in an mmapped array, written only by the kernel
 * side. Seqlock: `lock` is odd while a writer is inside; a reader copies the
 * word and retries if `lock` was odd or changed.
 */
enum ghost_sw_flags {
	GHOST_SW_INUSE = 1U << 0,     /* the word belongs to `tid` */
	GHOST_SW_RUNNABLE = 1U << 1,
	GHOST_SW_ON_CPU = 1U << 2,
	GHOST_SW_DEAD = 1U << 3,      /* TASK_DEAD/DEPARTED sent; the word will be reused */
	GHOST_SW_WANT_ON_CPU = 1U << 4, /* the agent asked for TASK_ON_CPU messages */
	/* Runnable, and queued by the class itself on the one CPU it may use,
	 * whose agent asked for that (ghost_cpu_word.pinned_push): no commit is
	 * needed or possible until its next event. */
	GHOST_SW_CLASS_HELD = 1U << 5,
};

struct ghost_status_word {
	__u32 lock;
	__u32 flags;      /* enum ghost_sw_flags */
	__u64 tid;
	__u64 seqnum;     /* == the seqnum of the newest message about this thread */
	__u64 runtime_ns;
	__u32 cpu;        /* current or last CPU */
	__u32 enclave;
	__u32 queue;      /* queue its messages go to */
	__u32 pid;
	__u64 switch_time_ns; /* when it last went on or off a CPU */
};

/* ------------------------------------------------------------------------
 * Queues: one kernel->agent ring buffer each, plus a word the agent reads
 * without a syscall. `barrier` is the agent barrier of ghOSt: it moves with
 * every message produced to the queue, so a transaction made before the agent
 * saw the newest message fails as GHOST_TXN_AGENT_STALE.
 */
enum ghost_queue_flags {
	GHOST_QUEUE_INUSE = 1U << 0,
	GHOST_QUEUE_WAKE_AGENT = 1U << 1, /* wake a blocked reader on each message */
};

struct ghost_queue_word {
	__u64 barrier;    /* messages produced (== agent barrier) */
	__u64 dropped;    /* messages lost to a full ring: never silent */
	__u32 flags;      /* enum ghost_queue_flags */
	__u32 enclave;
	__u32 wake_cpu;   /* CPU whose agent this queue wakes, or ~0 */
	__u32 generation; /* bumped each time the slot gets a new ring */
};

/* ------------------------------------------------------------------------
 * Transactions: one slot per CPU. The agent owns a slot in FREE/OPEN/DONE,
 * the kernel side in READY/CLAIMED. Every transition is a compare-and-swap.
 *
 *   FREE -(agent)-> OPEN -(agent, fields written)-> READY -(commit call)->
 *   CLAIMED -(thread started on the CPU, or validation failed)-> DONE
 *   DONE -(agent read the result)-> FREE
 *
 * A transaction is committed when its thread really starts on the CPU
 * (ops.running), not when it is inserted: the result is written then.
 */
enum ghost_txn_state {
	GHOST_TXN_FREE = 0,
	GHOST_TXN_OPEN,
	GHOST_TXN_READY,
	GHOST_TXN_CLAIMED,
	GHOST_TXN_DONE,
};

enum ghost_txn_result {
	GHOST_TXN_PENDING = 0,
	GHOST_TXN_COMMITTED,         /* the thread started on the CPU */
	GHOST_TXN_TARGET_STALE,      /* task_seqnum is older than the thread's */
	GHOST_TXN_AGENT_STALE,       /* the agent's queue has messages it has not seen */
	GHOST_TXN_NOT_FOUND,         /* no such thread (or not in this enclave) */
	GHOST_TXN_NOT_RUNNABLE,
	GHOST_TXN_RUNNING_ELSEWHERE, /* on another CPU right now */
	GHOST_TXN_CPU_UNAVAILABLE,   /* offline, not in the enclave, or a higher class has it */
	GHOST_TXN_NOT_ALLOWED,       /* the thread's affinity forbids the CPU */
	GHOST_TXN_INVALID,           /* malformed slot (bad flags, state, group) */
	GHOST_TXN_ABORTED,           /* a sync group member failed; this one was not run */
	GHOST_TXN_PREEMPTED,         /* lost its CPU before it ran (e.g. a later commit) */
	GHOST_TXN_RESULT_LAST = GHOST_TXN_PREEMPTED,
};

enum ghost_txn_flags {
	GHOST_TXN_F_PREEMPT = 1U << 0,    /* may preempt a ghost thread running there */
	GHOST_TXN_F_NO_BARRIER = 1U << 1, /* skip the agent-barrier check */
	GHOST_TXN_F_SYNC_GROUP = 1U << 2, /* all of `group` run, or none (not implemented: INVALID) */
	GHOST_TXN_F_ALL = (1U << 3) - 1,
};

struct ghost_txn {
	__u32 state;          /* enum ghost_txn_state */
	__u32 result;         /* enum ghost_txn_result */
	__u64 tid;            /* GHOST_TID_NONE: idle the CPU (unschedule) */
	__u64 task_seqnum;    /* the thread's seqnum the agent acted on */
	__u64 agent_barrier;  /* queue barrier the agent acted on */
	__u32 queue;          /* queue whose barrier is checked */
	__u32 flags;          /* enum ghost_txn_flags */
	__u32 group;          /* sync group id (GHOST_TXN_F_SYNC_GROUP) */
	__u32 cpu;            /* the target CPU (== slot index), checked */
	__u64 slice_ns;       /* 0: until it blocks, yields or is preempted */
	__u64 commit_seq;     /* bumped by the kernel side at each result */
	__u64 commit_time_ns; /* when the result was written */
};

/*
 * Context of the group-commit program (BPF_PROG_TEST_RUN of a SEC("syscall")
 * program): every CPU in `cpus` whose slot is READY is committed. One call, any
 * number of CPUs: ghOSt's TXNS_COMMIT.
 */
struct ghost_commit_args {
	__u64 cpus[GHOST_CPU_MASK_WORDS];
	__u32 nr_claimed;     /* out: slots taken by this call */
	__u32 nr_failed;      /* out: slots that failed validation at once */
};

/*
 * Per-thread and per-CPU control (BPF_PROG_TEST_RUN of the SEC("syscall")
 * program `ghost_ctl`): what ghOSt did with ASSOCIATE_QUEUE, the ON_CPU
 * request and timerfd ticks. `ret` is 0 or a negative errno:
 *   ASSOCIATE_QUEUE  -ENOENT no such thread, -EINVAL bad queue (or another
 *                    enclave's), -EBUSY its old queue still holds messages
 *                    about it (drain, then retry).
 *   SET_WANT_ON_CPU  arg: 1 to get TASK_ON_CPU messages, 0 to stop.
 *   ARM_TIMER        a CPU_TIMER_EXPIRED for `cpu` after `arg` ns, carrying
 *                    `cookie` (one pending timer per CPU; re-arming replaces it).
 */
enum ghost_ctl_op {
	GHOST_CTL_ASSOCIATE_QUEUE = 1,
	GHOST_CTL_SET_WANT_ON_CPU,
	GHOST_CTL_ARM_TIMER,
};

struct ghost_ctl_args {
	__u32 op;             /* enum ghost_ctl_op */
	__u32 queue;
	__u64 tid;
	__u64 arg;
	__u64 cookie;
	__u32 cpu;
	__s32 ret;            /* out */
};

/* Enclaves: a CPU set with its own queues and agent. */
struct ghost_enclave_word {
	__u64 cpus[GHOST_CPU_MASK_WORDS];
	__u32 flags;          /* GHOST_ENCLAVE_INUSE */
	__u32 default_queue;  /* new threads' messages go here */
	__u32 watchdog_ms;    /* threads held longer go to the fallback */
	__u32 tick_msgs;      /* GHOST_ENCLAVE_MSG_*: optional CPU messages */
	/* bpf_ktime_get_ns() of the agent's last sign of life; 0: not kept. An
	 * agent silent for watchdog_ms (at least 500 ms), or that wrote 1, is
	 * gone: its threads run through the fallback at once. */
	__u64 agent_heartbeat_ns;
};

#define GHOST_ENCLAVE_INUSE 1U
/* Bits of tick_msgs (1 keeps meaning "send CPU_TICK"). */
#define GHOST_ENCLAVE_MSG_TICK 1U
#define GHOST_ENCLAVE_MSG_NOT_IDLE 2U

/*
 * Agent threads run above the class (SCHED_FIFO). The class must know which
 * threads are agents and whether they give their CPU back by themselves
 * (the value stored for an agent thread's pid in the class's agent_tids map).
 */
#define GHOST_AGENT_PER_CPU 1U /* blocks when idle: its own commits run then */
#define GHOST_AGENT_GLOBAL 2U  /* busy-polls: its CPU runs threads only when it yields */
#define GHOST_AGENT_KIND_MASK 0xffU
/* The bits above the kind: the enclave the agent serves (a successor agent
 * forgets the dead agent threads of its own enclave only). */
#define GHOST_AGENT_ENCLAVE_SHIFT 8

/*
 * Per-CPU words (an mmapped array, GHOST_MAX_CPUS long). The class sets
 * `yield_request` when a thread that may run on no other CPU it can get waits
 * while an agent spins here (a thread pinned to the global agent's CPU, or
 * one the kernel queued on this CPU by itself); the agent library clears it
 * with an exchange and steps aside for a moment (AgentOptions::yield_for).
 */
struct ghost_cpu_word {
	__u32 yield_request;
	/* Written by the global agent whose home this CPU is: 1 while it sleeps
	 * on its queue (nothing to do), so the CPU's ops.dispatch takes threads
	 * from the fast-path rings like any CPU's; its waking takes the CPU back
	 * (ops.cpu_release sends what waits there back to the agent). */
	__u32 agent_asleep;
	__u64 yield_requests; /* times the class asked (counter) */
	/* Written by the per-CPU agent of this CPU: 1 while it has nothing
	 * waiting for the CPU. A thread of its enclave that may run only here
	 * and becomes runnable (wakes up, is preempted, changes affinity) is
	 * then queued on this CPU by the class itself, behind what is queued
	 * there, instead of waiting for a commit; its message says so
	 * (GHOST_SW_CLASS_HELD in its status word) and does not wake an agent. */
	__u32 pinned_push;
	__u32 pad;
};

/*
 * Hand-over (BPF_PROG_TEST_RUN of the SEC("syscall") program
 * `ghost_hand_over`, bpf/progs/pinned.bpf.h): a per-CPU agent gives threads
 * that wait for it and may run only on `cpu` to the class, which queues them
 * on that CPU in the order given, as pinned push would have at their
 * enqueue. Its runqueue then empties and pinned push can stay on. Each
 * entry's result is a GHOST_TXN_* code: COMMITTED (the class holds it now:
 * it runs on `cpu` in its turn, and its next message without
 * GHOST_MSG_F_CLASS_HELD makes it its agent's again), TARGET_STALE (the
 * seqnum is old), NOT_ALLOWED (its affinity is not `cpu` alone),
 * NOT_RUNNABLE, NOT_FOUND, RUNNING_ELSEWHERE (moved or being moved by a
 * commit, a ring consumer or the fallback), CPU_UNAVAILABLE (`cpu` is
 * offline or outside the thread's enclave). `nr` above GHOST_HAND_OVER_MAX
 * fails the whole call (the program returns -EINVAL, no entry is read).
 */
#define GHOST_HAND_OVER_MAX 32

struct ghost_hand_over_entry {
	__u64 tid;
	__u64 task_seqnum;    /* the thread's seqnum the agent acted on */
	__u32 result;         /* out: enum ghost_txn_result */
	__u32 pad;
};

struct ghost_hand_over_args {
	__u32 cpu;
	__u32 nr;             /* entries used, <= GHOST_HAND_OVER_MAX */
	__u32 nr_handed;      /* out: entries now held by the class */
	__u32 pad;
	struct ghost_hand_over_entry entries[GHOST_HAND_OVER_MAX];
};

/*
 * Fast-path rings (issue 9, docs/FAST_PATH.md): the class's `ghost_rings` map
 * holds GHOST_MAX_ENCLAVES * GHOST_RING_MAX_NODES rings; enclave e's ring for
 * node n is element GHOST_RING_INDEX(e, n). Nodes are the loader's view of the
 * NUMA topology, folded modulo GHOST_RING_MAX_NODES (class_info.cpu_node).
 */
#define GHOST_RING_INDEX(enclave, node) ((enclave) * GHOST_RING_MAX_NODES + (node))
#define GHOST_NR_RINGS (GHOST_MAX_ENCLAVES * GHOST_RING_MAX_NODES)

/* Context of the `ghost_ring_doorbell` syscall program: wakes up to kicks[n]
 * idle CPUs of `enclave` on node n (SCX_KICK_IDLE), in one bpf() call. */
struct ghost_ring_doorbell_args {
	__u32 enclave;
	__u32 kicks[GHOST_RING_MAX_NODES];
	__u32 nr_kicked;      /* out: CPUs kicked */
};

/* Class-wide information, readable by agents (a one-element mmapped array). */
struct ghost_class_info {
	__u32 abi_version;    /* GHOST_ABI_VERSION of the loaded class */
	__u32 nr_cpus;
	__u64 fallback_runs;  /* threads run by the fallback (agent late or gone) */
	__u64 msgs_dropped;   /* across all queues */
	__u64 commits;        /* group-commit calls */
	__u32 kernel_timeout_ms; /* sched_ext's stall timeout the class was loaded with */
	__u32 max_watchdog_ms;   /* longest enclave watchdog the class honours (half of it) */
	/* The NUMA nodes the fast path's consumers use (set by the loader from
	 * sysfs, folded modulo GHOST_RING_MAX_NODES): rings per enclave in use,
	 * and each CPU's node (< nr_nodes). */
	__u32 nr_nodes;
	__u32 pad;
	__u8 cpu_node[GHOST_MAX_CPUS];
};

/* The last thread an enclave watchdog moved, as the class saw it then (.bss,
 * a diagnostic: ghost-agent --stats prints it beside its policy's view). */
struct ghost_watchdog_move_record {
	__u64 seq, held_ns;
	__u32 pid, queue, last_queue, state;
	__s32 park_cpu, cpu, txn_cpu;
	__u32 nr_cpus_allowed;
	__u64 tid; /* p->scx.tid: what the policy knows the thread by */
	/* Where the kernel may run it: its runqueue's CPU, whether it is
	 * migration-disabled (then there only), the first word of the mask the
	 * kernel checks (cpus_ptr) and of the one it was given (cpus_mask). */
	__s32 task_cpu;
	__u32 migration_disabled;
	__u64 cpus_ptr0, cpus_mask0;
};

/* Why the kernel ended the class, copied out in ops.exit for the loader. */
struct ghost_exit_record {
	__s32 kind;        /* enum scx_exit_kind; 0 while the class runs */
	__s32 exit_cpu;
	__s64 exit_code;
	char reason[128];
	char msg[1024];
};

#endif /* GHOST_SCX_KERNEL_GHOST_ABI_H */
