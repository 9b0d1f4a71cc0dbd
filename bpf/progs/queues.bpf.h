/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Queues: ghOSt's kernel->agent message queues, one BPF ring buffer each.
 *
 * Userspace creates a queue at run time: it makes a RINGBUF map, stores it in
 * slot `q` of the `queues` array-of-maps and marks queue word `q` in use. BPF
 * produces fixed-size ghost_msg records into it and bumps the queue word's
 * `barrier` (ghOSt's agent barrier) AFTER each record is visible, so an agent
 * that read the barrier before draining can never commit on a message it did
 * not see. A full ring counts `dropped` in the queue word and in class_info:
 * overflow is reported, never silent. Readers are woken only if the queue asks
 * for it (GHOST_QUEUE_WAKE_AGENT); polling agents pay nothing for wake-ups.
 */
#ifndef GHOST_SCX_BPF_QUEUES_H
#define GHOST_SCX_BPF_QUEUES_H

#include "ghost_common.bpf.h"
#include "class_info.bpf.h"

struct queue_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* template; each queue sets its own size */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, GHOST_MAX_QUEUES);
	__type(key, __u32);
	__array(values, struct queue_ring);
} queues SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct ghost_queue_word);
} queue_words SEC(".maps");

static __always_inline struct ghost_queue_word *queue_word(__u32 q)
{
	if (q >= GHOST_MAX_QUEUES)
		return NULL;
	return bpf_map_lookup_elem(&queue_words, &q);
}

/* Queue `q`'s word if the queue is in use and belongs to `enclave`, else NULL:
 * an agent's queue numbers are trusted only this far. */
static __always_inline struct ghost_queue_word *enclave_queue_word(__u32 q, __u32 enclave)
{
	struct ghost_queue_word *qw = queue_word(q);

	if (!qw || !(READ_ONCE_U32(&qw->flags) & GHOST_QUEUE_INUSE) ||
	    READ_ONCE_U32(&qw->enclave) != enclave)
		return NULL;
	return qw;
}

static __always_inline void *queue_ring(__u32 q)
{
	if (q >= GHOST_MAX_QUEUES)
		return NULL;
	return bpf_map_lookup_elem(&queues, &q);
}

/* A message could not be delivered to `q` (ring full, or no such queue). */
static __always_inline void queue_count_drop(__u32 q)
{
	struct ghost_queue_word *qw = queue_word(q);

	if (qw)
		__sync_fetch_and_add(&qw->dropped, 1);
	CLASS_COUNT(msgs_dropped);
}

/*
 * Produce `msg` into queue `q` (`no_wake`: never wake its reader). Returns the ring's producer position after the
 * record (an upper bound of this record's end, used by ASSOCIATE_QUEUE), or 0
 * if it was dropped; `*gen` is the ring's generation (see queue_holds).
 */
static __always_inline __u64 queue_produce(__u32 q, const struct ghost_msg *msg, __u32 *gen,
					   bool no_wake)
{
	struct ghost_queue_word *qw = queue_word(q);
	void *ring = queue_ring(q);
	__u64 wake;
	__u64 pos;

	if (!qw || !ring || !(qw->flags & GHOST_QUEUE_INUSE)) {
		queue_count_drop(q);
		return 0;
	}
	*gen = READ_ONCE_U32(&qw->generation);
	/* A deferrable wake-up (the class pushed the thread into a fast-path
	 * ring itself: nothing for the agent to place) does not wake a sleeping
	 * agent; it reads it at its next wake-up or timeout. */
	wake = (qw->flags & GHOST_QUEUE_WAKE_AGENT) && !no_wake &&
		       !(msg->type == GHOST_MSG_TASK_WAKEUP && msg->wakeup.deferrable)
		   ? BPF_RB_FORCE_WAKEUP
		   : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(ring, (void *)msg, sizeof(*msg), wake)) {
		queue_count_drop(q);
		return 0;
	}
	pos = bpf_ringbuf_query(ring, BPF_RB_PROD_POS);
	__sync_fetch_and_add(&qw->barrier, 1);
	return pos ? pos : 1;
}

/* True while `q` still holds bytes up to producer position `pos`. */
static __always_inline bool queue_holds(__u32 q, __u64 pos, __u32 gen)
{
	struct ghost_queue_word *qw = queue_word(q);
	void *ring = queue_ring(q);

	/* A slot given a new ring since (another generation): the ring that
	 * held the message is gone, and `pos` means nothing in this one. */
	if (!ring || !qw || pos == 0 || READ_ONCE_U32(&qw->generation) != gen)
		return false;
	return bpf_ringbuf_query(ring, BPF_RB_CONS_POS) < pos;
}

#endif /* GHOST_SCX_BPF_QUEUES_H */
