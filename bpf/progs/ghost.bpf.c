/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ghost: the ghOSt scheduling class on sched_ext.
 *
 * SCHED_EXT threads (SCX_OPS_SWITCH_PARTIAL: everything else stays in the fair
 * class, which keeps priority over us as it did over ghOSt's class) belong to
 * an enclave or to nobody. Threads of nobody run in a global FIFO. Enclave
 * threads are delegated: every state change becomes a message in the thread's
 * queue (messages.bpf.h) and its status word (status_words.bpf.h); a runnable
 * thread waits in a parking DSQ (fallback.bpf.h) until its agent commits a
 * transaction that moves it to a CPU (transactions.bpf.h), until an idle CPU
 * of its enclave takes it from the agent's fast-path ring (fast_path.bpf.h),
 * or until the enclave's watchdog hands it to the FIFO, so no agent can stall
 * the class.
 *
 * Where the ghOSt events come from (see DESIGN.md, "Rules the kernel imposes"):
 *   TASK_NEW        ops.enable (+ AFFINITY_CHANGED if it may not use every CPU)
 *   TASK_DEAD/DEPARTED  ops.quiescent/disable
 *   TASK_WAKEUP     ops.enqueue, when the thread was blocked
 *   TASK_PREEMPT    ops.enqueue, after ops.stopping(runnable)
 *   TASK_YIELD      ops.enqueue, after ops.yield + ops.stopping
 *   TASK_BLOCKED    ops.quiescent with SCX_DEQ_SLEEP
 *   AFFINITY/PRIORITY_CHANGED  ops.set_cpumask/set_weight (when they change)
 *   TASK_ON_CPU     ops.running, on request
 *   CPU_BUSY/AVAILABLE  ops.cpu_release/cpu_acquire; CPU_TICK ops.tick;
 *   CPU_NOT_IDLE    ops.update_idle; CPU_TIMER_EXPIRED a bpf_timer (control.bpf.h)
 *
 * The kernel ends the class on any BPF error or a stalled thread; ops.exit
 * records why so the agent can print it.
 */
#include "ghost_common.bpf.h"
#include "class_info.bpf.h"
#include "enclaves.bpf.h"
#include "status_words.bpf.h"
#include "queues.bpf.h"
#include "tasks.bpf.h"
#include "messages.bpf.h"
#include "fallback.bpf.h"
#include "transactions.bpf.h"
#include "control.bpf.h"
#include "dump.bpf.h"
#include "run_stats.bpf.h"
#include "fast_path.bpf.h"
#include "pinned.bpf.h"
#include "slices.bpf.h"

char _license[] SEC("license") = "GPL";

struct ghost_exit_record exit_record;
__u64 nr_enabled, nr_fallback_tasks;
/* FIFO placements (threads of no enclave, or handed over by a watchdog). */
__u64 nr_enqueued, nr_dispatched, nr_direct;
/* Runs of enclave threads, by who placed them (ops.running). */
__u64 nr_runs_committed, nr_runs_fallback, nr_runs_resumed;

s32 GHOST_OPS(ghost_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct ghost_task *t = task_get(p);
	bool idle = false;
	s32 cpu;

	/* Enclave threads must reach ops.enqueue: the agent places them. */
	if (task_in_enclave(t))
		return ring_wake_cpu(p, t, wait_cpu_for(p, t, prev_cpu));
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);
	if (idle) {
		__sync_fetch_and_add(&nr_direct, 1);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	}
	return cpu;
}

