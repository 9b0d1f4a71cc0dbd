/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transactions: ghOSt's TXN_CREATE / TXNS_COMMIT.
 *
 * One slot per CPU in an mmapped array. The agent fills a slot and marks it
 * READY; one run of the `ghost_commit` syscall program (one bpf() call) claims
 * every READY slot of the CPUs it is given and applies each synchronously:
 * validate (seqnum, barrier, enclave, online, affinity), find the waiting
 * thread in its parking DSQ with the DSQ iterator, re-check its affinity on
 * the iterated task (the kernel refuses a stale iterator, so an affinity change
 * racing the commit makes the move fail instead of ejecting the class), and
 * move it to the target's local DSQ with SCX_ENQ_IMMED.
 *
 * A claimed slot stays CLAIMED until the thread's own callbacks settle it:
 * ops.running on the target writes COMMITTED; a bounce back to ops.enqueue
 * with SCX_ENQ_REENQ (the CPU was taken) writes CPU_UNAVAILABLE. Results are
 * written before the state moves to DONE, with full-barrier atomics.
 */
#ifndef GHOST_SCX_BPF_TRANSACTIONS_H
#define GHOST_SCX_BPF_TRANSACTIONS_H

#include "ghost_common.bpf.h"
#include "class_info.bpf.h"
#include "enclaves.bpf.h"
#include "fallback.bpf.h"
#include "queues.bpf.h"
#include "tasks.bpf.h"

/* Times the commit scans a parking DSQ for a thread that is being parked
 * right now (its message can be visible a moment before it is in the DSQ). */
#define COMMIT_SCAN_TRIES 4

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct ghost_txn);
} txn_slots SEC(".maps");

__u64 cpu_curr_tid[GHOST_MAX_CPUS]; /* enclave thread on the CPU, 0: none */
__u8 cpu_busy[GHOST_MAX_CPUS];      /* a higher class holds the CPU */
/* A commit of GHOST_TID_NONE preempted the CPU's thread: its slice is not
 * renewed (slices.bpf.h); cleared when that is checked. */
__u8 cpu_idle_requested[GHOST_MAX_CPUS];
__u64 nr_commit_calls;              /* runs of ghost_commit (== bpf() calls) */
__u64 nr_txn_claimed, nr_txn_moved;
__u64 nr_txn_results[GHOST_TXN_RESULT_LAST + 1];


static __always_inline struct ghost_txn *txn_slot(__u32 cpu)
{
	if (cpu >= GHOST_MAX_CPUS)
		return NULL;
	return bpf_map_lookup_elem(&txn_slots, &cpu);
}

static __always_inline void txn_finish(struct ghost_txn *txn, __u32 result)
{
	txn->result = result;
	txn->commit_time_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&txn->commit_seq, 1);
	__sync_val_compare_and_swap(&txn->state, GHOST_TXN_CLAIMED, GHOST_TXN_DONE);
	if (result <= GHOST_TXN_RESULT_LAST)
		__sync_fetch_and_add(&nr_txn_results[result], 1);
}

/*
 * Settle the slot that moved `t` (from the thread's own callbacks). Only the
 * claim that is still current is settled: the token is the slot's commit_seq
 * at claim time and every result bumps it.
 */
static __always_inline void txn_settle(struct task_struct *p, struct ghost_task *t, __u32 result)
{
	__s32 cpu = t->txn_cpu;
	struct ghost_txn *txn;

	t->preempt_commit_at = 0;
	if (cpu < 0)
		return;
	t->txn_cpu = -1;
	txn = txn_slot(cpu);
	if (!txn || txn->state != GHOST_TXN_CLAIMED || txn->commit_seq != t->txn_token ||
	    txn->tid != p->scx.tid)
		return;
	if (result == GHOST_TXN_COMMITTED)
		t->txn_commit_seq = t->txn_token + 1;
	txn_finish(txn, result);
}

struct commit_out {
	__u32 claimed;
	__u32 failed;
};

/* Preempting commits: from the move to the victim's stop and to the new
 * thread's run (ns). */
__u64 nr_preempt_runs, preempt_run_lat_sum_ns, preempt_run_lat_max_ns;
__u64 nr_preempt_stops, preempt_stop_lat_sum_ns, preempt_stop_lat_max_ns;
__u64 cpu_preempt_at[GHOST_MAX_CPUS];

/* Moves refused because the thread was migration-disabled on another CPU. */
__u64 nr_txn_migration_disabled;

/*
 * Find `tid` in the parking DSQ of `park_cpu` and move it to `cpu`. Returns
 * PENDING if it moved (the slot is settled later), else the failure.
 * `only_cpu`: it must also be allowed on `cpu` alone (a hand-over).
 */
