/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fast path's rings (issue 9): shared-memory layout. One bounded MPMC ring
 * per NUMA node, in memory the agent maps and BPF reads and writes. Producers
 * (the agent; the class at wake-up, GHOST_RING_F_WAKEUP) push {thread, its
 * seqnum}; consumers (an idle CPU's ops.dispatch) claim an entry, validate it
 * and run it or drop it as stale; the agent may revoke an entry nobody claimed yet, and reads every
 * entry's outcome before its slot is reused. The operations are in
 * kernel/ghost_ring_ops.h; docs/FAST_PATH.md has the design.
 *
 * Like ghost_abi.h: included by BPF C (after vmlinux.h) and by C++ (after
 * <linux/types.h>); only __u64-style types and plain structs. The layout is
 * versioned by GHOST_RING_LAYOUT_VERSION; the class's ring map (one ring per
 * enclave and node, bpf/progs/fast_path.bpf.h) is part of GHOST_ABI_VERSION.
 */
#ifndef GHOST_SCX_KERNEL_GHOST_RING_H
#define GHOST_SCX_KERNEL_GHOST_RING_H

#define GHOST_RING_LAYOUT_VERSION 3 /* 2: info.flags (stealing), STALE_BOUNCED;
                                     * 3: SKIPPED/ABANDONED, the consumer line's gap record */

#define GHOST_RING_MAX_SLOTS 4096 /* per ring; a power of two */
#define GHOST_RING_MAX_NODES 8    /* rings (NUMA nodes) */
#define GHOST_RING_CACHELINE 64

/*
 * Every push takes the next position (a 60-bit counter that never wraps in
 * practice); position `pos` lives in slot `pos & (size - 1)`. A slot's state
 * word is `pos << GHOST_RING_STATE_BITS | state`: carrying the position makes
 * every compare-and-swap specific to one push, so a CAS meant for an older lap
 * of the slot can never succeed on a newer one (no ABA).
 *
 *   EMPTY(pos)   free; the producer that takes position pos (CAS on head)
 *                fills it: the word stays EMPTY(pos) until it publishes
 *   READY(pos)   published: a consumer may claim it, the agent may revoke it
 *   CLAIMED(pos) a consumer won it (CAS from READY) and is validating it
 *   RAN(pos)     the consumer ran the thread                      } outcomes,
 *   STALE(pos)   the consumer dropped it as stale (`reason`)      } read by the
 *   REVOKED(pos) the agent won it (CAS from READY) before anyone  } reaper
 *   -> EMPTY(pos + size) once the reaper read the outcome, in position order.
 *
 * READY -> CLAIMED and READY -> REVOKED are CASes from the same word: exactly
 * one of a consumer and the agent wins.
 *
 * A producer stalled between taking a position and publishing it (preempted,
 * its vCPU descheduled, killed) would hold the consumer index at that
 * position. Consumers pass it once it has been the oldest unpublished one for
 * GHOST_RING_GAP_NS:
 *
 *   SKIPPED(pos)   a consumer CASed EMPTY(pos) (taken, unpublished) to it:
 *                  consumers look past it; its producer may still be
 *                  writing the fields
 *   ABANDONED(pos) its producer's publish (CAS EMPTY -> READY) met SKIPPED:
 *                  it reported that it did not push and marked the slot
 *                  done; the reaper frees it like an outcome
 *
 * A consumer's EMPTY -> SKIPPED and the producer's EMPTY -> READY are CASes
 * on the same word: a position is either published or skipped, never both,
 * and an entry that was published is never skipped.
 */
/* How long a position may stay unpublished at the consumer index before
 * consumers pass it: far beyond a running producer's window (tens of ns; an
 * interrupt makes it tens of us) and within one scheduler tick. */
#define GHOST_RING_GAP_NS 1000000ULL

#define GHOST_RING_STATE_BITS 4
#define GHOST_RING_STATE_MASK ((1ULL << GHOST_RING_STATE_BITS) - 1)

enum ghost_ring_slot_state {
	GHOST_RING_EMPTY = 0,
	/* 1: PUSHING in layout 2 (a producer writing the fields); layout 3
	 * leaves the word EMPTY until the publishing CAS. */
	GHOST_RING_READY = 2,
	GHOST_RING_CLAIMED = 3,
	GHOST_RING_RAN = 4,
	GHOST_RING_STALE = 5,
	GHOST_RING_REVOKED = 6,
	GHOST_RING_SKIPPED = 7,
	GHOST_RING_ABANDONED = 8,
};

