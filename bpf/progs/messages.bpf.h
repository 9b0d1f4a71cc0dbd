/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Messages: ghOSt's kernel->agent events.
 *
 * A task message bumps the thread's seqnum, goes to the thread's queue, then
 * the status word is republished with the same seqnum: an agent that saw
 * message N and commits with seqnum N is current, and any later event makes
 * its commit TARGET_STALE. Every message about a thread goes to that thread's
 * queue from a callback holding its rq lock, so one ring keeps one thread's
 * messages in order.
 *
 * CPU messages carry a per-CPU sequence number and go to the queue that names
 * the CPU as its wake_cpu (a per-CPU agent's queue), else to the CPU's
 * enclave's default queue.
 */
#ifndef GHOST_SCX_BPF_MESSAGES_H
#define GHOST_SCX_BPF_MESSAGES_H

#include "ghost_common.bpf.h"
#include "enclaves.bpf.h"
#include "queues.bpf.h"
#include "status_words.bpf.h"
#include "tasks.bpf.h"

__u64 cpu_msg_seq[GHOST_MAX_CPUS];

static __always_inline __u32 task_sw_flags(const struct ghost_task *t, bool dead)
{
	__u32 flags = GHOST_SW_INUSE;

	if (dead)
		return flags | GHOST_SW_DEAD;
	if (t->state != GT_BLOCKED)
		flags |= GHOST_SW_RUNNABLE;
	if (t->state == GT_ON_CPU)
		flags |= GHOST_SW_ON_CPU;
	if (t->want_on_cpu)
		flags |= GHOST_SW_WANT_ON_CPU;
	if (task_class_held(t))
		flags |= GHOST_SW_CLASS_HELD;
	return flags;
}

/* Republish the status word from the task's current state. */
static __always_inline void task_publish(struct task_struct *p, struct ghost_task *t, bool dead)
{
	struct sw_fields f = {
		.tid = p->scx.tid,
		.seqnum = t->seq,
		.runtime_ns = p->se.sum_exec_runtime,
		.flags = task_sw_flags(t, dead),
		.cpu = (__u32)t->cpu,
		.enclave = t->enclave,
		.queue = t->queue,
		.pid = (__u32)p->pid,
	};

	if (t->sw != GHOST_SW_NONE)
		sw_publish(t->sw, &f, bpf_ktime_get_ns());
}

/* Header of a task message; bumps the thread seqnum. */
static __always_inline void task_msg_init(struct task_struct *p, struct ghost_task *t,
					  struct ghost_msg *m, __u16 type)
{
	__builtin_memset(m, 0, sizeof(*m));
	m->type = type;
	m->size = sizeof(*m);
	m->cpu = bpf_get_smp_processor_id();
	m->tid = p->scx.tid;
	m->seqnum = ++t->seq;
	m->time_ns = bpf_ktime_get_ns();
}

/*
 * The queue handshake. ASSOCIATE_QUEUE (control.bpf.h) must see every
 * message of the thread that went to its old queue; ghOSt gets that from the
 * thread's rq lock, which a syscall program cannot take. Instead, per status
 * word: a producer raises `msg_producing` and then reads `queue_switching`; an
 * associate raises `queue_switching` and then reads `msg_producing` (both with
 * full-barrier exchanges), so at least one of them sees the other. A producer
 * that sees a switch waits for it (bounded: it holds an rq lock) before it
 * reads the thread's queue; an associate waits for producers in flight, and
 * checks again after the switch, so a producer that gave up waiting and wrote
 * to the old queue makes the associate undo it and fail (-EBUSY: retry).
 */
#define QUEUE_HANDSHAKE_SPINS 4096
__u32 msg_producing[GHOST_MAX_THREADS];
__u32 queue_switching[GHOST_MAX_THREADS];

struct handshake_wait {
	__u32 sw;
	__u32 on_switching; /* wait for queue_switching (else msg_producing) to clear */
};

static long handshake_spin(__u64 i, void *data)
{
	struct handshake_wait *w = data;
	__u32 sw = w->sw & (GHOST_MAX_THREADS - 1);
	__u32 v = w->on_switching ? READ_ONCE_U32(&queue_switching[sw])
				  : READ_ONCE_U32(&msg_producing[sw]);

	return v ? 0 : 1;
}

/* Waits (bounded) for the flag to clear; true if it did. */
static __always_inline bool handshake_wait(__u32 sw, bool on_switching)
{
	struct handshake_wait w = { .sw = sw, .on_switching = on_switching };

	bpf_loop(QUEUE_HANDSHAKE_SPINS, handshake_spin, &w, 0);
	sw &= GHOST_MAX_THREADS - 1;
	return !(on_switching ? READ_ONCE_U32(&queue_switching[sw])
			      : READ_ONCE_U32(&msg_producing[sw]));
}

/* The enclave's default queue if it is one of the enclave's own queues: an
 * agent writes its enclave word, and may write any number there. */
static __always_inline __u32 enclave_default_queue(__u32 enclave)
{
	struct ghost_enclave_word *ew = enclave_word(enclave);
	__u32 q = ew ? READ_ONCE_U32(&ew->default_queue) : GHOST_QUEUE_NONE;

	return enclave_queue_word(q, enclave) ? q : GHOST_QUEUE_NONE;
}

/* The queue a message about `t` goes to: its own, unless that queue was
 * destroyed or its slot now belongs to another enclave's queue; then its
 * enclave's default queue; none (dropped, counted) if that is not the
 * enclave's either. A message never crosses enclaves. */
static __always_inline __u32 task_msg_queue(struct ghost_task *t)
{
	__u32 q = READ_ONCE_U32(&t->queue);

	if (enclave_queue_word(q, t->enclave))
		return q;
	return enclave_default_queue(t->enclave);
}

static __always_inline void task_msg_send(struct task_struct *p, struct ghost_task *t,
					  struct ghost_msg *m, bool dead)
{
	__u32 sw = t->sw & (GHOST_MAX_THREADS - 1), q, gen = 0;
	bool held = !dead && task_class_held(t);
	__u64 pos;

	/* The word first: an agent that reads the message must find the
	 * word at (at least) its seqnum. */
	task_publish(p, t, dead);
	RACE_WINDOW();
	__atomic_exchange_n(&msg_producing[sw], 1, __ATOMIC_SEQ_CST);
	if (READ_ONCE_U32(&queue_switching[sw]))
		handshake_wait(sw, true);
	q = task_msg_queue(t);
	/* A thread the class queued itself (pinned.bpf.h): nothing for the
	 * agent to do now, so its message says so and does not wake it (its
	 * end does). */
	m->flags = held ? GHOST_MSG_F_CLASS_HELD : 0;
	pos = queue_produce(q, m, &gen, held);
	if (pos) {
		t->last_pos = pos;
		t->last_gen = gen;
		t->last_queue = q;
	}
	__atomic_exchange_n(&msg_producing[sw], 0, __ATOMIC_SEQ_CST);
}

static __always_inline void send_task_new(struct task_struct *p, struct ghost_task *t,
					  bool runnable)
{
	struct ghost_msg m;

	task_msg_init(p, t, &m, GHOST_MSG_TASK_NEW);
	m.task_new.pid = p->pid;
	m.task_new.tgid = p->tgid;
	m.task_new.sw_index = t->sw;
	m.task_new.nice = task_nice(p);
	m.task_new.weight = p->scx.weight;
	m.task_new.runnable = runnable;
	m.task_new.runtime_ns = p->se.sum_exec_runtime;
	task_msg_send(p, t, &m, false);
}

/* Built apart from its sending: the class may push the woken thread into a
 * fast-path ring in between (ghost_enqueue) and name the entry in it. */
static __always_inline void task_wakeup_msg(struct task_struct *p, struct ghost_task *t,
					    struct ghost_msg *m, __u32 waker_cpu)
{
	task_msg_init(p, t, m, GHOST_MSG_TASK_WAKEUP);
	m->wakeup.waker_cpu = waker_cpu;
	m->wakeup.wake_time_ns = m->time_ns;
}

/* BLOCKED, PREEMPT, YIELD, DEAD, DEPARTED. */
static __always_inline void send_task_off_cpu(struct task_struct *p, struct ghost_task *t,
					      __u16 type, __u32 from_cpu, bool was_current)
{
	struct ghost_msg m;
	bool dead = type == GHOST_MSG_TASK_DEAD || type == GHOST_MSG_TASK_DEPARTED;

	task_msg_init(p, t, &m, type);
	m.off_cpu.runtime_ns = p->se.sum_exec_runtime;
	m.off_cpu.from_cpu = from_cpu;
	m.off_cpu.was_current = was_current;
	task_msg_send(p, t, &m, dead);
}

static __always_inline void send_task_affinity(struct task_struct *p, struct ghost_task *t,
					       const struct cpumask *mask)
{
	struct ghost_msg m;

	task_msg_init(p, t, &m, GHOST_MSG_TASK_AFFINITY_CHANGED);
	for (int i = 0; i < GHOST_CPU_MASK_WORDS; i++)
		m.affinity.cpus[i] = cpumask_word(mask, i);
	task_msg_send(p, t, &m, false);
}

static __always_inline void send_task_priority(struct task_struct *p, struct ghost_task *t,
					       __u32 weight)
{
	struct ghost_msg m;

	task_msg_init(p, t, &m, GHOST_MSG_TASK_PRIORITY_CHANGED);
	m.priority.nice = task_nice(p);
	m.priority.weight = weight;
	task_msg_send(p, t, &m, false);
}

static __always_inline void send_task_on_cpu(struct task_struct *p, struct ghost_task *t,
					     __u32 cpu)
{
	struct ghost_msg m;

	task_msg_init(p, t, &m, GHOST_MSG_TASK_ON_CPU);
	m.on_cpu.cpu = cpu;
	m.on_cpu.commit_seq = t->txn_commit_seq;
	task_msg_send(p, t, &m, false);
}

struct cpu_queue_ctx {
	__u32 cpu;
	__u32 enclave;
	__u32 found;
};

static long cpu_queue_match(__u64 i, void *data)
{
	struct cpu_queue_ctx *ctx = data;
	struct ghost_queue_word *qw = enclave_queue_word((__u32)i, ctx->enclave);

	if (qw && qw->wake_cpu == ctx->cpu) {
		ctx->found = (__u32)i;
		return 1;
	}
	return 0;
}

/* The queue that gets CPU messages for `cpu` in `enclave`. */
static __always_inline __u32 cpu_msg_queue(__u32 cpu, __u32 enclave)
{
	struct cpu_queue_ctx ctx = { .cpu = cpu, .enclave = enclave, .found = GHOST_QUEUE_NONE };

	bpf_loop(GHOST_MAX_QUEUES, cpu_queue_match, &ctx, 0);
	if (ctx.found != GHOST_QUEUE_NONE)
		return ctx.found;
	return enclave_default_queue(enclave);
}

/* A CPU event; only CPUs of an enclave report. */
static __always_inline void send_cpu_msg(__u32 cpu, __u16 type, __u32 reason, __u64 next_tid,
					 __u64 cookie)
{
	__u32 enclave = cpu_enclave(cpu), gen;
	struct ghost_msg m;

	if (enclave == GHOST_ENCLAVE_NONE || cpu >= GHOST_MAX_CPUS)
		return;
	__builtin_memset(&m, 0, sizeof(m));
	m.type = type;
	m.size = sizeof(m);
	m.cpu = cpu;
	m.seqnum = __sync_add_and_fetch(&cpu_msg_seq[cpu], 1);
	m.time_ns = bpf_ktime_get_ns();
	m.cpu_event.reason = reason;
	m.cpu_event.next_tid = next_tid;
	m.cpu_event.cookie = cookie;
	queue_produce(cpu_msg_queue(cpu, enclave), &m, &gen, false);
}

#endif /* GHOST_SCX_BPF_MESSAGES_H */