void GHOST_OPS(ghost_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct ghost_task *t = task_get(p);

	if (!task_in_enclave(t)) {
		__sync_fetch_and_add(&nr_enqueued, 1);
		fallback_insert(p, t, enq_flags);
		return;
	}
	if (t->ring_moved) {
		/* A ring entry moved it, but it came back before it ran: the
		 * entry's outcome tells the agent; no message. */
		ring_settle(p, t, false, GHOST_RING_STALE_BOUNCED);
		t->stop_reason = GT_STOP_NONE;
		pinned_keep_or_park(p, t, enq_flags);
		return;
	}
	if (t->txn_cpu >= 0) {
		/* A commit moved it, but it came back before it ran. The
		 * result tells the agent; the thread's state did not change. */
		txn_settle(p, t, (enq_flags & SCX_ENQ_REENQ) ? GHOST_TXN_CPU_UNAVAILABLE
							     : GHOST_TXN_PREEMPTED);
		t->stop_reason = GT_STOP_NONE;
		pinned_keep_or_park(p, t, enq_flags);
		return;
	}
	if (t->state == GT_BLOCKED) {
		struct ghost_msg m;
		s32 pin = pinned_target(p, t);

		t->state = GT_HELD;
		t->held_at = 0;
		/* Queued on its one CPU if that CPU's agent lets the class do it. */
		pinned_insert_or_park(p, t, pin, enq_flags);
		task_wakeup_msg(p, t, &m, (enq_flags & SCX_ENQ_WAKEUP) ? bpf_get_smp_processor_id()
									 : ~0U);
		if (pin >= 0)
			m.wakeup.deferrable = 1;
		/* Parked for its agent (not handed to the FIFO): the fast
		 * path's BPF producer may push it (fast_path.bpf.h). */
		else if (t->state == GT_HELD)
			ring_push_wakeup(p, t, &m.wakeup, m.seqnum);
		task_msg_send(p, t, &m, false);
	} else if (t->stop_reason != GT_STOP_NONE) {
		__u16 type = t->stop_reason == GT_STOP_YIELD ? GHOST_MSG_TASK_YIELD
							     : GHOST_MSG_TASK_PREEMPT;
		s32 pin = pinned_target(p, t);

		t->stop_reason = GT_STOP_NONE;
		t->held_at = 0;
		pinned_insert_or_park(p, t, pin, enq_flags);
		send_task_off_cpu(p, t, type, t->cpu, true);
	} else {
		/* A property change (ENQUEUE_RESTORE), a migration, or the first
		 * enqueue of a thread TASK_NEW already reported runnable: no
		 * event. */
		pinned_keep_or_park(p, t, enq_flags);
	}
}

void GHOST_OPS(ghost_dequeue, struct task_struct *p, u64 deq_flags)
{
	struct ghost_task *t = task_get(p);

	/* Out of our DSQs: no commit may find it until it is parked again. */
	if (task_in_enclave(t) && t->state == GT_HELD)
		t->state = GT_QUEUED;
}

void GHOST_OPS(ghost_dispatch, s32 cpu, struct task_struct *prev)
{
	__u32 c = (__u32)cpu & (GHOST_MAX_CPUS - 1);
	bool starved = cpu_starved(c);

	cpu_dispatches[c]++;
	cpu_last_dispatch_ns[c] = bpf_ktime_get_ns();
	if (starved)
		cpu_starved_dispatches[c]++;
	sweep_parked();
	if (scx_bpf_dsq_move_to_local(FALLBACK_DSQ)) {
		__sync_fetch_and_add(&nr_dispatched, 1);
		return;
	}
	/* The agent's fast path: only on a CPU no higher class holds (a
	 * starved CPU's dispatch is the ext server's, below). First, the
	 * thread whose slice just ended keeps the CPU if nothing waits for it. */
	if (!starved) {
		if (!slice_renewed(c, prev))
			fast_path_dispatch(c);
		return;
	}
	if (run_parked_here(cpu))
		return;
	/* Lent by the ext server with nothing else to run here: the thread
	 * being switched out keeps the CPU (the kernel keeps `prev` when its
	 * slice is non-zero after dispatch; the server's budget bounds it),
	 * else the server would stop with it still queued (runqueues.bpf.h). */
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED))
		scx_bpf_task_set_slice(prev, SCX_SLICE_INF);
	else
		cpu_starved_empty[c]++;
}

/*
 * ops.running and ops.stopping run under the thread's runqueue lock, but not
 * always on its CPU: a property changed from another CPU while it runs
 * (affinity, policy, nice) stops and restarts it from the caller's CPU. So the
 * thread's CPU is its own (scx_bpf_task_cpu), never the current CPU
 * (ghost_remote_change, which counts the calls made so).
 */
