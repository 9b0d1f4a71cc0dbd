/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Slice renewal: a slice ends a turn only when something waits.
 *
 * A per-CPU agent commits with its policy's slice (ghost-agent --slice-us),
 * and sched_ext ends the slice whether or not anything waits for the CPU:
 * the thread went back to its agent (PREEMPT), which woke up and committed
 * the same thread again. That doubled the commits and cost hackbench about
 * 40 % (docs/BENCHMARKS.md), so slices were off by default and a thread that
 * never blocks kept its CPU for good while others waited behind it.
 *
 * Now, when a slice a commit gave runs out, the CPU's ops.dispatch gives the
 * thread a new one in place, without a message, while the CPU's agent says
 * nothing waits for that CPU (ghost_cpu_word.pinned_push, which a per-CPU
 * agent keeps set exactly then). Once a thread waits there the agent clears
 * it, and at the slice's end the thread goes back to its agent as before: a
 * waiting thread waits at most one slice.
 *
 * Only a run a commit started (or resumed after a higher class) with a
 * finite slice is renewed: a run placed by a ring, the class's FIFO or
 * pinned push keeps the class's own slice; an infinite slice never ends.
 * Not a yield (it gives the CPU up) and not a CPU its agent asked to idle
 * (a commit of GHOST_TID_NONE). The kernel keeps `prev` running when its
 * slice is non-zero after ops.dispatch: no insert, so none of the insert
 * rules (DESIGN.md) come into play, and the thread is on its own CPU, still
 * in its enclave, with the affinity it ran with.
 */
#ifndef GHOST_SCX_BPF_SLICES_H
#define GHOST_SCX_BPF_SLICES_H

#include "ghost_common.bpf.h"
#include "agents.bpf.h"
#include "enclaves.bpf.h"
#include "fallback.bpf.h"
#include "tasks.bpf.h"
#include "transactions.bpf.h"

__u64 nr_slice_renewals; /* slices given anew in place (nothing waited) */

/* ops.dispatch of CPU `c` with `prev` (its slice just ran out): true if prev
 * keeps the CPU with a new slice. */
static __always_inline bool slice_renewed(__u32 c, struct task_struct *prev)
{
	struct ghost_cpu_word *w;
	struct ghost_task *t;

	c &= GHOST_MAX_CPUS - 1;
	if (cpu_idle_requested[c]) {
		cpu_idle_requested[c] = 0;
		return false;
	}
	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED) || prev->scx.slice)
		return false;
	t = task_get(prev);
	if (!task_in_enclave(t) || !t->renew_slice_ns || t->yielding || t->cpu != (__s32)c ||
	    cpu_enclave(c) != t->enclave || enclave_agent_gone(t->enclave, bpf_ktime_get_ns()))
		return false;
	w = bpf_map_lookup_elem(&cpu_words, &c);
	if (!w || !READ_ONCE_U32(&w->pinned_push))
		return false;
	scx_bpf_task_set_slice(prev, t->renew_slice_ns);
	__sync_fetch_and_add(&nr_slice_renewals, 1);
	return true;
}

#endif /* GHOST_SCX_BPF_SLICES_H */
