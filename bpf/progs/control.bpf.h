/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The `ghost_ctl` syscall program: agent requests about one thread or CPU
 * (ASSOCIATE_QUEUE, the ON_CPU request, CPU timers). Nothing here trusts its
 * arguments: unknown threads, queues of other enclaves and CPUs out of range
 * are refused with an errno.
 */
#ifndef GHOST_SCX_BPF_CONTROL_H
#define GHOST_SCX_BPF_CONTROL_H

#include "ghost_common.bpf.h"
#include "messages.bpf.h"

struct ghost_cpu_timer {
	struct bpf_timer timer;
	__u64 cookie;
	__u32 cpu;
	__u32 armed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GHOST_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct ghost_cpu_timer);
} cpu_timers SEC(".maps");

static int cpu_timer_fire(void *map, int *key, struct ghost_cpu_timer *ct)
{
	if (ct->armed) {
		ct->armed = 0;
		send_cpu_msg(ct->cpu, GHOST_MSG_CPU_TIMER_EXPIRED, 0, 0, ct->cookie);
	}
	return 0;
}

/* Moves `t` to queue `q` unless a message of its is unread (or in flight)
 * in the queue that got its last one: the handshake in messages.bpf.h. */
static __always_inline int queue_switch(struct ghost_task *t, __u32 q)
{
	__u32 sw = t->sw & (GHOST_MAX_THREADS - 1), old = t->queue;
	int ret = -EBUSY;

	if (__atomic_exchange_n(&queue_switching[sw], 1, __ATOMIC_SEQ_CST))
		return -EBUSY; /* another agent is moving it right now */
	if (!handshake_wait(sw, false) ||
	    (t->last_queue != q && queue_holds(t->last_queue, t->last_pos, t->last_gen)))
		goto out;
	__atomic_exchange_n(&t->queue, q, __ATOMIC_SEQ_CST);
	/* A producer that stopped waiting for us may have read `old`. */
	if (!handshake_wait(sw, false) ||
	    (t->last_queue == old && queue_holds(old, t->last_pos, t->last_gen))) {
		__atomic_exchange_n(&t->queue, old, __ATOMIC_SEQ_CST);
		goto out;
	}
	ret = 0;
out:
	__atomic_exchange_n(&queue_switching[sw], 0, __ATOMIC_SEQ_CST);
	return ret;
}

static __always_inline int ctl_associate(struct task_struct *p, struct ghost_task *t, __u32 q)
{
	if (!enclave_queue_word(q, t->enclave) || !queue_ring(q))
		return -EINVAL;
	if (q == t->queue)
		return 0;
	return queue_switch(t, q);
}

static __always_inline int ctl_arm_timer(struct ghost_ctl_args *args)
{
	__u32 cpu = args->cpu;
	struct ghost_cpu_timer *ct;

	if (cpu >= GHOST_MAX_CPUS || cpu >= nr_cpus || cpu_enclave(cpu) == GHOST_ENCLAVE_NONE)
		return -EINVAL;
	ct = bpf_map_lookup_elem(&cpu_timers, &cpu);
	if (!ct)
		return -EINVAL;
	/* -EBUSY from init just means it was initialised before. */
	bpf_timer_init(&ct->timer, &cpu_timers, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&ct->timer, cpu_timer_fire);
	ct->cookie = args->cookie;
	ct->cpu = cpu;
	ct->armed = 1;
	return bpf_timer_start(&ct->timer, args->arg, 0);
}

SEC("syscall")
int ghost_ctl(struct ghost_ctl_args *args)
{
	struct task_struct *p;
	struct ghost_task *t;
	int ret = 0;

	if (args->op == GHOST_CTL_ARM_TIMER) {
		args->ret = ctl_arm_timer(args);
		return 0;
	}
	if (args->op != GHOST_CTL_ASSOCIATE_QUEUE && args->op != GHOST_CTL_SET_WANT_ON_CPU) {
		args->ret = -EINVAL;
		return 0;
	}
	bpf_rcu_read_lock();
	p = task_from_tid(args->tid);
	t = p ? task_get(p) : NULL;
	if (!p || !t || !task_in_enclave(t))
		ret = -ENOENT;
	else if (args->op == GHOST_CTL_ASSOCIATE_QUEUE)
		ret = ctl_associate(p, t, args->queue);
	else
		t->want_on_cpu = !!args->arg;
	bpf_rcu_read_unlock();
	args->ret = ret;
	return 0;
}

#endif /* GHOST_SCX_BPF_CONTROL_H */
