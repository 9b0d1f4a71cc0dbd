/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Parking and the fallback: how no agent can stall or break the class.
 *
 * A runnable enclave thread waits for its agent in a short per-CPU parking DSQ
 * (the CPU it was last on), stamped with the time it started waiting. The
 * commit program finds it there. Threads of no enclave, parked threads of a
 * destroyed enclave and parked threads older than their enclave's watchdog go
 * to one FIFO that every CPU's dispatch serves first. A BPF timer looks for
 * such threads and kicks a CPU they may run on, so a dead, silent or hostile
 * agent degrades its enclave to FIFO long before sched_ext's own stall
 * detector (timeout_ms) would fire.
 */
#ifndef GHOST_SCX_BPF_FALLBACK_H
#define GHOST_SCX_BPF_FALLBACK_H

#include "ghost_common.bpf.h"
#include "class_info.bpf.h"
#include "enclaves.bpf.h"
#include "tasks.bpf.h"
#include "agents.bpf.h"

#define FALLBACK_DSQ 0x100ULL
#define PARK_DSQ_BASE 0x1000ULL
#define PARK_DSQ(cpu) (PARK_DSQ_BASE + (__u64)(cpu))

/* How often the watchdog looks; how long fallback FIFO threads may wait
 * before the watchdog preempts a CPU for them. */
#define WATCHDOG_PERIOD_NS (5ULL * 1000 * 1000)
#define FALLBACK_WAIT_NS (20ULL * 1000 * 1000)
#define FALLBACK_KICKS_PER_PERIOD 16

const volatile __u64 slice_ns = 5000000ULL; /* FIFO slice */

__u8 sweep_req[GHOST_MAX_CPUS];  /* parking DSQ of this CPU holds expired threads */
__u64 nr_watchdog_moves;         /* parked threads handed to the fallback */
__u64 nr_watchdog_kicks;
__u64 nr_starved_runs;           /* parked threads run on a CPU the ext server lent us */
__u64 nr_starved_runs_pinned;    /* ... of them allowed on that CPU only */
__u64 nr_starved_runs_agent_cpu; /* ... of them on a global agent's home CPU */
struct ghost_watchdog_move_record last_watchdog_move;
/* Per CPU, for the debug dump: dispatch runs, those on a CPU a higher class
 * holds (lent by the ext server), and those that found nothing to run. */
__u64 cpu_dispatches[GHOST_MAX_CPUS], cpu_last_dispatch_ns[GHOST_MAX_CPUS];
__u64 cpu_starved_dispatches[GHOST_MAX_CPUS], cpu_starved_empty[GHOST_MAX_CPUS];

struct ghost_watchdog_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ghost_watchdog_timer);
} watchdog SEC(".maps");

/* A thread of no enclave joins the class's FIFO (not a fallback run: it
 * has no agent to be late). */
static __always_inline void fallback_insert(struct task_struct *p, struct ghost_task *t,
					    __u64 enq_flags)
{
	if (t) {
		t->state = GT_QUEUED;
		if (!t->held_at)
			t->held_at = bpf_ktime_get_ns();
	}
	scx_bpf_dsq_insert(p, FALLBACK_DSQ, slice_ns, enq_flags);
}

__u64 nr_agent_gone_runs; /* threads sent to the FIFO at once: their agent is gone */

/* ghost_task.fallback: who ran it, if not its agent (run_stats.bpf.h tells
 * them apart; both are fallback runs in class_info). */
#define FALLBACK_RUN 1
#define FALLBACK_STARVED 2

/* Park a runnable enclave thread for its agent, or, if the agent is gone
 * (enclave_agent_gone), hand it to the fallback FIFO at once. */