static __always_inline __u32 txn_move(__u64 tid, __s32 park_cpu, __u32 cpu, __u64 slice,
				      __u64 enq_flags, bool only_cpu)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *q;
	__u32 res = GHOST_TXN_NOT_RUNNABLE;

	if (park_cpu < 0 || park_cpu >= GHOST_MAX_CPUS)
		return res;
	if (bpf_iter_scx_dsq_new(&it, PARK_DSQ(park_cpu), 0) == 0) {
		while ((q = bpf_iter_scx_dsq_next(&it))) {
			if (q->scx.tid != tid)
				continue;
			/* Affinity of the task as the iterator holds it: if it
			 * changes after this, the move below fails. */
			if (!bpf_cpumask_test_cpu(cpu, q->cpus_ptr) ||
			    (only_cpu && q->nr_cpus_allowed != 1)) {
				res = GHOST_TXN_NOT_ALLOWED;
				break;
			}
			if (task_migration_disabled(q) && scx_bpf_task_cpu(q) != (s32)cpu) {
				__sync_fetch_and_add(&nr_txn_migration_disabled, 1);
				res = GHOST_TXN_NOT_ALLOWED;
				break;
			}
			RACE_WINDOW();
			scx_bpf_dsq_move_set_slice(&it, slice);
			if (scx_bpf_dsq_move(&it, q, SCX_DSQ_LOCAL_ON | cpu, enq_flags))
				res = GHOST_TXN_PENDING;
			break;
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	return res;
}

/* Validate and apply the claimed slot of `cpu`; PENDING if the thread moved. */
static __always_inline __u32 txn_apply(__u32 cpu, struct ghost_txn *txn)
{
	__u32 flags = txn->flags, enclave, res;
	__u64 tid = txn->tid, curr, slice, enq_flags;
	struct ghost_queue_word *qw;
	struct task_struct *p;
	struct ghost_task *t;
	bool preempt = false, local;
	__s32 park_cpu;

	if (txn->cpu != cpu || (flags & ~GHOST_TXN_F_ALL) || (flags & GHOST_TXN_F_SYNC_GROUP))
		return GHOST_TXN_INVALID;
	/* A per-CPU agent commits to its own CPU, which it holds (as RT) until
	 * it blocks: that CPU is not "taken by a higher class" for this commit. */
	local = cpu == bpf_get_smp_processor_id();
	if (!cpu_online(cpu) || (!local && cpu_busy[cpu & (GHOST_MAX_CPUS - 1)]))
		return GHOST_TXN_CPU_UNAVAILABLE;
	enclave = cpu_enclave(cpu);
	if (enclave == GHOST_ENCLAVE_NONE)
		return GHOST_TXN_CPU_UNAVAILABLE;
	if (!(flags & GHOST_TXN_F_NO_BARRIER)) {
		qw = enclave_queue_word(txn->queue, enclave);
		if (!qw)
			return GHOST_TXN_INVALID;
		if (qw->barrier != txn->agent_barrier)
			return GHOST_TXN_AGENT_STALE;
	}
	curr = cpu_curr_tid[cpu & (GHOST_MAX_CPUS - 1)];

	if (tid == GHOST_TID_NONE) {
		/* Idle the CPU: whatever enclave thread runs there goes back
		 * to its agent (PREEMPT). */
		if (curr) {
			cpu_idle_requested[cpu & (GHOST_MAX_CPUS - 1)] = 1;
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		}
		return GHOST_TXN_COMMITTED;
	}

	bpf_rcu_read_lock();
	p = task_from_tid(tid);
	if (!p) {
		res = GHOST_TXN_NOT_FOUND;
		goto out;
	}
	t = task_get(p);
	if (!t || !task_in_enclave(t) || t->enclave != enclave) {
		res = GHOST_TXN_NOT_FOUND;
		goto out;
	}
	if (t->seq != txn->task_seqnum) {
		res = GHOST_TXN_TARGET_STALE;
		goto out;
	}
	if (t->state == GT_ON_CPU) {
		res = t->cpu == (__s32)cpu ? GHOST_TXN_COMMITTED : GHOST_TXN_RUNNING_ELSEWHERE;
		goto out;
	}
	if (t->state == GT_BLOCKED) {
		res = GHOST_TXN_NOT_RUNNABLE;
		goto out;
	}
	if (t->txn_cpu >= 0 || t->ring_cpu >= 0 || t->state != GT_HELD) {
		/* Already moved by another commit, a ring consumer or the fallback. */
		res = GHOST_TXN_RUNNING_ELSEWHERE;
		goto out;
	}
	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr)) {
		res = GHOST_TXN_NOT_ALLOWED;
		goto out;
	}
	if (curr && curr != tid) {
		if (!(flags & GHOST_TXN_F_PREEMPT)) {
			res = GHOST_TXN_CPU_UNAVAILABLE;
			goto out;
		}
		preempt = true;
	}

	/* Claim the thread for this slot before it can possibly run. */
	park_cpu = t->park_cpu;
	t->txn_token = txn->commit_seq;
	/* Against a ring consumer (fast_path.bpf.h): publish the claim with a
	 * full barrier, then look for theirs; at most one side proceeds. */
	__sync_lock_test_and_set(&t->txn_cpu, (__s32)cpu);
	if (*(volatile __s32 *)&t->ring_cpu >= 0) {
		__sync_val_compare_and_swap(&t->txn_cpu, (__s32)cpu, -1);
		res = GHOST_TXN_RUNNING_ELSEWHERE;
		goto out;
	}
	slice = txn->slice_ns ? txn->slice_ns : SCX_SLICE_INF;
	t->txn_slice_ns = txn->slice_ns;
	/* IMMED hands the thread back (-> CPU_UNAVAILABLE) if the CPU is busy;
	 * when preempting one of ours, queue it first (PREEMPT ends the running
	 * thread's slice); on the agent's own CPU, queue it: it runs when the
	 * agent blocks.
	 * On a CPU with no thread of ours, IMMED alone bounces whenever an SCX
	 * thread was just queued on that CPU's runqueue (sched_ext then thinks
	 * the CPU is about to run it): a thread parked there by its own wake-up
	 * does that, so nearly every commit made right at TASK_WAKEUP bounced.
	 * PREEMPT makes the kernel accept the insert and re-run dispatch;
	 * a higher class on the CPU still bounces it. */
	if (preempt)
		enq_flags = SCX_ENQ_PREEMPT;
	else if (local)
		enq_flags = 0;
	else
		enq_flags = SCX_ENQ_IMMED | (curr ? 0 : SCX_ENQ_PREEMPT);
	res = GHOST_TXN_NOT_RUNNABLE;
	for (int i = 0; i < COMMIT_SCAN_TRIES && res == GHOST_TXN_NOT_RUNNABLE; i++)
		res = txn_move(tid, park_cpu, cpu, slice, enq_flags, false);
	/* Still waiting to be parked (ops.enqueue's insert lands only after the
	 * callback, which already sent the message): runnable, so not
	 * NOT_RUNNABLE (the agent would wait for a WAKEUP that never comes);
	 * the kernel side is moving it: the agent retries shortly. */
	if (res == GHOST_TXN_NOT_RUNNABLE && t->state == GT_HELD)
		res = GHOST_TXN_RUNNING_ELSEWHERE;
	if (res != GHOST_TXN_PENDING)
		__sync_val_compare_and_swap(&t->txn_cpu, (__s32)cpu, -1);
	else if (preempt) {
		t->preempt_commit_at = bpf_ktime_get_ns();
		cpu_preempt_at[cpu & (GHOST_MAX_CPUS - 1)] = t->preempt_commit_at;
	}
