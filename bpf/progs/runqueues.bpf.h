/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the kernel's runqueues say about a CPU, read through the per-CPU
 * `runqueues` symbol (without the rq lock unless the caller holds it: a hint
 * for remote CPUs, exact for the CPU whose callback this is).
 *
 * A CPU where a higher class has runnable work (an agent, an RT or fair
 * thread) runs sched_ext threads only when the kernel's ext deadline server
 * lends it to sched_ext: by default 50 ms of every second, after ~950 ms of
 * waiting. When the server's pick finds nothing to run, the kernel stops the
 * server, and restarts it only when this runqueue's count of sched_ext
 * threads next rises from zero, which a thread waiting here never lets
 * happen: it would wait until the stall detector ejects the class. So on a
 * starved CPU the class's dispatch always gives the server something: a
 * fallback thread, a thread parked there (fallback.bpf.h), or the thread
 * that was running (ghost.bpf.c).
 */
#ifndef GHOST_SCX_BPF_RUNQUEUES_H
#define GHOST_SCX_BPF_RUNQUEUES_H

#include "ghost_common.bpf.h"

extern const struct rq runqueues __ksym;

/* Does a higher class have runnable work on `cpu`? */
static __always_inline bool cpu_starved(__u32 cpu)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, cpu);

	return rq && rq->nr_running > rq->scx.nr_running;
}

/* Do threads of other classes wait on `cpu` besides the one running there
 * (an agent spinning there)? */
static __always_inline bool others_wait_on_cpu(__u32 cpu)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, cpu);

	return rq && rq->nr_running > rq->scx.nr_running + 1;
}

#endif /* GHOST_SCX_BPF_RUNQUEUES_H */