/* Why a consumer dropped an entry (slot `reason` when STALE). */
enum ghost_ring_stale_reason {
	GHOST_RING_STALE_NONE = 0,
	GHOST_RING_STALE_GONE,          /* no such thread any more */
	GHOST_RING_STALE_SEQNUM,        /* its seqnum moved on (blocked, woke, changed) */
	GHOST_RING_STALE_ENCLAVE,       /* no longer in this enclave */
	GHOST_RING_STALE_NOT_PARKED,    /* not waiting for a placement (committed elsewhere) */
	GHOST_RING_STALE_AFFINITY,      /* may not run on the consumer's CPU */
	GHOST_RING_STALE_CPU,           /* the CPU is offline or outside the enclave */
	GHOST_RING_STALE_INSERT_RACE,   /* it changed under the consumer: the move was refused */
	GHOST_RING_STALE_BOUNCED,       /* moved, but back in ops.enqueue before it ran
	                                 * (a higher class took the CPU, a property change):
	                                 * parked again, no message */
	GHOST_RING_STALE_LAST = GHOST_RING_STALE_BOUNCED,
};

/* One cache line per slot: consumers on different CPUs claiming neighbouring
 * entries do not share a line. */
struct ghost_ring_slot {
	__u64 state;      /* pos << GHOST_RING_STATE_BITS | enum ghost_ring_slot_state */
	__u64 tid;        /* p->scx.tid */
	__u64 seqnum;     /* the thread's seqnum when pushed */
	__u64 push_ns;    /* producer's clock at the push (0: not given) */
	__u64 slice_ns;   /* the policy's slice for this run (0: the class default) */
	__u32 cpu;        /* consumer that claimed it, or ~0 */
	__u32 reason;     /* STALE: enum ghost_ring_stale_reason */
	__u64 pad[2];
};

/* Written once by whoever initialises the ring (ghost_ring_init), then read. */
struct ghost_ring_info {
	__u32 layout_version; /* GHOST_RING_LAYOUT_VERSION; 0 until initialised */
	__u32 size;           /* slots in use: a power of two <= GHOST_RING_MAX_SLOTS */
	__u32 node;           /* NUMA node it feeds */
	__u32 flags;          /* GHOST_RING_F_*, written by the agent at any time */
	__u64 wakeup_slice_ns; /* slice of entries the class pushes at wake-up (0: default) */
	__u64 pad[5];
};

/* info.flags: CPUs of the enclave's other nodes may claim from this ring when
 * their own ring has nothing (stealing; off by default: an entry then runs
 * only on its node's CPUs). */
#define GHOST_RING_F_STEAL 1U
/* info.flags: the class pushes threads of the enclave that wake up on this
 * node (their parking CPU's) into this ring itself, at ops.enqueue (a BPF
 * producer), and their TASK_WAKEUP message names the entry (in_ring,
 * ring_node, ring_pos): a wake-up then needs no round trip to the agent. The
 * agent sets it while it has no runnable thread of its own waiting for the
 * ring, so that woken threads do not overtake older ones. */
#define GHOST_RING_F_WAKEUP 2U

/* An index alone on its cache line: producers, consumers and the reaper each
 * move their own and never bounce the others' line. */
struct ghost_ring_index {
	__u64 pos;
	__u64 pad[7];
};

/* The consumers' line: their index, and how long the position at it has been
 * unpublished (a stalled producer's gap; SKIPPED above). */
struct ghost_ring_tail {
	__u64 pos;          /* nothing before it is READY or unpublished (a hint; the
	                     * slot words decide) */
	__u64 gap_pos;      /* 1 + the position a consumer first found unpublished at
	                     * the index (0: none yet) */
	__u64 gap_since_ns; /* that consumer's clock then */
	__u64 skips;        /* positions consumers passed (SKIPPED), ever */
	__u64 pad[4];
};

struct ghost_ring {
	struct ghost_ring_info info;
	struct ghost_ring_index head;   /* next position a producer takes */
	struct ghost_ring_tail tail;    /* consumers */
	struct ghost_ring_index reaped; /* reaper: next position whose outcome it reads */
	struct ghost_ring_slot slots[GHOST_RING_MAX_SLOTS];
};

#endif /* GHOST_SCX_KERNEL_GHOST_RING_H */