static __always_inline void park(struct task_struct *p, struct ghost_task *t, __u64 enq_flags)
{
	__s32 cpu = scx_bpf_task_cpu(p);
	__u64 now = bpf_ktime_get_ns();

	if (cpu < 0 || cpu >= GHOST_MAX_CPUS || (__u32)cpu >= nr_cpus)
		cpu = 0;
	t->park_cpu = cpu;
	if (!t->held_at)
		t->held_at = now;
	if (enclave_agent_gone(t->enclave, now)) {
		t->state = GT_QUEUED;
		t->fallback = FALLBACK_RUN;
		__sync_fetch_and_add(&nr_agent_gone_runs, 1);
		scx_bpf_dsq_insert(p, FALLBACK_DSQ, slice_ns, enq_flags);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return;
	}
	t->state = GT_HELD;
	t->fallback = 0;
	scx_bpf_dsq_insert(p, PARK_DSQ(cpu), slice_ns, enq_flags);
}

/*
 * How long a thread parked at `held_at` has waited by `now`. A sweep takes
 * `now` once and then walks every parking DSQ: a thread parked meanwhile
 * (on another CPU) has a later held_at, and the unsigned difference would be
 * huge: it would be moved as if it had waited forever (seen: held=2^64 ns).
 */
static __always_inline __u64 held_for(__u64 now, __u64 held_at)
{
	return (__s64)(now - held_at) > 0 ? now - held_at : 0;
}

static __always_inline bool held_too_long(struct task_struct *p, __u64 now)
{
	struct ghost_task *t = task_get(p);

	if (!t || !t->held_at)
		return false;
	/* A destroyed enclave, or one whose agent is gone, has no agent to
	 * wait for. */
	if (!task_in_enclave(t) || !enclave_in_use(t->enclave) ||
	    enclave_agent_gone(t->enclave, now))
		return true;
	return held_for(now, t->held_at) > enclave_watchdog_ns(t->enclave);
}

__u8 sweep_pending; /* some sweep_req is set */

static long sweep_one(__u64 i, void *data)
{
	__u64 now = *(__u64 *)data;
	__u32 c = (__u32)i & (GHOST_MAX_CPUS - 1);
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;

	if (!sweep_req[c])
		return 0;
	sweep_req[c] = 0;
	if (bpf_iter_scx_dsq_new(&it, PARK_DSQ(c), 0) == 0) {
		while ((p = bpf_iter_scx_dsq_next(&it))) {
			struct ghost_task *t;

			if (!held_too_long(p, now))
				continue;
			t = task_get(p);
			if (scx_bpf_dsq_move(&it, p, FALLBACK_DSQ, 0)) {
				__sync_fetch_and_add(&nr_watchdog_moves, 1);
				last_watchdog_move.pid = p->pid;
				last_watchdog_move.tid = p->scx.tid;
				last_watchdog_move.nr_cpus_allowed = p->nr_cpus_allowed;
				last_watchdog_move.task_cpu = scx_bpf_task_cpu(p);
				last_watchdog_move.migration_disabled = p->migration_disabled;
				last_watchdog_move.cpus_ptr0 = cpumask_word(p->cpus_ptr, 0);
				last_watchdog_move.cpus_mask0 = cpumask_word(&p->cpus_mask, 0);
				if (t) {
					last_watchdog_move.seq = t->seq;
					last_watchdog_move.held_ns = held_for(now, t->held_at);
					last_watchdog_move.queue = t->queue;
					last_watchdog_move.last_queue = t->last_queue;
					last_watchdog_move.state = t->state;
					last_watchdog_move.park_cpu = t->park_cpu;
					last_watchdog_move.cpu = t->cpu;
					last_watchdog_move.txn_cpu = t->txn_cpu;
					t->state = GT_QUEUED;
					t->fallback = FALLBACK_RUN;
				}
			}
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	return 0;
}

/* From dispatch: move expired threads of flagged parking DSQs to the FIFO. */
static __always_inline void sweep_parked(void)
{
	__u64 now = bpf_ktime_get_ns();

	if (!sweep_pending)
		return;
	sweep_pending = 0;
	bpf_loop(nr_cpus, sweep_one, &now, 0);
}

/* From dispatch on a starved CPU (runqueues.bpf.h) with nothing in the
 * fallback for it: runs the oldest thread parked on `cpu` that may run
 * there, as a fallback run (its agent had its chance for as long as the
 * CPU was starved), so that the ext server has something to run. */
static __always_inline bool run_parked_here(__u32 cpu)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	bool moved = false;

	if (cpu >= GHOST_MAX_CPUS)
		return false;
	if (bpf_iter_scx_dsq_new(&it, PARK_DSQ(cpu), 0) == 0) {
		while ((p = bpf_iter_scx_dsq_next(&it))) {
			struct ghost_task *t = task_get(p);

			if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr) ||
			    (task_migration_disabled(p) && scx_bpf_task_cpu(p) != (s32)cpu) ||
			    (t && (t->txn_cpu >= 0 || t->ring_cpu >= 0)))
				continue;
			if (scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL, 0)) {
				moved = true;
				__sync_fetch_and_add(&nr_starved_runs, 1);
				if (p->nr_cpus_allowed == 1)
					__sync_fetch_and_add(&nr_starved_runs_pinned, 1);
				if (cpu_home_of_global_agent(cpu))
					__sync_fetch_and_add(&nr_starved_runs_agent_cpu, 1);
				if (t) {
					t->state = GT_QUEUED;
					t->fallback = FALLBACK_STARVED;
				}
			}
			break;
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	return moved;
}

