/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pinned push: the per-CPU agents' counterpart of the fast path's wake-up
 * push (docs/FAST_PATH.md, "Threads pinned to one CPU").
 *
 * A per-CPU agent with nothing waiting for its CPU sets its CPU word's
 * `pinned_push`. A thread of its enclave that may run only on that CPU and
 * becomes runnable (it wakes up, is preempted or yields, or its affinity
 * changes while it is runnable) is then queued by the class itself on that
 * CPU's local DSQ, behind whatever is queued there, instead of being parked
 * until an agent commits it: there is only one place it can go, so nothing
 * is left to decide but its turn, and the agent asked for first come, first
 * served. Without this, every move of a thread that pins itself to one CPU
 * after another (stress-ng's affinity stressor, per-CPU workers) costs an
 * agent wake-up, a queue move and a commit.
 *
 * The decision is made when the event's message is built and kept in
 * `pin_cpu` until the thread runs or blocks, so that the message and what
 * the class does agree: the message goes to the thread's agent as usual,
 * without waking it; it carries GHOST_MSG_F_CLASS_HELD, and the status
 * word at that seqnum GHOST_SW_CLASS_HELD (the agent then neither queues
 * nor commits it; a commit would fail RUNNING_ELSEWHERE). The agent reads
 * the message's flag: the word may have moved on by the time it reads the
 * message (messages.bpf.h, task_msg_send). The queue moves the kernel makes on
 * its own afterwards (migration to that CPU, a property change) keep it;
 * the thread's next message without the flag makes it its agent's again.
 *
 * Rules (shared/DESIGN.md): the CPU is in the thread's affinity and online
 * at the insert, a migration-disabled thread only goes to the CPU it is on,
 * and an insert to a CPU's local DSQ from ops.enqueue is a direct dispatch
 * the kernel itself moves to that CPU. Nothing waits for an agent, so the
 * class's watchdog has nothing to do here; a CPU a higher class holds runs
 * them when the ext server lends it, as it runs committed threads.
 */
#ifndef GHOST_SCX_BPF_PINNED_H
#define GHOST_SCX_BPF_PINNED_H

#include "ghost_common.bpf.h"
#include "agents.bpf.h"
#include "enclaves.bpf.h"
#include "fallback.bpf.h"
#include "messages.bpf.h"
#include "tasks.bpf.h"
#include "transactions.bpf.h"

__u64 nr_pinned_pushes; /* threads the class queued on their one CPU itself */
__u64 nr_runs_pinned;   /* ... and runs that came of it (hand-overs included) */
__u64 nr_hand_overs;    /* threads agents handed to the class (ghost_hand_over) */

static __always_inline bool pinned_cpu_ok(struct task_struct *p, s32 cpu)
{
	return cpu >= 0 && (__u32)cpu < nr_cpus && cpu_online((__u32)cpu) &&
	       bpf_cpumask_test_cpu((__u32)cpu, p->cpus_ptr) &&
	       (!task_migration_disabled(p) || scx_bpf_task_cpu(p) == cpu);
}

/* The CPU the class queues enclave thread `p` on itself, or -1 (its agent
 * places it). */
static __always_inline s32 pinned_target(struct task_struct *p, struct ghost_task *t)
{
	struct ghost_cpu_word *w;
	__u32 c;
	s32 cpu;

	if (p->nr_cpus_allowed != 1)
		return -1;
	cpu = bpf_cpumask_first(p->cpus_ptr);
	if (cpu < 0 || (__u32)cpu >= nr_cpus)
		return -1;
	c = (__u32)cpu;
	w = bpf_map_lookup_elem(&cpu_words, &c);
	if (!w || !READ_ONCE_U32(&w->pinned_push))
		return -1;
	if (cpu_enclave(c) != t->enclave || enclave_agent_gone(t->enclave, bpf_ktime_get_ns()))
		return -1;
	/* A global agent's CPU only while that agent sleeps on its queue: behind
	 * a spinning one the thread would wait until it steps aside (the rings'
	 * rule, fast_path.bpf.h). */
	if (cpu_home_of_global_agent(c) && !global_agent_asleep(c))
		return -1;
	return pinned_cpu_ok(p, cpu) ? cpu : -1;
}

/* Queues `p` on `cpu` (pinned_target's, or its kept pin_cpu). */
static __always_inline void pinned_insert(struct task_struct *p, struct ghost_task *t, s32 cpu,
					  __u64 enq_flags)
{
	t->pin_cpu = cpu;
	t->state = GT_QUEUED;
	if (!t->held_at) /* for the enclave's longest wait (run_stats.bpf.h) */
		t->held_at = bpf_ktime_get_ns();
	t->fallback = 0;
	__sync_fetch_and_add(&nr_pinned_pushes, 1);
	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | (__u32)cpu, slice_ns, enq_flags);
}

