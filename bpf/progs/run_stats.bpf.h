/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-enclave accounting of runs, for agents and tests to judge an enclave on
 * its own (two agents share one class, so class-wide counters cannot say
 * whose threads the fallback ran): who placed each run of an enclave thread
 * (its agent's commit, the fallback, the kernel resuming it after a higher
 * class, or a CPU a higher class starved running it from its parking DSQ:
 * counted apart, since no agent could have placed it there), and the longest time a runnable thread of the enclave waited for a
 * CPU, from `held_at` (it became runnable, or was preempted) to ops.running.
 * A reader may reset the maximum (an atomic exchange on the mmapped .bss) to
 * measure one window, e.g. a live upgrade. The class only adds and raises.
 */
#ifndef GHOST_SCX_BPF_RUN_STATS_H
#define GHOST_SCX_BPF_RUN_STATS_H

#include "ghost_common.bpf.h"
#include "tasks.bpf.h"

enum run_placer {
	RUN_COMMITTED = 0,
	RUN_FALLBACK,  /* its agent was late, gone, or its enclave destroyed */
	RUN_RESUMED,
	RUN_STARVED,   /* a CPU a higher class held ran it (run_parked_here) */
	RUN_RING,      /* a fast-path ring entry of its agent (fast_path.bpf.h) */
	RUN_PINNED,    /* queued on its one CPU by the class for its agent (pinned.bpf.h) */
	RUN_PLACERS,
};

__u64 enclave_runs[GHOST_MAX_ENCLAVES][RUN_PLACERS];
__u64 enclave_wait_max_ns[GHOST_MAX_ENCLAVES];

/* From ops.running: `waited_since` is the thread's held_at before it is cleared. */
static __always_inline void run_note(const struct ghost_task *t, __u32 placer, __u64 waited_since)
{
	__u32 e = t->enclave;
	__u64 now, wait, cur;

	if (e >= GHOST_MAX_ENCLAVES || placer >= RUN_PLACERS)
		return;
	__sync_fetch_and_add(&enclave_runs[e][placer], 1);
	now = bpf_ktime_get_ns();
	if (!waited_since || now <= waited_since)
		return;
	wait = now - waited_since;
	/* Raise the maximum; a few tries are plenty (a lost race to a larger
	 * value needs nothing, one to a smaller value is retried). */
	for (int i = 0; i < 4; i++) {
		cur = enclave_wait_max_ns[e];
		if (wait <= cur || __sync_val_compare_and_swap(&enclave_wait_max_ns[e], cur, wait) == cur)
			break;
	}
}

#endif /* GHOST_SCX_BPF_RUN_STATS_H */
