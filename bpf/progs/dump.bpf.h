/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The class's own view in sched_ext's debug dump.
 *
 * When the kernel ends the class for an error or a stall it writes a dump of
 * every CPU and runnable thread (kernel/sched/ext: scx_dump_state) into the
 * exit info, and lets the class add lines through ops.dump, ops.dump_cpu and
 * ops.dump_task. Ours say what the kernel cannot know: which enclave and
 * agent a thread waits for, since when, where it is parked, which commit
 * claimed it and what the watchdog did. ops.exit copies the finished dump to
 * `exit_dump`, and ghost-agent prints it under the exit reason.
 */
#ifndef GHOST_SCX_BPF_DUMP_H
#define GHOST_SCX_BPF_DUMP_H

#include "ghost_common.bpf.h"
#include "class_info.bpf.h"
#include "enclaves.bpf.h"
#include "fallback.bpf.h"
#include "tasks.bpf.h"
#include "transactions.bpf.h"

/* Room the kernel gives the dump (sched_ext_ops.exit_dump_len). */
#define GHOST_EXIT_DUMP_LEN 32768

char exit_dump[GHOST_EXIT_DUMP_LEN];

/* One line of the dump, printf-style (at most 12 arguments; the newline is added). */
#define ghost_dump(fmt, args...)                                               \
	({                                                                     \
		static char ___fmt[] = fmt "\n";                                  \
		unsigned long long ___param[___bpf_narg(args)];                \
		_Pragma("GCC diagnostic push")                                 \
		_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")         \
		___bpf_fill(___param, args);                                   \
		_Pragma("GCC diagnostic pop")                                  \
		scx_bpf_dump_bstr(___fmt, ___param, sizeof(___param));         \
	})

static __always_inline const char *task_state_name(__u32 state)
{
	switch (state) {
	case GT_BLOCKED: return "blocked";
	case GT_HELD: return "held for its agent";
	case GT_QUEUED: return "queued on a CPU";
	case GT_ON_CPU: return "on a CPU";
	default: return "?";
	}
}

/* Milliseconds from `then` to `now`; 0 when `then` is unset. */
static __always_inline __u64 ms_since(__u64 now, __u64 then)
{
	return then && now > then ? (now - then) / 1000000 : 0;
}

static long dump_enclave(__u64 i, void *data)
{
	struct ghost_enclave_word *ew = enclave_word((__u32)i);

	if (!ew || !(ew->flags & GHOST_ENCLAVE_INUSE))
		return 0;
	ghost_dump("ghost: enclave %u: cpus %llx:%llx:%llx:%llx watchdog %ums (class cap %llums) "
		   "default queue %u",
		   (__u32)i, ew->cpus[3], ew->cpus[2], ew->cpus[1], ew->cpus[0], ew->watchdog_ms,
		   max_watchdog_ms(), ew->default_queue);
	return 0;
}

void GHOST_OPS(ghost_dump_class, struct scx_dump_ctx *dctx)
{
	struct ghost_class_info *ci = class_info_get();

	ghost_dump("ghost: ABI %u, %u CPUs, kernel stall timeout %ums; fallback FIFO holds %d, "
		   "watchdog moves %llu, kicks %llu, fallback runs %llu, sent at once (agent silent) %llu",
		   GHOST_ABI_VERSION, nr_cpus, kernel_timeout_ms, scx_bpf_dsq_nr_queued(FALLBACK_DSQ),
		   nr_watchdog_moves, nr_watchdog_kicks, ci ? ci->fallback_runs : 0,
		   nr_agent_gone_runs);
	ghost_dump("ghost: starved-CPU runs %llu; commits: calls %llu claimed %llu moved %llu "
		   "committed %llu; messages dropped %llu",
		   nr_starved_runs, nr_commit_calls, nr_txn_claimed, nr_txn_moved,
		   nr_txn_results[GHOST_TXN_COMMITTED], ci ? ci->msgs_dropped : 0);
	bpf_loop(GHOST_MAX_ENCLAVES, dump_enclave, NULL, 0);
}

void GHOST_OPS(ghost_dump_cpu, struct scx_dump_ctx *dctx, s32 cpu, bool idle)
{
	__u32 c = (__u32)cpu & (GHOST_MAX_CPUS - 1);
	struct ghost_txn *txn;

	if (cpu < 0 || cpu >= GHOST_MAX_CPUS)
		return;
	txn = txn_slot(c);
	ghost_dump("ghost: enclave %d online %u busy %u quiet_release %u our thread %llu; "
		   "parked here %d; txn slot state %u tid %llu result %u",
		   (__s32)cpu_enclave(c), cpu_is_online[c], cpu_busy[c], cpu_quiet_release[c],
		   cpu_curr_tid[c], scx_bpf_dsq_nr_queued(PARK_DSQ(c)), txn ? txn->state : 0,
		   txn ? txn->tid : 0, txn ? txn->result : 0);
	ghost_dump("ghost: dispatch ran %llu times, last %llums ago; %llu times lent by the ext "
		   "server (%llu found nothing to run)",
		   cpu_dispatches[c], ms_since(bpf_ktime_get_ns(), cpu_last_dispatch_ns[c]),
		   cpu_starved_dispatches[c], cpu_starved_empty[c]);
}

void GHOST_OPS(ghost_dump_task, struct scx_dump_ctx *dctx, struct task_struct *p)
{
	struct ghost_task *t = task_get(p);
	__u64 now = bpf_ktime_get_ns();

	if (!t) {
		ghost_dump("ghost: no class state");
		return;
	}
	if (!task_in_enclave(t)) {
		ghost_dump("ghost: tid %llu in no enclave (class FIFO), waiting %llums",
			   p->scx.tid, ms_since(now, t->held_at));
		return;
	}
	ghost_dump("ghost: tid %llu enclave %u %s waiting %llums parked on %d txn cpu %d "
		   "fallback %u seq %llu queue %u",
		   p->scx.tid, t->enclave, task_state_name(t->state),
		   ms_since(now, t->held_at), t->park_cpu,
		   t->txn_cpu, t->fallback, t->seq, t->queue);
}

#endif /* GHOST_SCX_BPF_DUMP_H */
