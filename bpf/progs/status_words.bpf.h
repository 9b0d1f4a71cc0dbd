/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Status words: one per thread in an mmapped array that agents read without a
 * syscall. Only BPF writes them, always from a callback about that thread (so
 * under its rq lock, one writer at a time), seqlock-style: `lock` is odd while
 * the fields change.
 *
 * Words are allocated round-robin from a cursor so that a freed word is reused
 * as late as possible (an agent may still be reading the DEAD thread's word).
 */
#ifndef GHOST_SCX_BPF_STATUS_WORDS_H
#define GHOST_SCX_BPF_STATUS_WORDS_H

#include "ghost_common.bpf.h"

#define GHOST_SW_NONE 0xffffffffU

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, GHOST_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct ghost_status_word);
} status_words SEC(".maps");

/* Owner tid of each word (0: free); claimed with a compare-and-swap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GHOST_MAX_THREADS);
	__type(key, __u32);
	__type(value, __u64);
} sw_owner SEC(".maps");

__u64 sw_cursor;
__u64 sw_alloc_failures;

struct sw_alloc_ctx {
	__u64 tid;
	__u32 start;
	__u32 found;
};

static long sw_alloc_one(__u64 i, void *data)
{
	struct sw_alloc_ctx *ctx = data;
	__u32 idx = (ctx->start + (__u32)i) % GHOST_MAX_THREADS;
	__u64 *owner = bpf_map_lookup_elem(&sw_owner, &idx);

	if (owner && __sync_val_compare_and_swap(owner, 0, ctx->tid) == 0) {
		ctx->found = idx;
		return 1;
	}
	return 0;
}

static __always_inline __u32 sw_alloc(__u64 tid)
{
	struct sw_alloc_ctx ctx = {
		.tid = tid,
		.start = (__u32)__sync_fetch_and_add(&sw_cursor, 1),
		.found = GHOST_SW_NONE,
	};

	bpf_loop(GHOST_MAX_THREADS, sw_alloc_one, &ctx, 0);
	if (ctx.found == GHOST_SW_NONE)
		__sync_fetch_and_add(&sw_alloc_failures, 1);
	return ctx.found;
}

static __always_inline void sw_free(__u32 idx, __u64 tid)
{
	__u64 *owner = bpf_map_lookup_elem(&sw_owner, &idx);

	if (owner)
		__sync_val_compare_and_swap(owner, tid, 0);
}

static __always_inline struct ghost_status_word *sw_get(__u32 idx)
{
	if (idx >= GHOST_MAX_THREADS)
		return NULL;
	return bpf_map_lookup_elem(&status_words, &idx);
}

/* What a status word says about a thread; written as one seqlocked update. */
struct sw_fields {
	__u64 tid;
	__u64 seqnum;
	__u64 runtime_ns;
	__u32 flags;
	__u32 cpu;
	__u32 enclave;
	__u32 queue;
	__u32 pid;
};

static __always_inline void sw_publish(__u32 idx, const struct sw_fields *f, __u64 now)
{
	struct ghost_status_word *sw = sw_get(idx);

	if (!sw)
		return;
	__sync_fetch_and_add(&sw->lock, 1); /* odd: readers retry */
	sw->tid = f->tid;
	sw->seqnum = f->seqnum;
	RACE_WINDOW();
	sw->runtime_ns = f->runtime_ns;
	if ((sw->flags ^ f->flags) & GHOST_SW_ON_CPU)
		sw->switch_time_ns = now;
	sw->flags = f->flags;
	sw->cpu = f->cpu;
	sw->enclave = f->enclave;
	sw->queue = f->queue;
	sw->pid = f->pid;
	__sync_fetch_and_add(&sw->lock, 1); /* even: consistent */
}

#endif /* GHOST_SCX_BPF_STATUS_WORDS_H */
