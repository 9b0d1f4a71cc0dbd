/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fast path (issue 9, docs/FAST_PATH.md): an agent pushes runnable threads
 * into its enclave's per-NUMA-node rings (kernel/ghost_ring.h, mmapped); a CPU
 * of the enclave with nothing local claims from its node's ring in
 * ops.dispatch, validates the entry exactly as a commit is validated
 * (transactions.bpf.h), and moves the thread from its parking DSQ to its own
 * local DSQ with the DSQ iterator. The kernel refuses a move whose iterator is
 * stale (the thread left or re-entered the DSQ since the iteration started: an
 * affinity or nice change does both), so a change racing the consumer fails
 * the move instead of ejecting the class (STALE INSERT_RACE).
 *
 * A moved entry stays CLAIMED until the thread's own callbacks settle it:
 * ops.running on the consumer's CPU writes RAN; back in ops.enqueue before it
 * ran (a higher class took the CPU, a property change) writes STALE BOUNCED
 * and the thread is parked again with no message (its agent learns it from
 * the outcome). Nothing else settles a moved entry, except the thread leaving
 * the class (STALE GONE).
 *
 * The rings are one BPF_F_MMAPABLE array: element GHOST_RING_INDEX(enclave,
 * node). The agent initialises them (layout_version 0: not in use, skipped);
 * BpfKernelSide zeroes an enclave's rings when it is created or destroyed.
 */
#ifndef GHOST_SCX_BPF_FAST_PATH_H
#define GHOST_SCX_BPF_FAST_PATH_H

#include "ghost_common.bpf.h"
#include "enclaves.bpf.h"
#include "fallback.bpf.h"
#include "ring.bpf.h"
#include "run_stats.bpf.h"
#include "tasks.bpf.h"
#include "transactions.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_NR_RINGS);
	__type(key, __u32);
	__type(value, struct ghost_ring);
} ghost_rings SEC(".maps");

/* CPU -> ring node, set by the loader from sysfs (already folded modulo
 * GHOST_RING_MAX_NODES); copied into class_info for agents by ops.init. */
const volatile __u8 cpu_node[GHOST_MAX_CPUS];
const volatile __u32 nr_nodes = 1;

/* Entries one dispatch may claim from its own node's ring (stale ones are
 * dropped and the next is tried), and from other nodes' rings when stealing. */
#define RING_POPS_PER_DISPATCH 4
#define RING_STEALS_PER_DISPATCH 4

/* Per CPU: entries claimed from its own node's ring, from other nodes'
 * (steals), and ring runs that started on it. Class-wide: dropped entries by
 * reason, ring runs, settle calls the ring refused (a ring re-initialised
 * under a moved entry: should stay 0), doorbells. */
__u64 ring_cpu_pops[GHOST_MAX_CPUS], ring_cpu_steals[GHOST_MAX_CPUS], ring_cpu_runs[GHOST_MAX_CPUS];
__u64 nr_ring_stale[GHOST_RING_STALE_LAST + 1];
__u64 nr_runs_ring, nr_ring_settle_errors;
__u64 nr_ring_skips_agent_cpu; /* dispatches on a global agent's CPU that did not consume */
__u64 nr_doorbells, nr_doorbell_kicks;
__u64 nr_doorbell_steal_kicks; /* ... of them to another node's CPU, for a ring that lets it steal */
/* BPF producers at wake-up (GHOST_RING_F_WAKEUP): entries pushed, pushes a
 * full (or contended) ring refused, wake-ups parked on another idle CPU of
 * the node than their previous, busy one (the doorbell of a BPF push). */
__u64 nr_ring_wakeup_pushes, nr_ring_wakeup_refused, nr_ring_wakeup_moves;

static __always_inline struct ghost_ring *ring_at(__u32 idx)
{
	if (idx >= GHOST_NR_RINGS)
		return NULL;
	return bpf_map_lookup_elem(&ghost_rings, &idx);
}

