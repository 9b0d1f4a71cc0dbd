/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-thread state the class keeps privately (task storage), next to the
 * public status word. Every field is written from callbacks about that thread,
 * which the kernel serialises with the thread's rq lock; the commit program
 * only reads it, and the thread's own callbacks finish what a commit started.
 */
#ifndef GHOST_SCX_BPF_TASKS_H
#define GHOST_SCX_BPF_TASKS_H

#include "ghost_common.bpf.h"
#include "status_words.bpf.h"

enum ghost_task_state {
	GT_BLOCKED = 0,  /* not runnable */
	GT_HELD,         /* runnable, parked, waiting for the agent */
	GT_QUEUED,       /* moved to a CPU by a commit or the fallback */
	GT_ON_CPU,
};

/* Why it last stopped while still runnable: decides the enqueue message. */
enum ghost_stop_reason {
	GT_STOP_NONE = 0,
	GT_STOP_PREEMPT,
	GT_STOP_YIELD,
};

struct ghost_task {
	__u64 seq;         /* thread seqnum: bumped by every message about it */
	__u64 last_pos;    /* producer position of `last_queue` after its last message */
	__u64 held_at;     /* when it started waiting for the agent (0: not waiting) */
	__u64 txn_token;   /* commit_seq of slot `txn_cpu` when it was claimed */
	__u64 txn_commit_seq; /* the transaction that last put it on a CPU */
	__u64 txn_slice_ns; /* the slice the claiming commit asked for (0: infinite) */
	__u64 renew_slice_ns; /* its run's slice, renewed while nothing waits (slices.bpf.h; 0: never) */
	__u64 preempt_commit_at; /* when a preempting commit moved it (0: none pending) */
	__u64 cpus[GHOST_CPU_MASK_WORDS]; /* affinity last reported */
	__u32 weight;      /* weight last reported */
	__u32 sw;          /* status word index or GHOST_SW_NONE */
	__u32 enclave;     /* GHOST_ENCLAVE_NONE: runs in the fallback FIFO */
	__u32 queue;
	__u32 last_queue;  /* the queue that got its last message */
	__u32 last_gen;    /* that queue's generation then */
	__u32 state;       /* enum ghost_task_state */
	__u32 stop_reason; /* enum ghost_stop_reason */
	__s32 park_cpu;    /* parking DSQ it sits in while GT_HELD */
	__s32 txn_cpu;     /* slot whose commit moved it, or -1 */
	__s32 cpu;         /* current or last CPU */
	__s32 pin_cpu;     /* queued there by the class (pinned.bpf.h) until it runs, or -1 */
	/* Fast path (fast_path.bpf.h): the ring entry that moved it. ring_cpu is
	 * the consumer that claims it (-1: none; taken with a CAS, excludes a
	 * commit); ring_moved: the move succeeded, the entry (ring_idx, ring_pos)
	 * waits for ops.running (RAN) or a bounce (STALE BOUNCED). */
	__u64 ring_pos;
	__u32 ring_idx;
	__s32 ring_cpu;
	__u8 ring_moved;
	__u8 enabled;      /* TASK_NEW sent, DEAD/DEPARTED not yet */
	__u8 want_on_cpu;  /* agent asked for TASK_ON_CPU */
	__u8 yielding;     /* ops.yield seen; the next stop is a yield */
	__u8 fallback;     /* placed by the fallback, not by an agent */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ghost_task);
} task_ctx SEC(".maps");

static __always_inline struct ghost_task *task_get(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx, p, 0, 0);
}

static __always_inline struct ghost_task *task_create(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

/* Runnable and queued on its one CPU by the class itself (pinned.bpf.h). */
static __always_inline bool task_class_held(const struct ghost_task *t)
{
	return t->pin_cpu >= 0 && t->state != GT_BLOCKED;
}

/* A thread the class delegates to an agent (else: fallback FIFO). */
static __always_inline bool task_in_enclave(const struct ghost_task *t)
{
	return t && t->enabled && t->enclave != GHOST_ENCLAVE_NONE;
}

/*
 * The class's own tid -> task index, for every delegated thread: filled in
 * ops.enable (before TASK_NEW is sent), emptied when DEAD/DEPARTED is sent.
 * sched_ext's tid hash is not enough: for a fork, 7.2 calls ops.enable from
 * scx_post_fork() and only afterwards publishes the task in scx_tid_hash
 * (under scx_tasks_lock), so scx_bpf_tid_to_task() misses a thread whose
 * TASK_NEW the agent may already hold. The entry owns a task reference
 * (RCU-freed: bpf_task_release), so a reader under RCU may use it.
 */
struct ghost_task_ref {
	struct task_struct __kptr *task;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GHOST_MAX_THREADS); /* one per status word */
	__type(key, __u64);                     /* p->scx.tid */
	__type(value, struct ghost_task_ref);
} tid_index SEC(".maps");

__u64 tid_index_failures; /* a full index: lookups fall back to the kernel's */

static __always_inline void tid_index_add(struct task_struct *p)
{
	struct ghost_task_ref fresh = {}, *ref;
	struct task_struct *held, *old;
	__u64 tid = p->scx.tid;

	if (bpf_map_update_elem(&tid_index, &tid, &fresh, BPF_ANY) ||
	    !(ref = bpf_map_lookup_elem(&tid_index, &tid))) {
		__sync_fetch_and_add(&tid_index_failures, 1);
		return;
	}
	held = bpf_task_acquire(p);
	if (!held) {
		bpf_map_delete_elem(&tid_index, &tid);
		return;
	}
	old = bpf_kptr_xchg(&ref->task, held);
	if (old)
		bpf_task_release(old);
}

/* Drops the entry and its reference: from now on NOT_FOUND means gone. */
static __always_inline void tid_index_del(struct task_struct *p)
{
	__u64 tid = p->scx.tid;

	bpf_map_delete_elem(&tid_index, &tid);
}

/*
 * The thread `tid`, RCU-protected (callers hold bpf_rcu_read_lock()): the
 * class's index first, then sched_ext's hash (threads the class does not
 * delegate, or a full index).
 */
static __always_inline struct task_struct *task_from_tid(__u64 tid)
{
	struct ghost_task_ref *ref = bpf_map_lookup_elem(&tid_index, &tid);
	struct task_struct *p = NULL;

	if (ref)
		p = ref->task;
	if (!p)
		p = scx_bpf_tid_to_task(tid);
	return p;
}

static __always_inline __s32 task_nice(const struct task_struct *p)
{
	return (__s32)p->static_prio - 120;
}

#endif /* GHOST_SCX_BPF_TASKS_H */