__u64 agent_spin_cpus[GHOST_CPU_MASK_WORDS]; /* as the watchdog last saw them */

struct kick_ctx {
	__u64 cpus[GHOST_CPU_MASK_WORDS]; /* the thread's affinity */
	__u32 start;
	__s32 free_cpu;   /* an allowed CPU where no agent spins */
	__s32 agent_cpu;  /* an allowed CPU where an agent spins */
};

static long kick_scan(__u64 i, void *data)
{
	struct kick_ctx *k = data;
	__u32 cpu = ((__u32)i + k->start) % (nr_cpus ? nr_cpus : 1);

	barrier_var(cpu);
	cpu &= GHOST_MAX_CPUS - 1;
	if (!cpu_in_mask(k->cpus, cpu) || !cpu_online(cpu))
		return 0;
	if (cpu_in_mask(agent_spin_cpus, cpu)) {
		if (k->agent_cpu < 0)
			k->agent_cpu = cpu;
		return 0;
	}
	k->free_cpu = cpu;
	return 1;
}

/*
 * Gets a CPU for a fallback thread: kicks one its affinity allows where no
 * agent spins (PREEMPT: a thread of ours there makes room, and dispatch
 * serves the fallback first; a CPU a higher class holds runs it when the
 * kernel's ext server lends it to us, see runqueues.bpf.h). If every CPU it may
 * use has an agent spinning on it, asks one of those agents to step aside.
 */
static __always_inline void kick_for(struct task_struct *p)
{
	struct kick_ctx k = { .free_cpu = -1, .agent_cpu = -1 };

	for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++)
		k.cpus[i] = cpumask_word(p->cpus_ptr, i);
	k.start = nr_cpus ? bpf_get_prandom_u32() % nr_cpus : 0;
	bpf_loop(nr_cpus, kick_scan, &k, 0);
	if (k.free_cpu >= 0) {
		scx_bpf_kick_cpu(k.free_cpu, SCX_KICK_PREEMPT);
		__sync_fetch_and_add(&nr_watchdog_kicks, 1);
	} else if (k.agent_cpu >= 0) {
		request_agent_yield(k.agent_cpu);
	}
}

struct wait_ctx {
	struct task_struct *p;
	__u32 enclave, start;
	__s32 cpu;
};

static long wait_scan(__u64 i, void *data)
{
	struct wait_ctx *w = data;
	__u32 cpu = ((__u32)i + w->start) % (nr_cpus ? nr_cpus : 1);

	barrier_var(cpu);
	cpu &= GHOST_MAX_CPUS - 1;
	if (!cpu_online(cpu) || !enclave_has_cpu(w->enclave, cpu) ||
	    !bpf_cpumask_test_cpu(cpu, w->p->cpus_ptr) || cpu_home_of_global_agent(cpu))
		return 0;
	w->cpu = cpu;
	return 1;
}