out:
	bpf_rcu_read_unlock();
	if (res == GHOST_TXN_PENDING) {
		__sync_fetch_and_add(&nr_txn_moved, 1);
		/* The move enqueued with SCX_ENQ_PREEMPT under the target's
		 * rq lock, and sched_ext itself ended the running thread's
		 * slice and rescheduled the target, whether the thread came
		 * from another runqueue or from the target's own (the latter
		 * since a 6.12+ stable fix to local DSQ moves). A PREEMPT kick
		 * on top is asynchronous (irq_work here, then an IPI): landing
		 * after the placed thread started, it preempts that thread
		 * instead (a PREEMPT right after a commit, with no CPU_BUSY,
		 * seen under TCG). The IDLE kick only wakes an idle target. */
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
	return res;
}

/* One slot of a group commit. Global (verified once, not per CPU). */
__noinline int txn_commit_cpu(__u32 cpu)
{
	struct ghost_txn *txn = txn_slot(cpu);
	__u32 res;

	if (!txn)
		return 0;
	if (__sync_val_compare_and_swap(&txn->state, GHOST_TXN_READY, GHOST_TXN_CLAIMED) !=
	    GHOST_TXN_READY)
		return 0;
	__sync_fetch_and_add(&nr_txn_claimed, 1);
	res = txn_apply(cpu, txn);
	if (res == GHOST_TXN_PENDING)
		return 1;
	txn_finish(txn, res);
	return 2;
}

static long commit_bit(__u64 i, void *data)
{
	struct ghost_commit_args *args = data; /* a stack copy: bpf_loop wants one */
	__u32 cpu = (__u32)i & (GHOST_MAX_CPUS - 1);
	int r;

	if (!((args->cpus[cpu / 64] >> (cpu % 64)) & 1))
		return 0;
	r = txn_commit_cpu(cpu);
	args->nr_claimed += r != 0;
	args->nr_failed += r == 2;
	return 0;
}

/* ghOSt's TXNS_COMMIT: every READY slot among args->cpus, in one bpf() call. */
SEC("syscall")
int ghost_commit(struct ghost_commit_args *args)
{
	struct ghost_commit_args a;

	__sync_fetch_and_add(&nr_commit_calls, 1);
	CLASS_COUNT(commits);
	__builtin_memcpy(a.cpus, args->cpus, sizeof(a.cpus));
	a.nr_claimed = 0;
	a.nr_failed = 0;
	bpf_loop(nr_cpus < GHOST_MAX_CPUS ? nr_cpus : GHOST_MAX_CPUS, commit_bit, &a, 0);
	args->nr_claimed = a.nr_claimed;
	args->nr_failed = a.nr_failed;
	return 0;
}

#endif /* GHOST_SCX_BPF_TRANSACTIONS_H */