/* Queues `p` on `cpu` (pinned_target's) if there is one, else parks it for
 * its agent. */
static __always_inline void pinned_insert_or_park(struct task_struct *p, struct ghost_task *t,
						  s32 cpu, __u64 enq_flags)
{
	if (cpu >= 0) {
		pinned_insert(p, t, cpu, enq_flags);
		return;
	}
	t->pin_cpu = -1;
	park(p, t, enq_flags);
}

/*
 * An enqueue with no event of its own (a migration, a property change, a
 * commit or ring entry that bounced): a thread the class queued on its CPU
 * stays so while it may; one it no longer may (it became migration-disabled
 * elsewhere, its CPU went offline) goes back to its agent with a message
 * that says so: a PREEMPT, runnable and waiting for it.
 */
static __always_inline void pinned_keep_or_park(struct task_struct *p, struct ghost_task *t,
						__u64 enq_flags)
{
	if (t->pin_cpu < 0 || pinned_cpu_ok(p, t->pin_cpu)) {
		pinned_insert_or_park(p, t, t->pin_cpu, enq_flags);
		return;
	}
	t->pin_cpu = -1;
	park(p, t, enq_flags);
	send_task_off_cpu(p, t, GHOST_MSG_TASK_PREEMPT, ~0U, false);
}

/*
 * Hand-over: a per-CPU agent gives the class threads that wait for it and
 * may run only on its CPU, oldest first (kernel/ghost_abi.h,
 * ghost_hand_over_args). Without it a runqueue that once filled stayed so
 * under affinity churn: pinned push is off while anything waits (so nothing
 * overtakes it), the agent commits one thread at a time, and each move
 * that lands meanwhile waits for the agent too. Handed over, the threads
 * are in the CPU's local DSQ in their order, exactly as if pinned push had
 * queued them, and the agent can turn pinned push back on.
 *
 * A handed-over thread is claimed like a committed one (txn_cpu, so no
 * commit or ring consumer also moves it; its token matches no slot) and
 * carries pin_cpu like a pushed one, so its own callbacks finish it as
 * they finish a pushed thread: ops.running counts a pinned run, a bounce
 * keeps it on its CPU while it may (pinned_keep_or_park), sleeping drops
 * it. Its status word is not rewritten (only the thread's own callbacks
 * write it): the agent knows from the result.
 */
#define HAND_OVER_TOKEN (~0ULL)

