/* SPDX-License-Identifier: GPL-2.0 */
/* What every ghost BPF program includes: vmlinux types, libbpf's helpers and
 * the ABI. Kfunc prototypes come from vmlinux.h (bpftool emits them). */
#ifndef GHOST_SCX_BPF_COMMON_H
#define GHOST_SCX_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kernel/ghost_abi.h"

#define SCHED_EXT_POLICY 7

/* Keeps the compiler from dropping a bounds mask the verifier needs. */
#define barrier_var(var) asm volatile("" : "+r"(var))
/* A plain load the compiler must emit: the exchanges are the barriers
 * (BPF's fetching atomics are fully ordered; v3 has no load-acquire). */
#define READ_ONCE_U32(p) (*(volatile __u32 *)(p))

/* What vmlinux.h does not carry (macros, not BTF). */
#define CLOCK_MONOTONIC 1
#define EINVAL 22
#define ENOENT 2
#define EBUSY 16
#define ENOMEM 12
#define PF_EXITING 0x00000004
#define TASK_DEAD 0x00000080
#define ENQUEUE_RESTORE 0x02 /* core enqueue flag: a property change, not an event */

/*
 * Is `p` migration-disabled, i.e. may it run only on the CPU it is on? Not
 * `p->migration_disabled` as read: the BPF prolog itself disables migration
 * of the current task on kernels with PREEMPT_RCU (Debian's among them), so a
 * thread changing its own affinity (ops.set_cpumask, p == current) would
 * look stuck on its CPU, and the class would refuse every move of it (the
 * kernel's is_bpf_migration_disabled() knows the same). Where we cannot tell
 * (no PREEMPT_RCU: the count may be a real one) we assume it is real: that
 * only costs a pinned push, while a move of a truly migration-disabled thread
 * ejects the class.
 */
static __always_inline bool task_migration_disabled(const struct task_struct *p)
{
	unsigned short n = p->migration_disabled;

	if (n == 1 && bpf_core_field_exists(p->rcu_read_lock_nesting) &&
	    p->pid == (pid_t)bpf_get_current_pid_tgid())
		return false;
	return n != 0;
}

/* Tests widen race windows (the affinity check and the move of a commit; the
 * status word and its message; a status word's own fields), set at load and 0
 * in production, so that race tests bite under single-threaded TCG. */
const volatile __u32 race_window_iters = 0;

static long race_spin(__u64 i, void *data) { return 0; }
#define RACE_WINDOW()                                                  \
	do {                                                           \
		if (race_window_iters)                                 \
			bpf_loop(race_window_iters, race_spin, NULL, 0); \
	} while (0)

/* struct_ops callbacks: BPF_PROG unpacks the u64 context into arguments. */
#define GHOST_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define GHOST_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

#define GHOST_RECORD_EXIT(rec, ei)                                              \
	do {                                                                    \
		bpf_probe_read_kernel_str((rec)->reason, sizeof((rec)->reason), \
					  (ei)->reason);                        \
		bpf_probe_read_kernel_str((rec)->msg, sizeof((rec)->msg),       \
					  (ei)->msg);                           \
		(rec)->exit_code = (ei)->exit_code;                             \
		(rec)->exit_cpu = (ei)->exit_cpu;                               \
		/* kind last: the loader polls it */                            \
		__sync_val_compare_and_swap(&(rec)->kind, 0, (ei)->kind);       \
	} while (0)

#endif /* GHOST_SCX_BPF_COMMON_H */
