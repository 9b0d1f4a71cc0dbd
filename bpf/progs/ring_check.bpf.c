/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ring protocol (kernel/ghost_ring_ops.h) compiled for BPF and run by the
 * real verifier and JIT through BPF_PROG_TEST_RUN of SEC("syscall") programs,
 * against rings that userspace maps and fills at the same time. Not part of the
 * class: its own object and skeleton (skel/ring_check.skel.h).
 *
 * A "thread" here is an index into `thread_seq`, the seqnum userspace says it
 * has now: a consumer drops an entry whose pushed seqnum differs (what
 * ops.dispatch will do with the real thread's seqnum), and counts every run in
 * `runs` so the test can prove no push ran twice. ring_consume_class validates
 * as the class does instead (a thread record in a hash by tid), for the cost
 * per entry (tests/bench/ring_bench.cc). The context is ring_check.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ring.bpf.h"
#include "ring_check.h"

char _license[] SEC("license") = "GPL";

/* Threads (tids) the array programs know: enough for a test that gives each of
 * a million entries its own thread. */
#define RING_CHECK_THREADS (1 << 21)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_RING_MAX_NODES);
	__type(key, __u32);
	__type(value, struct ghost_ring);
} rings SEC(".maps");

/* Per thread: its current seqnum (written by userspace) and how often a
 * consumer ran it (written here). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, RING_CHECK_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} thread_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, RING_CHECK_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

/* ring_consume_class's threads, by tid (userspace fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ring_check_thread);
} threads SEC(".maps");

/* Totals over all calls (the verifier would walk every bpf_loop iteration
 * apart if the callback counted into its stack context). */
__u64 nr_ran, nr_stale, nr_errors, nr_pushed, nr_push_full;

struct consume_ctx {
	struct ghost_ring *r;
	__u32 cpu;
	__u32 empty; /* the last iteration found nothing READY */
	__u64 now;   /* the call's clock: consumers pass a gap older than GHOST_RING_GAP_NS */
};

/* One dispatch's worth: claim one entry, validate it, run it or drop it.
 * (bpf_loop keeps the verifier to one pass over the claim's scan.) */
static long consume_one(__u64 i, struct consume_ctx *c)
{
	struct ghost_ring_entry e;
	__u32 t;
	__u64 *seq, *nr;
	__u32 reason = GHOST_RING_STALE_NONE;

	if (ghost_ring_claim(c->r, c->cpu, c->now, &e) != 1) {
		c->empty = 1;
		return 1; /* nothing READY: stop */
	}
	t = (__u32)e.tid;
	seq = bpf_map_lookup_elem(&thread_seq, &t);
	nr = bpf_map_lookup_elem(&runs, &t);
	if (!seq || !nr || e.tid >= RING_CHECK_THREADS)
		reason = GHOST_RING_STALE_GONE;
	else if (*(volatile __u64 *)seq != e.seqnum)
		reason = GHOST_RING_STALE_SEQNUM;
	if (reason != GHOST_RING_STALE_NONE) {
		__sync_fetch_and_add(ghost_ring_fail(c->r, e.pos, reason) ? &nr_errors : &nr_stale, 1);
		return 0;
	}
	__sync_fetch_and_add(nr, 1);
	__sync_fetch_and_add(ghost_ring_complete(c->r, e.pos) ? &nr_errors : &nr_ran, 1);
	return 0;
}

/* The same, validating as the class's consumer does (ring_run in
 * fast_path.bpf.h) minus what needs a real task (the DSQ move, the CPU and
 * affinity checks): the thread by tid in a hash, its enclave, its seqnum,
 * parked and not taken, then taken with a CAS. Running it is counting it and
 * letting it go again. */