__u64 nr_remote_running, nr_remote_stopping;
void GHOST_OPS(ghost_running, struct task_struct *p)
{
	struct ghost_task *t = task_get(p);
	__u32 cpu = scx_bpf_task_cpu(p);
	__u64 waited_since;

	if (!t)
		return;
	if (bpf_get_smp_processor_id() != cpu)
		__sync_fetch_and_add(&nr_remote_running, 1);
	waited_since = t->held_at;
	t->held_at = 0;
	if (!task_in_enclave(t))
		return;
	/* Who put it here: a commit, the fallback (its agent was late or gone),
	 * or the kernel (it resumes after a higher class preempted it). Only a
	 * run a commit started renews its slice (slices.bpf.h); a resumed one
	 * goes on as it was. */
	if (t->fallback) {
		t->renew_slice_ns = 0;
		run_note(t, t->fallback == FALLBACK_STARVED ? RUN_STARVED : RUN_FALLBACK, waited_since);
		t->fallback = 0;
		CLASS_COUNT(fallback_runs);
		__sync_fetch_and_add(&nr_runs_fallback, 1);
	} else if (t->pin_cpu == (__s32)cpu) {
		/* Queued on its one CPU by the class at its agent's request
		 * (pinned.bpf.h): a placement its agent delegated. Before the
		 * commit check: a hand-over also claims txn_cpu. */
		t->renew_slice_ns = 0;
		__sync_fetch_and_add(&nr_runs_pinned, 1);
		run_note(t, RUN_PINNED, waited_since);
	} else if (t->txn_cpu == (__s32)cpu) {
		t->renew_slice_ns = t->txn_slice_ns;
		if (t->preempt_commit_at) {
			__u64 d = bpf_ktime_get_ns() - t->preempt_commit_at;

			__sync_fetch_and_add(&nr_preempt_runs, 1);
			__sync_fetch_and_add(&preempt_run_lat_sum_ns, d);
			if (d > preempt_run_lat_max_ns)
				preempt_run_lat_max_ns = d;
		}
		__sync_fetch_and_add(&nr_runs_committed, 1);
		run_note(t, RUN_COMMITTED, waited_since);
	} else if (ring_placed(t, cpu)) {
		/* Its agent chose it through the ring: an agent placement. */
		__u32 c = cpu & (GHOST_MAX_CPUS - 1);

		barrier_var(c);
		t->renew_slice_ns = 0;
		__sync_fetch_and_add(&nr_runs_ring, 1);
		__sync_fetch_and_add(&ring_cpu_runs[c & (GHOST_MAX_CPUS - 1)], 1);
		run_note(t, RUN_RING, waited_since);
	} else {
		__sync_fetch_and_add(&nr_runs_resumed, 1);
		run_note(t, RUN_RESUMED, waited_since);
	}
	t->state = GT_ON_CPU;
	t->cpu = cpu;
	t->pin_cpu = -1;
	t->stop_reason = GT_STOP_NONE;
	if (cpu < GHOST_MAX_CPUS)
		cpu_curr_tid[cpu] = p->scx.tid;
	txn_settle(p, t, t->txn_cpu == (__s32)cpu ? GHOST_TXN_COMMITTED : GHOST_TXN_PREEMPTED);
	if (t->want_on_cpu)
		send_task_on_cpu(p, t, cpu);
	else
		task_publish(p, t, false);
	ring_settle_running(p, t, cpu);
}

void GHOST_OPS(ghost_stopping, struct task_struct *p, bool runnable)
{
	struct ghost_task *t = task_get(p);
	__u32 cpu = scx_bpf_task_cpu(p);

	if (bpf_get_smp_processor_id() != cpu)
		__sync_fetch_and_add(&nr_remote_stopping, 1);
	if (cpu < GHOST_MAX_CPUS && cpu_curr_tid[cpu] == p->scx.tid)
		cpu_curr_tid[cpu] = 0;
	if (cpu < GHOST_MAX_CPUS && cpu_preempt_at[cpu]) {
		__u64 d = bpf_ktime_get_ns() - cpu_preempt_at[cpu];

		cpu_preempt_at[cpu] = 0;
		__sync_fetch_and_add(&nr_preempt_stops, 1);
		__sync_fetch_and_add(&preempt_stop_lat_sum_ns, d);
		if (d > preempt_stop_lat_max_ns)
			preempt_stop_lat_max_ns = d;
	}
	if (!task_in_enclave(t))
		return;
	t->state = GT_QUEUED;
	if (runnable)
		t->stop_reason = t->yielding ? GT_STOP_YIELD : GT_STOP_PREEMPT;
	t->yielding = 0;
	task_publish(p, t, false);
}

bool GHOST_OPS(ghost_yield, struct task_struct *from, struct task_struct *to)
{
	struct ghost_task *t = task_get(from);

	if (task_in_enclave(t))
		t->yielding = 1;
	scx_bpf_task_set_slice(from, 0);
	return false;
}

