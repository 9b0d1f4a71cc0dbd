/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Agent threads: which threads are agents, and asking one to step aside.
 *
 * Agents (registered in `agent_tids` with their kind) run above the class, as
 * ghOSt's agents did, but they are not "a higher class taking the CPU". A
 * per-CPU agent wakes, commits to its own CPU and blocks, and its commit must
 * run right after: so when it takes the CPU, no CPU_BUSY is sent, nothing is
 * marked busy and its CPU's local queue is left alone (else every wake-up
 * would bounce its own commit and message itself again, forever). A global
 * agent spins instead: whatever waits in its CPU's local queue when it takes
 * the CPU would wait for as long as it spins, so those threads go back to
 * their agents (PREEMPT) at once.
 *
 * A thread that may run only on CPUs where agents spin (pinned to the global
 * agent's CPU, or queued there by the kernel itself: migration-disabled or
 * exiting threads skip ops.enqueue) cannot be run by any commit or by the
 * fallback. The watchdog timer then sets that CPU's `yield_request`
 * (ghost_cpu_word), and the agent library steps aside for a moment. It does
 * the same when threads of other classes wait there (a fair-class thread
 * pinned to the global agent's CPU, as cyclictest's measuring threads are):
 * without it they would run only when the kernel's fair deadline server
 * lends them the CPU, 50 ms a second after 950 ms of waiting.
 */
#ifndef GHOST_SCX_BPF_AGENTS_H
#define GHOST_SCX_BPF_AGENTS_H

#include "ghost_common.bpf.h"
#include "runqueues.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GHOST_MAX_CPUS * 2);
	__type(key, __u32);   /* thread id (pid) of an agent thread */
	__type(value, __u32); /* GHOST_AGENT_PER_CPU or _GLOBAL, enclave << GHOST_AGENT_ENCLAVE_SHIFT */
} agent_tids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct ghost_cpu_word);
} cpu_words SEC(".maps");

/* The CPU was released to an agent or to the stopper (a migration): no
 * CPU_BUSY was sent, so none of CPU_AVAILABLE either when it comes back. */
__u8 cpu_quiet_release[GHOST_MAX_CPUS];
__u64 nr_yield_requests;
/* When a global agent last took the CPU (ops.cpu_release): it steps aside for
 * moments, but the CPU stays its home. */
__u64 cpu_global_agent_at[GHOST_MAX_CPUS];
#define GLOBAL_AGENT_HOME_NS (1000ULL * 1000 * 1000)

/* GHOST_AGENT_* if `p` is an agent thread, else 0. */
static __always_inline __u32 agent_kind(struct task_struct *p)
{
	__u32 pid, *kind;

	if (!p)
		return 0;
	pid = BPF_CORE_READ(p, pid);
	kind = bpf_map_lookup_elem(&agent_tids, &pid);
	return kind ? *kind & GHOST_AGENT_KIND_MASK : 0;
}

/* Is a global (spinning) agent running on `cpu` right now? From a
 * non-sleepable program (an RCU read-side section already). */
static __always_inline bool cpu_held_by_spinning_agent(__u32 cpu)
{
	struct task_struct *curr = scx_bpf_cpu_curr(cpu);

	return curr && agent_kind(curr) == GHOST_AGENT_GLOBAL;
}

/* Is `cpu` a global agent's home: it spins there now, or took it within the
 * last second? */
static __always_inline bool cpu_home_of_global_agent(__u32 cpu)
{
	__u64 at;

	if (cpu >= GHOST_MAX_CPUS)
		return false;
	at = cpu_global_agent_at[cpu & (GHOST_MAX_CPUS - 1)];
	return (at && bpf_ktime_get_ns() - at < GLOBAL_AGENT_HOME_NS) ||
	       cpu_held_by_spinning_agent(cpu);
}

/* Does the global agent whose home `cpu` is sleep on its queue right now
 * (ghost_cpu_word.agent_asleep, written by the agent)? */
static __always_inline bool global_agent_asleep(__u32 cpu)
{
	struct ghost_cpu_word *w = bpf_map_lookup_elem(&cpu_words, &cpu);

	return w && *(volatile __u32 *)&w->agent_asleep && !cpu_held_by_spinning_agent(cpu);
}

/* Asks the agent spinning on `cpu` to step aside (it clears the request). */
static __always_inline void request_agent_yield(__u32 cpu)
{
	struct ghost_cpu_word *w = bpf_map_lookup_elem(&cpu_words, &cpu);

	if (!w)
		return;
	if (!__sync_lock_test_and_set(&w->yield_request, 1)) {
		__sync_fetch_and_add(&w->yield_requests, 1);
		__sync_fetch_and_add(&nr_yield_requests, 1);
	}
}

#endif /* GHOST_SCX_BPF_AGENTS_H */
