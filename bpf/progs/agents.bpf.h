/* SPDX-License-Identifier: GPL-2.0 */
#ifndef GHOST_SCX_BPF_AGENTS_H
#define GHOST_SCX_BPF_AGENTS_H

#include "ghost_common.bpf.h"

/*
 * Agent threads (registered in `agent_tids`) run above the class, as ghOSt's
 * agents did, but they are not "a higher class taking the CPU": a per-CPU
 * agent wakes, commits to its own CPU and blocks, and its commit must run
 * right after. So an agent taking the CPU sends no CPU_BUSY, marks nothing
 * busy and leaves the local queue alone; without this every agent wake-up
 * would bounce its own commit and message itself again, forever.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GHOST_MAX_CPUS * 2);
	__type(key, __u32);   /* thread id (pid) of an agent thread */
	__type(value, __u32);
} agent_tids SEC(".maps");

__u8 cpu_agent_held[GHOST_MAX_CPUS]; /* the CPU was released to an agent */

static __always_inline bool is_agent_thread(struct task_struct *p)
{
	__u32 pid;

	if (!p)
		return false;
	pid = BPF_CORE_READ(p, pid);
	return bpf_map_lookup_elem(&agent_tids, &pid) != NULL;
}

#endif /* GHOST_SCX_BPF_AGENTS_H */