static __always_inline void task_gone(struct task_struct *p, struct ghost_task *t, __u16 type)
{
	txn_settle(p, t, GHOST_TXN_NOT_FOUND);
	ring_settle(p, t, false, GHOST_RING_STALE_GONE);
	t->state = GT_BLOCKED;
	/* Gone before the agent can read so: a commit made on DEAD/DEPARTED
	 * finds nothing (NOT_FOUND), even while a departed thread lives on. */
	t->enabled = 0;
	tid_index_del(p);
	send_task_off_cpu(p, t, type, t->cpu, false);
	sw_free(t->sw, p->scx.tid);
}

void GHOST_OPS(ghost_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct ghost_task *t = task_get(p);

	if (!task_in_enclave(t))
		return;
	/* A nice/affinity change or a migration: not an event, and the thread
	 * is enqueued again at once, where a pending commit settles PREEMPTED
	 * (NOT_RUNNABLE would tell its agent to wait for a WAKEUP that never
	 * comes). Leaving the class settles it NOT_FOUND (task_gone). */
	if (!(deq_flags & SCX_DEQ_SLEEP))
		return;
	if (t->txn_cpu >= 0)
		txn_settle(p, t, GHOST_TXN_NOT_RUNNABLE);
	t->held_at = 0;
	t->stop_reason = GT_STOP_NONE;
	t->pin_cpu = -1;
	t->renew_slice_ns = 0; /* its run is over: only a commit starts another */
	if (p->__state & TASK_DEAD) {
		task_gone(p, t, GHOST_MSG_TASK_DEAD);
		return;
	}
	t->state = GT_BLOCKED;
	send_task_off_cpu(p, t, GHOST_MSG_TASK_BLOCKED, t->cpu, true);
}

void GHOST_OPS(ghost_set_cpumask, struct task_struct *p, const struct cpumask *mask)
{
	struct ghost_task *t = task_get(p);
	bool same = true;

	if (!task_in_enclave(t))
		return;
	for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++) {
		__u64 w = cpumask_word(mask, i);

		same = same && w == t->cpus[i];
		t->cpus[i] = w;
	}
	if (same)
		return;
	/* A runnable thread is enqueued again right after this (ENQUEUE_RESTORE),
	 * or it is running and a migration follows: decide now whether the class
	 * queues it on its one CPU itself, so that this message says so. */
	t->pin_cpu = t->state == GT_BLOCKED ? -1 : pinned_target(p, t);
	send_task_affinity(p, t, mask);
}

void GHOST_OPS(ghost_set_weight, struct task_struct *p, u32 weight)
{
	struct ghost_task *t = task_get(p);

	if (!task_in_enclave(t) || t->weight == weight)
		return;
	t->weight = weight;
	send_task_priority(p, t, weight);
}

void GHOST_OPS(ghost_tick, struct task_struct *p)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if (enclave_msg_flags(cpu_enclave(cpu)) & GHOST_ENCLAVE_MSG_TICK)
		send_cpu_msg(cpu, GHOST_MSG_CPU_TICK, 0, 0, 0);
}

void GHOST_OPS(ghost_update_idle, s32 cpu, bool idle)
{
	if (!idle && (enclave_msg_flags(cpu_enclave(cpu)) & GHOST_ENCLAVE_MSG_NOT_IDLE))
		send_cpu_msg(cpu, GHOST_MSG_CPU_NOT_IDLE, 0, 0, 0);
}

void GHOST_OPS(ghost_cpu_release, s32 cpu, struct scx_cpu_release_args *args)
{
	__u32 c = (__u32)cpu & (GHOST_MAX_CPUS - 1);

	if (cpu < 0 || cpu >= GHOST_MAX_CPUS)
		return;
	switch (agent_kind(args->task)) {
	case GHOST_AGENT_GLOBAL:
		/* It spins: what waits here would wait as long (agents.bpf.h). */
		cpu_global_agent_at[c] = bpf_ktime_get_ns();
		scx_bpf_reenqueue_local();
		/* fallthrough */
	case GHOST_AGENT_PER_CPU:
		cpu_quiet_release[c] = 1;
		return;
	}
	/* The stopper runs for a moment (it migrates a thread: an affinity
	 * change does it every time): telling the agent the CPU is busy, then
	 * available, and bouncing what waits here would cost more than it. */
	if (args->reason == SCX_CPU_PREEMPT_STOP) {
		cpu_quiet_release[c] = 1;
		return;
	}
	cpu_quiet_release[c] = 0;
	cpu_busy[c] = 1;
	send_cpu_msg(cpu, GHOST_MSG_CPU_BUSY, args->reason, 0, 0);
	/* Our threads waiting on this CPU go back to their agents (PREEMPT,
	 * or CPU_UNAVAILABLE for a commit that had not started yet). */
	scx_bpf_reenqueue_local();
}