/*
 * The CPU whose runqueue a waking enclave thread waits on until its agent
 * places it: `prev_cpu`, unless it is a global agent's home. The kernel counts
 * a thread queued behind a spinning agent as starved, and after about a
 * second its ext server lends that CPU to sched_ext, where the class must run
 * something without the agent (run_parked_here): so such a thread waits on
 * another CPU of its enclave that it may use, if there is one.
 */
static __always_inline s32 wait_cpu_for(struct task_struct *p, struct ghost_task *t,
					s32 prev_cpu)
{
	struct wait_ctx w = { .p = p, .cpu = -1 };

	if (prev_cpu < 0 || !cpu_home_of_global_agent((__u32)prev_cpu))
		return prev_cpu;
	w.enclave = t->enclave;
	w.start = (__u32)prev_cpu + 1;
	bpf_loop(nr_cpus, wait_scan, &w, 0);
	return w.cpu >= 0 ? w.cpu : prev_cpu;
}

static long watchdog_scan_cpu(__u64 i, void *data)
{
	__u64 now = *(__u64 *)data;
	__u32 c = (__u32)i & (GHOST_MAX_CPUS - 1);
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;

	if (bpf_iter_scx_dsq_new(&it, PARK_DSQ(c), 0) == 0) {
		while ((p = bpf_iter_scx_dsq_next(&it))) {
			if (held_too_long(p, now)) {
				sweep_req[c] = 1;
				sweep_pending = 1;
				kick_for(p);
				break;
			}
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	/* Where agents spin now (kick_for). The kernel queues some threads on
	 * a CPU's local queue by itself (migration-disabled or exiting ones
	 * skip ops.enqueue): behind a spinning agent they would wait for as
	 * long as it spins. */
	if (c < nr_cpus && cpu_held_by_spinning_agent(c)) {
		cpu_global_agent_at[c] = now;
		agent_spin_cpus[(c / 64) & (GHOST_CPU_MASK_WORDS - 1)] |= 1ULL << (c % 64);
		if (scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL_ON | c) > 0 || others_wait_on_cpu(c))
			request_agent_yield(c);
	}
	return 0;
}

static int watchdog_fire(void *map, int *key, struct ghost_watchdog_timer *w)
{
	__u64 now = bpf_ktime_get_ns();
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;

	for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++)
		agent_spin_cpus[i] = 0;
	bpf_loop(nr_cpus, watchdog_scan_cpu, &now, 0);
	if (bpf_iter_scx_dsq_new(&it, FALLBACK_DSQ, 0) == 0) {
		int kicks = 0;

		while ((p = bpf_iter_scx_dsq_next(&it)) && kicks < FALLBACK_KICKS_PER_PERIOD) {
			struct ghost_task *t = task_get(p);

			if (t && t->held_at && held_for(now, t->held_at) > FALLBACK_WAIT_NS) {
				kick_for(p);
				kicks++;
			}
		}
	}
	bpf_iter_scx_dsq_destroy(&it);

	bpf_timer_start(&w->timer, WATCHDOG_PERIOD_NS, 0);
	return 0;
}

/* From the sleepable ops.init: the DSQs and the watchdog timer. */
static __always_inline s32 fallback_init(void)
{
	struct ghost_watchdog_timer *w;
	__u32 zero = 0;
	s32 ret;

	ret = scx_bpf_create_dsq(FALLBACK_DSQ, -1);
	if (ret)
		return ret;
	for (__u32 c = 0; c < GHOST_MAX_CPUS && c < nr_cpus; c++) {
		ret = scx_bpf_create_dsq(PARK_DSQ(c), -1);
		if (ret)
			return ret;
	}
	w = bpf_map_lookup_elem(&watchdog, &zero);
	if (!w)
		return -ENOENT;
	bpf_timer_init(&w->timer, &watchdog, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&w->timer, watchdog_fire);
	return bpf_timer_start(&w->timer, WATCHDOG_PERIOD_NS, 0);
}

#endif /* GHOST_SCX_BPF_FALLBACK_H */