static long consume_one_class(__u64 i, struct consume_ctx *c)
{
	struct ghost_ring_entry e;
	struct ring_check_thread *t;
	__u32 reason = GHOST_RING_STALE_NONE;
	__u64 tid;

	if (ghost_ring_claim(c->r, c->cpu, c->now, &e) != 1) {
		c->empty = 1;
		return 1;
	}
	tid = e.tid;
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		reason = GHOST_RING_STALE_GONE;
	else if (t->enclave != 0)
		reason = GHOST_RING_STALE_ENCLAVE;
	else if (*(volatile __u64 *)&t->seq != e.seqnum)
		reason = GHOST_RING_STALE_SEQNUM;
	else if (t->state != RING_CHECK_HELD || *(volatile __s32 *)&t->ring_cpu >= 0)
		reason = GHOST_RING_STALE_NOT_PARKED;
	else if (__sync_val_compare_and_swap(&t->ring_cpu, -1, (__s32)c->cpu) != -1)
		reason = GHOST_RING_STALE_NOT_PARKED;
	if (reason != GHOST_RING_STALE_NONE) {
		__sync_fetch_and_add(ghost_ring_fail(c->r, e.pos, reason) ? &nr_errors : &nr_stale, 1);
		return 0;
	}
	__sync_fetch_and_add(&t->runs, 1);
	__sync_val_compare_and_swap(&t->ring_cpu, (__s32)c->cpu, -1);
	__sync_fetch_and_add(ghost_ring_complete(c->r, e.pos) ? &nr_errors : &nr_ran, 1);
	return 0;
}

static __always_inline int consume(struct ring_check_args *a, bool class_like)
{
	__u32 node = a->node;
	struct consume_ctx c = {};
	__u32 max = a->max;
	long n;

	c.r = bpf_map_lookup_elem(&rings, &node);
	if (!c.r)
		return -1;
	c.cpu = a->cpu;
	c.now = bpf_ktime_get_ns();
	if (max > RING_CHECK_CONSUME_MAX)
		max = RING_CHECK_CONSUME_MAX;
	if (class_like)
		n = bpf_loop(max, consume_one_class, &c, 0);
	else
		n = bpf_loop(max, consume_one, &c, 0);
	if (n < 0)
		return -1;
	a->ran = n;
	a->claimed = n - (c.empty ? 1 : 0);
	return 0;
}

/* Idle CPUs' dispatch, reduced to the ring: up to `max` entries, validated
 * against thread_seq (an array by tid). */
SEC("syscall")
int ring_consume(struct ring_check_args *a)
{
	return consume(a, false);
}

/* The same, validated against `threads` as the class validates. */
SEC("syscall")
int ring_consume_class(struct ring_check_args *a)
{
	return consume(a, true);
}

/* A BPF producer (what ops.enqueue does at wake-up). */
SEC("syscall")
int ring_push(struct ring_check_args *a)
{
	__u32 node = a->node, max = a->max, flags = a->flags;
	__u64 tid = a->tid, seqnum = a->seqnum;
	struct ghost_ring *r = bpf_map_lookup_elem(&rings, &node);
	__u64 pos, pushed = 0, full = 0, contended = 0, skipped = 0, errors = 0;
	int i;

	if (!r)
		return -1;
	for (i = 0; i < RING_CHECK_BATCH && i < max; i++) {
		int ret = ghost_ring_push(r, tid, seqnum, bpf_ktime_get_ns(), 0, &pos);

		if (ret == GHOST_RING_PUSH_OK) {
			pushed++;
			if (flags & RING_CHECK_PUSH_DISTINCT)
				tid++;
			continue;
		}
		if (ret == GHOST_RING_PUSH_FULL)
			full++;
		else if (ret == GHOST_RING_PUSH_CONTENDED)
			contended++;
		else if (ret == GHOST_RING_PUSH_SKIPPED)
			skipped++;
		else
			errors++;
		if (flags & RING_CHECK_PUSH_STOP_FULL)
			break;
	}
	a->pushed = pushed;
	a->full = full;
	a->contended = contended;
	a->skipped = skipped;
	a->errors = errors;
	__sync_fetch_and_add(&nr_pushed, pushed);
	__sync_fetch_and_add(&nr_push_full, full);
	return 0;
}