void GHOST_OPS(ghost_cpu_acquire, s32 cpu, struct scx_cpu_acquire_args *args)
{
	__u32 c = (__u32)cpu & (GHOST_MAX_CPUS - 1);

	if (cpu < 0 || cpu >= GHOST_MAX_CPUS)
		return;
	if (cpu_quiet_release[c]) {
		cpu_quiet_release[c] = 0;
		return;
	}
	cpu_busy[c] = 0;
	send_cpu_msg(cpu, GHOST_MSG_CPU_AVAILABLE, 0, 0, 0);
}

void GHOST_OPS(ghost_cpu_online, s32 cpu)
{
	if (cpu >= 0 && cpu < GHOST_MAX_CPUS)
		cpu_is_online[cpu] = 1;
}

void GHOST_OPS(ghost_cpu_offline, s32 cpu)
{
	if (cpu >= 0 && cpu < GHOST_MAX_CPUS)
		cpu_is_online[cpu] = 0;
}

s32 GHOST_OPS_SLEEPABLE(ghost_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct ghost_task *t = task_create(p);
	struct ghost_task *parent;

	if (!t)
		return -ENOMEM;
	t->sw = GHOST_SW_NONE;
	t->enclave = GHOST_ENCLAVE_NONE;
	t->queue = GHOST_QUEUE_NONE;
	t->park_cpu = -1;
	t->txn_cpu = -1;
	t->ring_cpu = -1;
	t->pin_cpu = -1;
	t->cpu = -1;
	/* A thread forked by an enclave thread joins the same enclave. */
	if (args->fork) {
		parent = task_get(bpf_get_current_task_btf());
		if (task_in_enclave(parent))
			t->enclave = parent->enclave;
	}
	return 0;
}

void GHOST_OPS(ghost_enable, struct task_struct *p)
{
	struct ghost_task *t = task_get(p);
	struct ghost_enclave_word *ew;
	__u32 pid = p->pid, *enrolled;

	if (!t)
		return;
	enrolled = bpf_map_lookup_elem(&enroll, &pid);
	if (enrolled) {
		t->enclave = *enrolled;
		bpf_map_delete_elem(&enroll, &pid);
	}
	ew = enclave_word(t->enclave);
	if (!ew || !(ew->flags & GHOST_ENCLAVE_INUSE)) {
		t->enclave = GHOST_ENCLAVE_NONE;
		__sync_fetch_and_add(&nr_fallback_tasks, 1);
		return;
	}
	t->sw = sw_alloc(p->scx.tid);
	if (t->sw == GHOST_SW_NONE) {
		t->enclave = GHOST_ENCLAVE_NONE; /* no status word: FIFO, counted */
		return;
	}
	t->queue = ew->default_queue;
	/* seq goes on from an earlier life in the class (a thread that left and
	 * came back): its agents tell that life's messages, read late from
	 * another queue (its DEPARTED among them), from this life's, which start
	 * at this TASK_NEW (fifo_task.h). */
	t->last_queue = t->queue;
	t->last_pos = 0;
	t->last_gen = 0;
	t->enabled = 1;
	t->pin_cpu = -1; /* a new life: nothing the class decided in an earlier one holds */
	t->renew_slice_ns = 0;
	t->cpu = scx_bpf_task_cpu(p);
	t->weight = p->scx.weight;
	for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++)
		t->cpus[i] = cpumask_word(p->cpus_ptr, i);
	/* Runnable now (a queued thread changing class): no WAKEUP follows. */
	t->state = p->on_rq ? GT_QUEUED : GT_BLOCKED;
	__sync_fetch_and_add(&nr_enabled, 1);
	/* Findable by tid before the agent can read TASK_NEW (tasks.bpf.h). */
	tid_index_add(p);
	send_task_new(p, t, p->on_rq != 0);
	/* TASK_NEW has no room for the mask: a thread that may not run on
	 * every CPU says so at once, or its agent learns it one refused
	 * commit at a time. */
	if (p->nr_cpus_allowed < nr_cpus)
		send_task_affinity(p, t, p->cpus_ptr);
	/* A thread that enters the class while running must not keep its CPU
	 * until a slice ends: it goes to its agent at once, as in ghOSt. */
	if (p->on_rq) {
		scx_bpf_task_set_slice(p, 0);
		scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_PREEMPT);
	}
}

