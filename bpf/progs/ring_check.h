/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The context of ring_check.bpf.c's SEC("syscall") programs, shared with the
 * tests and benchmarks that run them (tests/unit/ring_bpf_test.cc,
 * tests/bench/ring_bench.cc). BPF includes it after vmlinux.h, C++ after
 * <linux/types.h>. BPF_PROG_TEST_RUN copies the context back to the caller,
 * so the "out" fields are read there.
 */
#ifndef GHOST_SCX_BPF_RING_CHECK_H
#define GHOST_SCX_BPF_RING_CHECK_H

/* Most entries one call claims (ring_consume*) or tries to push (ring_push). */
#define RING_CHECK_BATCH 64
#define RING_CHECK_CONSUME_MAX 256

/* flags of ring_push */
#define RING_CHECK_PUSH_DISTINCT 1U   /* push tid, tid + 1, ...: one thread per entry */
#define RING_CHECK_PUSH_STOP_FULL 2U  /* stop at the first push that is not OK */

struct ring_check_args {
	__u32 node;
	__u32 cpu;
	__u32 max;        /* entries to claim (consume) or push attempts (push) this call */
	__u32 flags;      /* RING_CHECK_PUSH_* */
	__u64 tid;        /* push: the (first) thread */
	__u64 seqnum;     /* push: its seqnum */
	__u64 ran;        /* out (consume): bpf_loop's count (claims tried) */
	__u64 claimed;    /* out (consume): entries claimed this call (ran or dropped) */
	__u64 pushed;     /* out (push) */
	__u64 full;       /* out (push): FULL results */
	__u64 contended;  /* out (push): CONTENDED results (other producers kept winning) */
	__u64 skipped;    /* out (push): SKIPPED results (consumers passed a stalled push) */
	__u64 errors;     /* out (push): anything else (a bad ring; must stay 0) */
};

/* ring_consume_class's thread record: what the class's consumer reads of a
 * thread (struct ghost_task) to validate an entry, in a hash by tid as the
 * class's tid_index is. */
#define RING_CHECK_HELD 1 /* state: parked, waiting for a placement */
struct ring_check_thread {
	__u64 seq;       /* its seqnum now */
	__u64 runs;      /* out: how often a consumer ran it */
	__s32 ring_cpu;  /* a consumer took it (-1: nobody) */
	__u32 state;     /* RING_CHECK_HELD, or anything else: not parked */
	__u32 enclave;   /* must be 0 */
	__u32 pad;
};

#endif /* GHOST_SCX_BPF_RING_CHECK_H */
