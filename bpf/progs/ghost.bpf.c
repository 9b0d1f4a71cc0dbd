/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ghost: the ghOSt scheduling class on sched_ext.
 *
 * First cut: a global FIFO for SCHED_EXT threads (SCX_OPS_SWITCH_PARTIAL, so
 * everything else stays in the fair class, which keeps priority over us as
 * ghOSt's class sat below CFS). A waking thread that finds an idle CPU goes
 * straight to that CPU's local queue; otherwise it joins the shared FIFO that
 * every CPU drains when it has nothing local.
 *
 * The kernel ends the class on any BPF error or a stalled thread; ops.exit
 * records why so the agent can print it.
 */
#include "ghost_common.bpf.h"

char _license[] SEC("license") = "GPL";

#define FIFO_DSQ 0

const volatile __u64 slice_ns = 5000000ULL; /* 5 ms; set by --slice-us */

struct ghost_exit_record exit_record;
__u64 nr_enqueued, nr_dispatched, nr_direct;

s32 GHOST_OPS(ghost_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

	if (idle) {
		__sync_fetch_and_add(&nr_direct, 1);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	}
	return cpu;
}

void GHOST_OPS(ghost_enqueue, struct task_struct *p, u64 enq_flags)
{
	__sync_fetch_and_add(&nr_enqueued, 1);
	scx_bpf_dsq_insert(p, FIFO_DSQ, slice_ns, enq_flags);
}

void GHOST_OPS(ghost_dispatch, s32 cpu, struct task_struct *prev)
{
	if (scx_bpf_dsq_move_to_local(FIFO_DSQ))
		__sync_fetch_and_add(&nr_dispatched, 1);
}

s32 GHOST_OPS_SLEEPABLE(ghost_init)
{
	return scx_bpf_create_dsq(FIFO_DSQ, -1);
}

void GHOST_OPS(ghost_exit, struct scx_exit_info *ei)
{
	GHOST_RECORD_EXIT(&exit_record, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops ghost_ops = {
	.select_cpu = (void *)ghost_select_cpu,
	.enqueue = (void *)ghost_enqueue,
	.dispatch = (void *)ghost_dispatch,
	.init = (void *)ghost_init,
	.exit = (void *)ghost_exit,
	.flags = SCX_OPS_SWITCH_PARTIAL,
	.timeout_ms = 5000,
	.name = "ghost",
};