static __always_inline __u32 node_of_cpu(__u32 cpu)
{
	return cpu_node[cpu & (GHOST_MAX_CPUS - 1)] & (GHOST_RING_MAX_NODES - 1);
}

static __always_inline __u32 ring_nodes(void)
{
	__u32 n = nr_nodes;

	return n < 1 ? 1 : n > GHOST_RING_MAX_NODES ? GHOST_RING_MAX_NODES : n;
}

/* May `p` run on `cpu`: its affinity, and the CPU it is stuck on if it was
 * preempted with migration disabled. An insert or move that breaks this
 * ejects the class. */
static __always_inline bool ring_allowed(struct task_struct *p, __u32 cpu)
{
	return bpf_cpumask_test_cpu(cpu, p->cpus_ptr) &&
	       !(task_migration_disabled(p) && scx_bpf_task_cpu(p) != (s32)cpu);
}

/* Moves `tid` from the parking DSQ of `park_cpu` to this CPU's local DSQ:
 * STALE_NONE if it moved, else why not. The affinity is checked on the task
 * the iterator holds; if it changes after that, the kernel refuses the move. */
static __always_inline __u32 ring_move(__u64 tid, __s32 park_cpu, __u32 cpu, __u64 slice)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *q;
	__u32 res = GHOST_RING_STALE_NOT_PARKED;

	if (park_cpu < 0 || park_cpu >= GHOST_MAX_CPUS)
		return res;
	if (bpf_iter_scx_dsq_new(&it, PARK_DSQ(park_cpu), 0) == 0) {
		while ((q = bpf_iter_scx_dsq_next(&it))) {
			if (q->scx.tid != tid)
				continue;
			if (!ring_allowed(q, cpu)) {
				res = GHOST_RING_STALE_AFFINITY;
				break;
			}
			RACE_WINDOW();
			scx_bpf_dsq_move_set_slice(&it, slice);
			res = scx_bpf_dsq_move(&it, q, SCX_DSQ_LOCAL, 0) ? GHOST_RING_STALE_NONE
									 : GHOST_RING_STALE_INSERT_RACE;
			break;
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	return res;
}

/*
 * Validates a claimed entry for `cpu` of `enclave` (the commit path's rules)
 * and moves its thread here. STALE_NONE: moved, the entry waits for the
 * thread's callbacks; else the reason to drop it (the caller fails the slot;
 * the thread stays parked with its agent, or the fallback).
 */
static __always_inline __u32 ring_run(__u32 cpu, __u32 enclave, __u32 idx,
				      const struct ghost_ring_entry *e)
{
	struct task_struct *p;
	struct ghost_task *t;
	__u32 reason;

	if (!cpu_online(cpu) || cpu_busy[cpu & (GHOST_MAX_CPUS - 1)] ||
	    cpu_enclave(cpu) != enclave)
		return GHOST_RING_STALE_CPU;
	bpf_rcu_read_lock();
	p = task_from_tid(e->tid);
	if (!p) {
		reason = GHOST_RING_STALE_GONE;
		goto out;
	}
	t = task_get(p);
	if (!t || !t->enabled) {
		reason = GHOST_RING_STALE_GONE;
		goto out;
	}
	if (!task_in_enclave(t) || t->enclave != enclave) {
		reason = GHOST_RING_STALE_ENCLAVE;
		goto out;
	}
	if (t->seq != e->seqnum) {
		reason = GHOST_RING_STALE_SEQNUM;
		goto out;
	}
	if (t->state != GT_HELD || t->txn_cpu >= 0 || t->ring_cpu >= 0) {
		reason = GHOST_RING_STALE_NOT_PARKED;
		goto out;
	}
	if (!ring_allowed(p, cpu)) {
		reason = GHOST_RING_STALE_AFFINITY;
		goto out;
	}
	/* Take the thread: against another consumer (the CAS) and against a
	 * commit (each side publishes its claim with a full barrier, then looks
	 * for the other's: at most one proceeds). */
	if (__sync_val_compare_and_swap(&t->ring_cpu, -1, (__s32)cpu) != -1) {
		reason = GHOST_RING_STALE_NOT_PARKED;
		goto out;
	}
	if (*(volatile __s32 *)&t->txn_cpu >= 0) {
		__sync_val_compare_and_swap(&t->ring_cpu, (__s32)cpu, -1);
		reason = GHOST_RING_STALE_NOT_PARKED;
		goto out;
	}
	reason = ring_move(e->tid, t->park_cpu, cpu, e->slice_ns ? e->slice_ns : slice_ns);
	if (reason == GHOST_RING_STALE_NONE) {
		/* It is on this CPU's local DSQ and this CPU's rq lock is held:
		 * none of its callbacks can run before these are written. */
		t->ring_idx = idx;
		t->ring_pos = e->pos;
		t->ring_moved = 1;
	} else {
		__sync_val_compare_and_swap(&t->ring_cpu, (__s32)cpu, -1);
	}
out:
	bpf_rcu_read_unlock();
	return reason;
}

struct ring_pop_ctx {
	__u32 cpu;
	__u32 enclave;
	__u32 home;      /* this CPU's node */
	__u32 moved;     /* a thread moved here: stop */
	__u64 now;       /* this dispatch's clock, for passing a stalled producer's gap */
	__u32 empty[GHOST_RING_MAX_NODES]; /* stealing: nothing (more) to take there */
};

/* One claim from `node`'s ring of the enclave; 1 to stop looking there. */
static __always_inline long ring_pop(struct ring_pop_ctx *c, __u32 node, bool steal)
{
	__u32 cpu = c->cpu & (GHOST_MAX_CPUS - 1);
	__u32 idx = GHOST_RING_INDEX(c->enclave, node & (GHOST_RING_MAX_NODES - 1));
	struct ghost_ring *r = ring_at(idx);
	struct ghost_ring_entry e = {};
	__u32 reason;

	if (!r)
		return 1;
	if (steal && !(*(volatile __u32 *)&r->info.flags & GHOST_RING_F_STEAL))
		return 1;
	if (ghost_ring_claim(r, cpu, c->now, &e) != 1)
		return 1; /* empty, or not initialised (layout_version 0) */
	if (steal)
		__sync_fetch_and_add(&ring_cpu_steals[cpu], 1);
	else
		__sync_fetch_and_add(&ring_cpu_pops[cpu], 1);
	reason = ring_run(cpu, c->enclave, idx, &e);
	if (reason == GHOST_RING_STALE_NONE) {
		c->moved = 1;
		return 1;
	}
	if (ghost_ring_fail(r, e.pos, reason))
		__sync_fetch_and_add(&nr_ring_settle_errors, 1);
	if (reason <= GHOST_RING_STALE_LAST)
		__sync_fetch_and_add(&nr_ring_stale[reason], 1);
	return 0;
}

static long ring_pop_home(__u64 i, struct ring_pop_ctx *c)
{
	return ring_pop(c, c->home, false);
}

static long ring_pop_steal(__u64 i, struct ring_pop_ctx *c)
{
	__u32 n = ring_nodes(), node;

	if (n < 2)
		return 1;
	/* Round robin over the other nodes, starting after this one. */
	node = (c->home + 1 + (__u32)i % (n - 1)) % n;
	node &= GHOST_RING_MAX_NODES - 1;
	if (c->empty[node])
		return 0;
	if (ring_pop(c, node, true))
		c->empty[node] = 1;
	return c->moved ? 1 : 0;
}

/*
 * From ops.dispatch of a CPU with nothing local, after the fallback FIFO and
 * never on a starved CPU (a higher class holds it: docs/FALLBACK.md, the ext
 * server's pick must stay the class's fallback path). True if a ring thread
 * moved to this CPU.
 */
static __always_inline bool fast_path_dispatch(__u32 cpu)
{
	struct ring_pop_ctx c = { .cpu = cpu & (GHOST_MAX_CPUS - 1) };

	c.enclave = cpu_enclave(cpu);
	if (c.enclave >= GHOST_MAX_ENCLAVES)
		return false;
	/* A global agent's CPU (it stepped aside for a moment): a thread moved
	 * to its local DSQ would wait there behind the agent until the kernel
	 * lends the CPU (about a second), its entry claimed all that time, and
	 * the agent reaps outcomes in push order. Unless the agent sleeps on
	 * its queue (--agent-sleep-us): then the CPU is the rings' like any
	 * other, and the agent's waking preempts what runs (cpu_release). */
	if (cpu_home_of_global_agent(cpu) && !global_agent_asleep(cpu)) {
		__sync_fetch_and_add(&nr_ring_skips_agent_cpu, 1);
		return false;
	}
	c.home = node_of_cpu(cpu);
	c.now = bpf_ktime_get_ns();
	bpf_loop(RING_POPS_PER_DISPATCH, ring_pop_home, &c, 0);
	if (c.moved)
		return true;
	bpf_loop(RING_STEALS_PER_DISPATCH, ring_pop_steal, &c, 0);
	return c.moved;
}

/* Ends the moved entry of `t` as RAN (ran: it started on the consumer's CPU)
 * or STALE for `reason`. From the thread's own callbacks. */
static __always_inline void ring_settle(struct task_struct *p, struct ghost_task *t, bool ran,
					__u32 reason)
{
	struct ghost_ring *r;
	int err;

	if (!t->ring_moved)
		return;
	t->ring_moved = 0;
	t->ring_cpu = -1;
	r = ring_at(t->ring_idx);
	if (!r) {
		__sync_fetch_and_add(&nr_ring_settle_errors, 1);
		return;
	}
	/* A ring the agent re-initialised meanwhile has no such claimed entry:
	 * both calls then fail (the CAS names the position). */
	err = ran ? ghost_ring_complete(r, t->ring_pos) : ghost_ring_fail(r, t->ring_pos, reason);
	if (err)
		__sync_fetch_and_add(&nr_ring_settle_errors, 1);
	else if (!ran && reason <= GHOST_RING_STALE_LAST)
		__sync_fetch_and_add(&nr_ring_stale[reason], 1);
}

/* ops.running: was this run placed by a ring entry (on this CPU)? */
static __always_inline bool ring_placed(const struct ghost_task *t, __u32 cpu)
{
	return t->ring_moved && t->ring_cpu == (__s32)cpu;
}

/* ops.running, after the status word shows the run (so an agent that reaps
 * RAN reads a status word at least as new as this run). */
static __always_inline void ring_settle_running(struct task_struct *p, struct ghost_task *t,
						__u32 cpu)
{
	if (!t->ring_moved)
		return;
	ring_settle(p, t, t->ring_cpu == (__s32)cpu, GHOST_RING_STALE_BOUNCED);
}

/* The ring a thread of `enclave` parked on `cpu` would be pushed to at
 * wake-up, if that ring takes wake-ups (its agent set GHOST_RING_F_WAKEUP). */
static __always_inline struct ghost_ring *ring_for_wakeup(__u32 enclave, __s32 cpu)
{
	struct ghost_ring *r;

	if (enclave >= GHOST_MAX_ENCLAVES || cpu < 0 || cpu >= GHOST_MAX_CPUS)
		return NULL;
	r = ring_at(GHOST_RING_INDEX(enclave, node_of_cpu((__u32)cpu)));
	if (!r || !(*(volatile __u32 *)&r->info.flags & GHOST_RING_F_WAKEUP))
		return NULL;
	return r;
}

struct wake_cpu_ctx {
	struct task_struct *p;
	__u32 enclave, node, start;
	bool any_node;
	__s32 cpu;
};

static long wake_cpu_scan(__u64 i, struct wake_cpu_ctx *w)
{
	__u32 cpu = ((__u32)i + w->start) % (nr_cpus ? nr_cpus : 1);

	barrier_var(cpu);
	cpu &= GHOST_MAX_CPUS - 1;
	if ((!w->any_node && node_of_cpu(cpu) != w->node) || !cpu_online(cpu) ||
	    !enclave_has_cpu(w->enclave, cpu) ||
	    (cpu_home_of_global_agent(cpu) && !global_agent_asleep(cpu)) ||
	    !bpf_cpumask_test_cpu(cpu, w->p->cpus_ptr))
		return 0;
	if (!scx_bpf_test_and_clear_cpu_idle(cpu))
		return 0;
	w->cpu = cpu;
	return 1;
}

/*
 * ops.select_cpu of a waking enclave thread that would park on `cpu`: with
 * wake-up pushes on, it parks on an idle CPU instead: `cpu` itself, else one
 * of the same node, else of another node of the enclave; the enqueue then
 * wakes that CPU, which consumes from its node's ring, where ops.enqueue
 * pushed the thread (the BPF producer's doorbell: one CPU per wake-up, each
 * claimed, so no herd). A global agent's CPU counts only while its agent
 * sleeps (dispatch there consumes then, as on any CPU). With no idle CPU it
 * stays on `cpu`, whose node's ring a CPU going idle there reads first.
 */
static __always_inline s32 ring_wake_cpu(struct task_struct *p, struct ghost_task *t, s32 cpu)
{
	struct wake_cpu_ctx w = { .p = p, .cpu = -1 };

	if (!ring_for_wakeup(t->enclave, cpu))
		return cpu;
	if (scx_bpf_test_and_clear_cpu_idle(cpu))
		return cpu;
	w.enclave = t->enclave;
	w.node = node_of_cpu((__u32)cpu);
	w.start = (__u32)cpu + 1;
	bpf_loop(nr_cpus < GHOST_MAX_CPUS ? nr_cpus : GHOST_MAX_CPUS, wake_cpu_scan, &w, 0);
	if (w.cpu < 0 && ring_nodes() > 1) {
		w.any_node = true;
		bpf_loop(nr_cpus < GHOST_MAX_CPUS ? nr_cpus : GHOST_MAX_CPUS, wake_cpu_scan, &w, 0);
	}
	if (w.cpu < 0)
		return cpu;
	__sync_fetch_and_add(&nr_ring_wakeup_moves, 1);
	return w.cpu;
}

/*
 * ops.enqueue of a thread that woke up and was parked: the BPF producer. If
 * its parking CPU's node's ring takes wake-ups, push {tid, seqnum} (the
 * seqnum of the WAKEUP message being built) and name the entry in the
 * message; the agent then owns the entry as if it had pushed it (it may
 * revoke it) and reaps its outcome. A full ring: no entry, the message goes
 * to the agent as usual; nothing is lost either way.
 */
static __always_inline void ring_push_wakeup(struct task_struct *p, struct ghost_task *t,
					     struct ghost_msg_task_wakeup *w, __u64 seqnum)
{
	struct ghost_ring *r = ring_for_wakeup(t->enclave, t->park_cpu);
	__u64 pos = 0;

	/* Narrow threads stay with the agent: a consumer outside their mask
	 * would drop the entry (AFFINITY), the agent's rings take only threads
	 * every CPU of a node may run. */
	if (!r || p->nr_cpus_allowed < nr_cpus)
		return;
	if (ghost_ring_push(r, p->scx.tid, seqnum, bpf_ktime_get_ns(),
			    *(volatile __u64 *)&r->info.wakeup_slice_ns, &pos) != GHOST_RING_PUSH_OK) {
		__sync_fetch_and_add(&nr_ring_wakeup_refused, 1);
		return;
	}
	w->in_ring = 1;
	w->deferrable = 1; /* the agent need not wake for it (queues.bpf.h) */
	w->ring_node = node_of_cpu((__u32)t->park_cpu);
	w->ring_pos = pos;
	__sync_fetch_and_add(&nr_ring_wakeup_pushes, 1);
}

struct doorbell_ctx {
	__u64 idle[GHOST_CPU_MASK_WORDS]; /* idle and not kicked yet */
	__u32 left[GHOST_RING_MAX_NODES];
	__u32 steal[GHOST_RING_MAX_NODES]; /* that node's ring lets other nodes take */
	__u32 enclave;
	__u32 kicked;
	__u32 steal_pass;
	__u32 stolen;
};

/* First pass: an idle CPU of node n for node n's kicks. Second pass (some
 * node's kicks left, its ring lets others steal): an idle CPU of another
 * node, whose consumer takes from that ring once its own is empty. */
static long doorbell_cpu(__u64 i, struct doorbell_ctx *d)
{
	__u32 cpu = (__u32)i & (GHOST_MAX_CPUS - 1);
	__u32 n = node_of_cpu(cpu);

	if (!cpu_in_mask(d->idle, cpu) || !cpu_online(cpu) || !enclave_has_cpu(d->enclave, cpu))
		return 0;
	if (d->steal_pass) {
		for (__u32 m = 0; m < GHOST_RING_MAX_NODES; m++) {
			if (m == n || !d->left[m] || !d->steal[m])
				continue;
			n = m;
			break;
		}
		if (n == node_of_cpu(cpu))
			return 0;
		d->stolen++;
	} else if (!d->left[n]) {
		return 0;
	}
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	d->idle[cpu / 64] &= ~(1ULL << (cpu % 64));
	d->left[n & (GHOST_RING_MAX_NODES - 1)]--;
	d->kicked++;
	return 0;
}

/* The agent's doorbell after a batch of pushes: wake up to kicks[n] idle CPUs
 * of the enclave on each node n, so they run ops.dispatch and consume; kicks
 * node n's own CPUs cannot take go to other nodes' idle CPUs if n's ring lets
 * them steal (GHOST_RING_F_STEAL). */
SEC("syscall")
int ghost_ring_doorbell(struct ghost_ring_doorbell_args *args)
{
	struct doorbell_ctx d = {};
	const struct cpumask *idle;

	d.enclave = args->enclave;
	for (int n = 0; n < GHOST_RING_MAX_NODES; n++)
		d.left[n] = args->kicks[n];
	if (!enclave_in_use(d.enclave)) {
		args->nr_kicked = 0;
		return -ENOENT;
	}
	idle = scx_bpf_get_idle_cpumask();
	for (int w = 0; w < GHOST_CPU_MASK_WORDS; w++)
		d.idle[w] = BPF_CORE_READ(idle, bits[w]);
	scx_bpf_put_idle_cpumask(idle);
	bpf_loop(nr_cpus < GHOST_MAX_CPUS ? nr_cpus : GHOST_MAX_CPUS, doorbell_cpu, &d, 0);
	for (int n = 0; n < GHOST_RING_MAX_NODES; n++) {
		struct ghost_ring *r;

		if (!d.left[n])
			continue;
		r = ring_at(GHOST_RING_INDEX(d.enclave, n));
		if (r && (*(volatile __u32 *)&r->info.flags & GHOST_RING_F_STEAL)) {
			d.steal[n] = 1;
			d.steal_pass = 1;
		}
	}
	if (d.steal_pass)
		bpf_loop(nr_cpus < GHOST_MAX_CPUS ? nr_cpus : GHOST_MAX_CPUS, doorbell_cpu, &d, 0);
	__sync_fetch_and_add(&nr_doorbells, 1);
	__sync_fetch_and_add(&nr_doorbell_kicks, d.kicked);
	__sync_fetch_and_add(&nr_doorbell_steal_kicks, d.stolen);
	args->nr_kicked = d.kicked;
	return 0;
}

#endif /* GHOST_SCX_BPF_FAST_PATH_H */
