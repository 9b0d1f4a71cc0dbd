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
 * `runs` so the test can prove no push ran twice.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ring.bpf.h"

char _license[] SEC("license") = "GPL";

#define RING_CHECK_THREADS 65536

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

/* Context of ring_consume and ring_push. */
struct ring_check_args {
	__u32 node;
	__u32 cpu;
	__u32 max;        /* entries to claim (consume) or push (push) this call */
	__u32 pad;
	__u64 tid;        /* push: the thread */
	__u64 seqnum;     /* push: its seqnum */
	__u64 ran;        /* out (consume): claims tried (bpf_loop's count) */
	__u64 stale;      /* unused */
	__u64 pushed;     /* out */
	__u64 full;       /* out */
	__u64 errors;     /* out: protocol calls that failed (must stay 0) */
};

#define RING_CHECK_BATCH 64

/* Totals over all calls (the verifier would walk every bpf_loop iteration
 * apart if the callback counted into its stack context). */
__u64 nr_ran, nr_stale, nr_errors;

struct consume_ctx {
	struct ghost_ring *r;
	__u32 cpu;
};

/* One dispatch's worth: claim one entry, validate it, run it or drop it.
 * (bpf_loop keeps the verifier to one pass over the claim's scan.) */
static long consume_one(__u64 i, struct consume_ctx *c)
{
	struct ghost_ring_entry e;
	__u32 t;
	__u64 *seq, *nr;
	__u32 reason = GHOST_RING_STALE_NONE;

	if (ghost_ring_claim(c->r, c->cpu, &e) != 1)
		return 1; /* nothing READY: stop */
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

/* Idle CPUs' dispatch, reduced to the ring: up to `max` entries. */
SEC("syscall")
int ring_consume(struct ring_check_args *a)
{
	__u32 node = a->node;
	struct consume_ctx c = {};
	__u32 max = a->max;

	c.r = bpf_map_lookup_elem(&rings, &node);
	if (!c.r)
		return -1;
	c.cpu = a->cpu;
	a->ran = bpf_loop(max < RING_CHECK_BATCH ? max : RING_CHECK_BATCH, consume_one, &c, 0);
	return 0;
}

/* A BPF producer (what ops.enqueue will do at wake-up). */
SEC("syscall")
int ring_push(struct ring_check_args *a)
{
	__u32 node = a->node, max = a->max;
	__u64 tid = a->tid, seqnum = a->seqnum;
	struct ghost_ring *r = bpf_map_lookup_elem(&rings, &node);
	__u64 pos, pushed = 0, full = 0, errors = 0;
	int i;

	if (!r)
		return -1;
	for (i = 0; i < RING_CHECK_BATCH && i < max; i++) {
		int ret = ghost_ring_push(r, tid, seqnum, bpf_ktime_get_ns(), 0, &pos);

		if (ret == GHOST_RING_PUSH_OK)
			pushed++;
		else if (ret == GHOST_RING_PUSH_FULL)
			full++;
		else
			errors++;
	}
	a->pushed = pushed;
	a->full = full;
	a->errors = errors;
	return 0;
}
