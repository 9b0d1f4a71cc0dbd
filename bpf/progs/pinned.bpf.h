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
 * without waking it, and the status word at that seqnum carries
 * GHOST_SW_CLASS_HELD (the agent then neither queues nor commits it; a
 * commit would fail RUNNING_ELSEWHERE). The queue moves the kernel makes on
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

__u64 nr_pinned_pushes; /* threads the class queued on their one CPU itself */
__u64 nr_runs_pinned;   /* ... and runs that came of it */

static __always_inline bool pinned_cpu_ok(struct task_struct *p, s32 cpu)
{
	return cpu >= 0 && (__u32)cpu < nr_cpus && cpu_online((__u32)cpu) &&
	       bpf_cpumask_test_cpu((__u32)cpu, p->cpus_ptr) &&
	       (!p->migration_disabled || scx_bpf_task_cpu(p) == cpu);
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

#endif /* GHOST_SCX_BPF_PINNED_H */
