/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Enclaves: CPU sets with their own queues and agent (ghOSt's enclaves).
 *
 * Userspace owns the enclave words (mmapped, BPF_F_MMAPABLE) and writes them
 * before it enrols threads; BPF only reads them and never trusts them: every
 * CPU and queue number read here is bounds-checked by the reader. A thread
 * joins an enclave when it enters SCHED_EXT if its pid is in `enroll` (ghost-run
 * writes it first), or by forking from a thread of that enclave.
 */
#ifndef GHOST_SCX_BPF_ENCLAVES_H
#define GHOST_SCX_BPF_ENCLAVES_H

#include "ghost_common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_MAX_ENCLAVES);
	__type(key, __u32);
	__type(value, struct ghost_enclave_word);
} enclave_words SEC(".maps");

/* pid -> enclave, written by the agent side (EnrollPid) before the thread
 * switches to SCHED_EXT; consumed when the class enables the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GHOST_MAX_THREADS);
	__type(key, __u32);
	__type(value, __u32);
} enroll SEC(".maps");

/* sched_ext's stall timeout (ops.timeout_ms), set by the loader. A thread the
 * kernel sees runnable and unrun for this long ejects the whole class, so an
 * enclave's watchdog is capped at half of it: the fallback then has the other
 * half to run the thread, whatever an agent wrote into its enclave word. */
const volatile __u32 kernel_timeout_ms = 5000;

static __always_inline __u64 max_watchdog_ms(void)
{
	__u64 max = kernel_timeout_ms / 2;

	return max ? max : 1;
}

/* Online CPUs as the class saw them (ops.cpu_online/offline). */
__u8 cpu_is_online[GHOST_MAX_CPUS];
__u32 nr_cpus;

/* Word `i` of a kernel cpumask with the bits of CPUs >= nr_cpus cleared: the
 * kernel's mask operations touch only nr_cpu_ids bits, and the rest of a
 * word may hold anything (an AFFINITY_CHANGED once named CPUs 64-255 in a
 * 4-CPU guest). */
static __always_inline __u64 cpumask_word(const struct cpumask *mask, int i)
{
	__u64 w = BPF_CORE_READ(mask, bits[i]);
	__u32 base = (__u32)i * 64;

	if (base >= nr_cpus)
		return 0;
	if (nr_cpus - base < 64)
		w &= (1ULL << (nr_cpus - base)) - 1;
	return w;
}

static __always_inline struct ghost_enclave_word *enclave_word(__u32 enclave)
{
	if (enclave >= GHOST_MAX_ENCLAVES)
		return NULL;
	return bpf_map_lookup_elem(&enclave_words, &enclave);
}

static __always_inline bool enclave_in_use(__u32 enclave)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);

	return ew && (ew->flags & GHOST_ENCLAVE_INUSE);
}

static __always_inline bool cpu_in_mask(const __u64 *mask, __u32 cpu)
{
	__u32 w = (cpu / 64) & (GHOST_CPU_MASK_WORDS - 1);

	if (cpu >= GHOST_MAX_CPUS)
		return false;
	barrier_var(w);
	w &= GHOST_CPU_MASK_WORDS - 1;
	return (mask[w] >> (cpu % 64)) & 1;
}

static __always_inline bool enclave_has_cpu(__u32 enclave, __u32 cpu)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);

	return ew && (ew->flags & GHOST_ENCLAVE_INUSE) && cpu_in_mask(ew->cpus, cpu);
}

/* The enclave owning `cpu`, or GHOST_ENCLAVE_NONE. */
static __always_inline __u32 cpu_enclave(__u32 cpu)
{
	for (__u32 e = 0; e < GHOST_MAX_ENCLAVES; e++)
		if (enclave_has_cpu(e, cpu))
			return e;
	return GHOST_ENCLAVE_NONE;
}

static __always_inline bool cpu_online(__u32 cpu)
{
	return cpu < GHOST_MAX_CPUS && cpu < nr_cpus && cpu_is_online[cpu];
}

static __always_inline __u64 enclave_watchdog_ns(__u32 enclave)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);
	__u64 ms = ew ? ew->watchdog_ms : 0;
	__u64 max = max_watchdog_ms();

	/* A missing, zero or oversized watchdog still never lets a thread wait
	 * long enough to get the class ejected. */
	if (ms == 0)
		ms = 1000;
	if (ms > max)
		ms = max;
	return ms * 1000000ULL;
}

/*
 * Is the enclave's agent gone? An agent that keeps `agent_heartbeat_ns`
 * (ghost-agent writes bpf_ktime_get_ns()'s clock, CLOCK_MONOTONIC, every
 * 100 ms) and has been silent for the enclave's watchdog, and at least
 * AGENT_SILENCE_MIN_NS, is stopped or dead; one handing over writes 1. Its
 * threads then stop waiting for it: they run through the fallback FIFO at
 * once (fallback.bpf.h), until it, or a successor, writes a fresh heartbeat.
 * 0: no heartbeat kept (each thread waits out the watchdog).
 */
#define AGENT_SILENCE_MIN_NS (500ULL * 1000 * 1000)

static __always_inline bool enclave_agent_gone(__u32 enclave, __u64 now)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);
	__u64 hb, limit;

	if (!ew)
		return false;
	hb = *(volatile __u64 *)&ew->agent_heartbeat_ns;
	if (!hb)
		return false;
	limit = enclave_watchdog_ns(enclave);
	if (limit < AGENT_SILENCE_MIN_NS)
		limit = AGENT_SILENCE_MIN_NS;
	return now > hb && now - hb > limit;
}

static __always_inline __u32 enclave_msg_flags(__u32 enclave)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);

	return ew ? ew->tick_msgs : 0;
}

#endif /* GHOST_SCX_BPF_ENCLAVES_H */