void GHOST_OPS(ghost_disable, struct task_struct *p)
{
	struct ghost_task *t = task_get(p);

	if (!task_in_enclave(t))
		return;
	task_gone(p, t, (p->flags & PF_EXITING) ? GHOST_MSG_TASK_DEAD : GHOST_MSG_TASK_DEPARTED);
}

s32 GHOST_OPS_SLEEPABLE(ghost_init)
{
	struct ghost_class_info *ci = class_info_get();
	const struct cpumask *online;

	nr_cpus = scx_bpf_nr_cpu_ids();
	if (nr_cpus > GHOST_MAX_CPUS)
		nr_cpus = GHOST_MAX_CPUS;
	online = scx_bpf_get_online_cpumask();
	for (__u32 c = 0; c < GHOST_MAX_CPUS && c < nr_cpus; c++)
		cpu_is_online[c] = bpf_cpumask_test_cpu(c, online);
	scx_bpf_put_cpumask(online);
	if (ci) {
		ci->abi_version = GHOST_ABI_VERSION;
		ci->nr_cpus = nr_cpus;
		ci->kernel_timeout_ms = kernel_timeout_ms;
		ci->max_watchdog_ms = max_watchdog_ms();
		ci->nr_nodes = ring_nodes();
		for (__u32 c = 0; c < GHOST_MAX_CPUS; c++)
			ci->cpu_node[c] = node_of_cpu(c);
	}
	return fallback_init();
}

void GHOST_OPS(ghost_exit, struct scx_exit_info *ei)
{
	/* The dump first: the loader reads it once `kind` is set. */
	if (ei->dump)
		bpf_probe_read_kernel_str(exit_dump, sizeof(exit_dump), ei->dump);
	GHOST_RECORD_EXIT(&exit_record, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops ghost_ops = {
	.select_cpu = (void *)ghost_select_cpu,
	.enqueue = (void *)ghost_enqueue,
	.dequeue = (void *)ghost_dequeue,
	.dispatch = (void *)ghost_dispatch,
	.tick = (void *)ghost_tick,
	.running = (void *)ghost_running,
	.stopping = (void *)ghost_stopping,
	.quiescent = (void *)ghost_quiescent,
	.yield = (void *)ghost_yield,
	.set_weight = (void *)ghost_set_weight,
	.set_cpumask = (void *)ghost_set_cpumask,
	.update_idle = (void *)ghost_update_idle,
	.cpu_acquire = (void *)ghost_cpu_acquire,
	.cpu_release = (void *)ghost_cpu_release,
	.cpu_online = (void *)ghost_cpu_online,
	.cpu_offline = (void *)ghost_cpu_offline,
	.init_task = (void *)ghost_init_task,
	.enable = (void *)ghost_enable,
	.disable = (void *)ghost_disable,
	.init = (void *)ghost_init,
	.exit = (void *)ghost_exit,
	.dump = (void *)ghost_dump_class,
	.dump_cpu = (void *)ghost_dump_cpu,
	.dump_task = (void *)ghost_dump_task,
	.exit_dump_len = GHOST_EXIT_DUMP_LEN,
	/* SWITCH_PARTIAL: only SCHED_EXT threads; ENQ_LAST: a slice that ends
	 * goes back through enqueue (PREEMPT) even with nothing else to run;
	 * KEEP_BUILTIN_IDLE: update_idle must not turn off idle tracking. */
	.flags = SCX_OPS_SWITCH_PARTIAL | SCX_OPS_ENQ_LAST | SCX_OPS_KEEP_BUILTIN_IDLE |
		 SCX_OPS_TID_TO_TASK,
	/* Last resort only: enclave watchdogs hand threads to the FIFO first. */
	.timeout_ms = 30000,
	.name = "ghost",
};