/* One entry; global, so verified once. */
__noinline __u32 hand_over_one(__u32 cpu, __u64 tid, __u64 seq)
{
	struct task_struct *p;
	struct ghost_task *t;
	__s32 park_cpu;
	__u32 res;

	if (cpu >= nr_cpus || cpu >= GHOST_MAX_CPUS || !cpu_online(cpu))
		return GHOST_TXN_CPU_UNAVAILABLE;
	bpf_rcu_read_lock();
	p = task_from_tid(tid);
	t = p ? task_get(p) : NULL;
	if (!t || !task_in_enclave(t)) {
		res = GHOST_TXN_NOT_FOUND;
		goto out;
	}
	if (t->enclave != cpu_enclave(cpu)) {
		res = GHOST_TXN_CPU_UNAVAILABLE;
		goto out;
	}
	if (t->state == GT_BLOCKED) {
		res = GHOST_TXN_NOT_RUNNABLE;
		goto out;
	}
	if (t->state != GT_HELD || t->txn_cpu >= 0 || t->ring_cpu >= 0 || t->pin_cpu >= 0) {
		res = GHOST_TXN_RUNNING_ELSEWHERE;
		goto out;
	}
	/* Claim it as a commit does (transactions.bpf.h), then mark it the
	 * class's before it can run. */
	park_cpu = t->park_cpu;
	t->txn_token = HAND_OVER_TOKEN;
	__sync_lock_test_and_set(&t->txn_cpu, (__s32)cpu);
	if (*(volatile __s32 *)&t->ring_cpu >= 0) {
		__sync_val_compare_and_swap(&t->txn_cpu, (__s32)cpu, -1);
		res = GHOST_TXN_RUNNING_ELSEWHERE;
		goto out;
	}
	__sync_lock_test_and_set(&t->pin_cpu, (__s32)cpu);
	/* The seqnum after the claim: a message sent before it (an affinity
	 * change among them) refuses; after the iterator starts, a change
	 * makes the move itself fail. The affinity is checked on the iterated
	 * task only (txn_move), for the same reason. */
	if (*(volatile __u64 *)&t->seq != seq) {
		res = GHOST_TXN_TARGET_STALE;
	} else {
		res = GHOST_TXN_NOT_RUNNABLE;
		for (int i = 0; i < COMMIT_SCAN_TRIES && res == GHOST_TXN_NOT_RUNNABLE; i++)
			res = txn_move(tid, park_cpu, cpu, slice_ns, 0, true);
		if (res == GHOST_TXN_NOT_RUNNABLE && t->state == GT_HELD)
			res = GHOST_TXN_RUNNING_ELSEWHERE;
	}
	if (res == GHOST_TXN_PENDING) {
		res = GHOST_TXN_COMMITTED;
		__sync_fetch_and_add(&nr_hand_overs, 1);
	} else {
		/* Only what this call wrote: ops.set_cpumask may have decided anew. */
		__sync_val_compare_and_swap(&t->pin_cpu, (__s32)cpu, -1);
		__sync_val_compare_and_swap(&t->txn_cpu, (__s32)cpu, -1);
	}
out:
	bpf_rcu_read_unlock();
	return res;
}

_Static_assert(GHOST_HAND_OVER_MAX == 32, "ghost_hand_over lists 32 entries");

#define HAND_OVER_ENTRY(i)                                                                  \
	if ((i) < nr) {                                                                     \
		r = hand_over_one(cpu, args->entries[i].tid, args->entries[i].task_seqnum);  \
		args->entries[i].result = r;                                                \
		handed += r == GHOST_TXN_COMMITTED;                                         \
	}

/* One bpf() call for up to GHOST_HAND_OVER_MAX threads, in their order. The
 * entries are read at constant offsets (the verifier refuses a variable
 * offset into the context), hence one line per entry. */
SEC("syscall")
int ghost_hand_over(struct ghost_hand_over_args *args)
{
	__u32 cpu = args->cpu, nr = args->nr, handed = 0, r;

	if (nr > GHOST_HAND_OVER_MAX) {
		args->nr_handed = 0;
		return -EINVAL;
	}
	HAND_OVER_ENTRY(0) HAND_OVER_ENTRY(1) HAND_OVER_ENTRY(2) HAND_OVER_ENTRY(3)
	HAND_OVER_ENTRY(4) HAND_OVER_ENTRY(5) HAND_OVER_ENTRY(6) HAND_OVER_ENTRY(7)
	HAND_OVER_ENTRY(8) HAND_OVER_ENTRY(9) HAND_OVER_ENTRY(10) HAND_OVER_ENTRY(11)
	HAND_OVER_ENTRY(12) HAND_OVER_ENTRY(13) HAND_OVER_ENTRY(14) HAND_OVER_ENTRY(15)
	HAND_OVER_ENTRY(16) HAND_OVER_ENTRY(17) HAND_OVER_ENTRY(18) HAND_OVER_ENTRY(19)
	HAND_OVER_ENTRY(20) HAND_OVER_ENTRY(21) HAND_OVER_ENTRY(22) HAND_OVER_ENTRY(23)
	HAND_OVER_ENTRY(24) HAND_OVER_ENTRY(25) HAND_OVER_ENTRY(26) HAND_OVER_ENTRY(27)
	HAND_OVER_ENTRY(28) HAND_OVER_ENTRY(29) HAND_OVER_ENTRY(30) HAND_OVER_ENTRY(31)
	args->nr_handed = handed;
	/* Wakes the CPU if it idles (the commit path's IDLE kick, once). */
	if (handed)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	return 0;
}

#endif /* GHOST_SCX_BPF_PINNED_H */
