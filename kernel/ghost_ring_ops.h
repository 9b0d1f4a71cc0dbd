/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fast path's ring protocol (layout: kernel/ghost_ring.h): the one
 * implementation that BPF (bpf/progs/ring.bpf.h) and the agent
 * (userspace/ring.h) both compile, so both sides run the same transitions.
 *
 *   push     any producer: take a position with a CAS on head, fill, publish
 *   claim    a consumer: CAS READY -> CLAIMED on one of the first few entries,
 *            after passing a position left unpublished too long (SKIPPED)
 *   complete / fail   the consumer that claimed: CLAIMED -> RAN / STALE
 *   revoke   the agent: CAS READY -> REVOKED (a consumer cannot also win)
 *   reap     the one reaper (the agent): read outcomes in position order,
 *            free each slot for its next lap
 *   abandon  an agent that took the ring over: free what its dead
 *            predecessor took and never published
 *
 * No locks, no syscalls, every loop bounded by a constant. Memory ordering:
 * the fields of a slot are written before its READY word is published and read
 * only after a successful claim (or, by the reaper, after seeing an outcome),
 * so the state word orders them. BPF (clang 19, -mcpu=v3) has no
 * load-acquire/store-release instruction: there loads are plain volatile loads
 * (x86's JIT keeps loads ordered; the project targets x86-64) and publishing
 * stores are atomic exchanges, which BPF defines as fully ordered. (In C++ the
 * relaxed GHOST_RING_STORE keeps concurrent readers of a word data-race free.)
 * Every CAS is __sync_val_compare_and_swap (BPF_CMPXCHG, fully ordered).
 *
 * Sizes come from shared memory that the agent writes, so they are checked on
 * every call and every slot index is masked with GHOST_RING_MAX_SLOTS - 1: a
 * corrupt ring gives wrong entries (which the consumer's validation drops),
 * never an out-of-bounds access.
 */
#ifndef GHOST_SCX_KERNEL_GHOST_RING_OPS_H
#define GHOST_SCX_KERNEL_GHOST_RING_OPS_H

#include "kernel/ghost_ring.h"

#ifdef __bpf__
#define GHOST_RING_FN static __always_inline
/* Scans run on the kernel's numeric iterator: the verifier checks the body
 * until its states converge instead of once per unrolled iteration (the
 * unrolled 16-step scans exceeded its one-million-instruction budget). */
#define GHOST_RING_FOR(i, end)                                                       \
	for (struct bpf_iter_num ghost_ring_it_                                           \
		     __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))),          \
	     *ghost_ring_once_ __attribute__((unused)) =                               \
		     (bpf_iter_num_new(&ghost_ring_it_, 0, (int)(end)),                \
		      (void)bpf_iter_num_destroy, (void *)0);                          \
	     ({                                                                        \
		     int *ghost_ring_v_ = bpf_iter_num_next(&ghost_ring_it_);           \
		     ghost_ring_v_ && ((i) = *ghost_ring_v_, (i) >= 0 && (i) < (int)(end)); \
	     });)
#define GHOST_RING_LOAD(p) (*(volatile __u64 *)(p))
#define GHOST_RING_STORE(p, v) (*(volatile __u64 *)(p) = (v))
#define GHOST_RING_PUBLISH(p, v) ((void)__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST))
#else
#define GHOST_RING_FN static inline
#define GHOST_RING_FOR(i, end) for ((i) = 0; (i) < (int)(end); (i)++)
/* A test may define the four accessors itself (before including this header;
 * the functions are static, so only its own copies change): the interleaving
 * test makes each shared access a point where another actor may run. */
#ifndef GHOST_RING_LOAD
#define GHOST_RING_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GHOST_RING_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GHOST_RING_PUBLISH(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#endif
#endif
#ifndef GHOST_RING_CAS
#define GHOST_RING_CAS(p, old, new) __sync_val_compare_and_swap((p), (old), (new))
#endif

/* Between reading a word and the CAS that acts on it. Empty; a test may define
 * it (before including this header: the functions are static, so only its own
 * copies change) to widen the window, so that a break of a CAS is caught. */
#ifndef GHOST_RING_RACE_WINDOW
#define GHOST_RING_RACE_WINDOW() do { } while (0)
#endif

/* Inside a push's window: `at` 0 once it took its position, 1 once it wrote
 * the fields, before its publishing CAS. Empty; a test may define it (as above) to
 * stall a producer there and watch consumers pass its position. */
#ifndef GHOST_RING_PUSH_PAUSE
#define GHOST_RING_PUSH_PAUSE(at) do { } while (0)
#endif

/* How far past the consumer index a consumer looks for a READY entry: a
 * producer stopped between taking a position and publishing it delays the
 * entries behind it by at most this many (they stay claimable). */
#define GHOST_RING_SCAN 16
/* Head CAS attempts before a push reports contention. */
#define GHOST_RING_PUSH_TRIES 16

#define GHOST_RING_WORD(pos, st) (((__u64)(pos) << GHOST_RING_STATE_BITS) | (__u64)(st))
#define GHOST_RING_WORD_POS(w) ((__u64)(w) >> GHOST_RING_STATE_BITS)
#define GHOST_RING_WORD_STATE(w) ((__u32)((w) & GHOST_RING_STATE_MASK))

enum ghost_ring_push_result {
	GHOST_RING_PUSH_OK = 0,
	GHOST_RING_PUSH_FULL,     /* the slot for the next position still holds an unreaped entry */
	GHOST_RING_PUSH_CONTENDED, /* other producers won GHOST_RING_PUSH_TRIES times */
	GHOST_RING_PUSH_BAD_RING, /* not initialised, or a corrupt size */
	GHOST_RING_PUSH_SKIPPED,  /* consumers passed its position before it was published */
};

enum ghost_ring_revoke_result {
	GHOST_RING_REVOKE_WON = 0,   /* REVOKED: no consumer will run it */
	GHOST_RING_REVOKE_LOST,      /* a consumer claimed it first: RAN or STALE follows */
	GHOST_RING_REVOKE_UNPUBLISHED, /* its producer has not published it yet */
	GHOST_RING_REVOKE_GONE,      /* not that position's entry (reaped, or never pushed) */
	GHOST_RING_REVOKE_BAD_RING,
};

/* What a consumer learns from a claim. */
struct ghost_ring_entry {
	__u64 pos;
	__u64 tid;
	__u64 seqnum;
	__u64 push_ns;
	__u64 slice_ns;
};

/* What the reaper learns about one position. */
struct ghost_ring_outcome {
	__u64 pos;
	__u64 tid;
	__u64 seqnum;
	__u32 state;   /* GHOST_RING_RAN, _STALE, _REVOKED, or _ABANDONED (no entry) */
	__u32 reason;  /* STALE: enum ghost_ring_stale_reason */
	__u32 cpu;     /* RAN/STALE: the consumer's CPU */
	__u32 pad;
};

/* size - 1 if the ring is initialised with a valid size, else 0 (a one-slot
 * ring is refused too: 0 doubles as "invalid"). */
GHOST_RING_FN __u64 ghost_ring_mask(const struct ghost_ring *r)
{
	__u32 size = *(volatile const __u32 *)&r->info.size;

	if (*(volatile const __u32 *)&r->info.layout_version != GHOST_RING_LAYOUT_VERSION)
		return 0;
	if (size < 2 || size > GHOST_RING_MAX_SLOTS || (size & (size - 1)))
		return 0;
	return size - 1;
}

GHOST_RING_FN struct ghost_ring_slot *ghost_ring_slot_at(struct ghost_ring *r, __u64 mask,
							 __u64 pos)
{
	return &r->slots[pos & mask & (GHOST_RING_MAX_SLOTS - 1)];
}

/* Before first use, with nobody else touching the ring (the agent, on a ring
 * that is not published yet). Returns 0, or -1 for a bad size. */
GHOST_RING_FN int ghost_ring_init(struct ghost_ring *r, __u32 size, __u32 node)
{
	__u32 i;

	if (size < 2 || size > GHOST_RING_MAX_SLOTS || (size & (size - 1)))
		return -1;
	r->info.layout_version = 0;
	r->info.size = size;
	r->info.node = node;
	r->info.flags = 0;
	r->head.pos = 0;
	r->tail.pos = 0;
	r->tail.gap_pos = 0;
	r->tail.gap_since_ns = 0;
	r->tail.skips = 0;
	r->reaped.pos = 0;
	for (i = 0; i < GHOST_RING_MAX_SLOTS; i++) {
		r->slots[i].state = GHOST_RING_WORD(i, GHOST_RING_EMPTY);
		r->slots[i].tid = 0;
		r->slots[i].cpu = ~0U;
		r->slots[i].reason = 0;
	}
	/* Publishing the version last makes the ring usable. */
	(void)__atomic_exchange_n(&r->info.layout_version, GHOST_RING_LAYOUT_VERSION,
				  __ATOMIC_SEQ_CST);
	return 0;
}

/* Pushes {tid, seqnum}; on success *pos_out is the entry's position (the
 * handle for revoke and for matching its outcome). A full ring is a result:
 * the caller keeps the thread. So is SKIPPED: this producer took so long
 * between its position and the publish that consumers passed the position
 * (*pos_out names it; the reaper frees it as ABANDONED). */
GHOST_RING_FN int ghost_ring_push(struct ghost_ring *r, __u64 tid, __u64 seqnum,
				  __u64 push_ns, __u64 slice_ns, __u64 *pos_out)
{
	__u64 mask = ghost_ring_mask(r);
	int i;

	if (!mask)
		return GHOST_RING_PUSH_BAD_RING;
	for (i = 0; i < GHOST_RING_PUSH_TRIES; i++) {
		__u64 pos = GHOST_RING_LOAD(&r->head.pos);
		struct ghost_ring_slot *s = ghost_ring_slot_at(r, mask, pos);
		__u64 w = GHOST_RING_LOAD(&s->state);
		__u64 empty = GHOST_RING_WORD(pos, GHOST_RING_EMPTY);

		if ((w ^ empty) == 0) {
			GHOST_RING_RACE_WINDOW();
			if (GHOST_RING_CAS(&r->head.pos, pos, pos + 1) != pos)
				continue; /* another producer took pos */
			*pos_out = pos;
			GHOST_RING_PUSH_PAUSE(0);
			/* Ours until published, unless consumers pass it meanwhile
			 * (SKIPPED): nobody reads the fields of an unpublished or a
			 * skipped slot, and the publish is a CAS that fails on SKIPPED. */
			s->tid = tid;
			s->seqnum = seqnum;
			s->push_ns = push_ns;
			s->slice_ns = slice_ns;
			s->cpu = ~0U;
			s->reason = GHOST_RING_STALE_NONE;
			GHOST_RING_PUSH_PAUSE(1);
			if (GHOST_RING_CAS(&s->state, empty, GHOST_RING_WORD(pos, GHOST_RING_READY)) == empty)
				return GHOST_RING_PUSH_OK;
			/* SKIPPED(pos): nobody but this producer writes it now. Done
			 * with the slot: the reaper may free it. */
			GHOST_RING_PUBLISH(&s->state, GHOST_RING_WORD(pos, GHOST_RING_ABANDONED));
			return GHOST_RING_PUSH_SKIPPED;
		}
		/* The slot still holds the entry one lap back: not reaped yet. */
		if ((__s64)(GHOST_RING_WORD_POS(w) - pos) < 0)
			return GHOST_RING_PUSH_FULL;
		/* Otherwise our head was old: read it again. */
	}
	return GHOST_RING_PUSH_CONTENDED;
}

/* A consumer is done looking at position `pos` whose slot word is `w`:
 * claimed, finished, or already reaped (the slot moved to a later lap). */
GHOST_RING_FN int ghost_ring_word_settled(__u64 w, __u64 pos)
{
	/* Compared as a difference: the BPF verifier then refines only the
	 * difference, not the position, and the scan's states stay few. */
	__s64 lap = (__s64)(GHOST_RING_WORD_POS(w) - pos);

	return lap > 0 || (lap == 0 && GHOST_RING_WORD_STATE(w) >= GHOST_RING_CLAIMED);
}

/* If the position at the consumer index `tail` (below head) is unpublished,
 * times how long (the first consumer to see it records its clock) and, after
 * GHOST_RING_GAP_NS, marks it SKIPPED. Returns 1 if this call skipped it.
 * now_ns 0: never skip. */
GHOST_RING_FN int ghost_ring_pass_gap(struct ghost_ring *r, __u64 mask, __u64 tail,
				      __u64 now_ns)
{
	struct ghost_ring_slot *s = ghost_ring_slot_at(r, mask, tail);
	__u64 w = GHOST_RING_LOAD(&s->state);
	__u64 gap;

	if (!now_ns || w != GHOST_RING_WORD(tail, GHOST_RING_EMPTY))
		return 0;
	gap = GHOST_RING_LOAD(&r->tail.gap_pos);
	if (gap != tail + 1) {
		/* Clock first, then the position (the CAS orders them): a
		 * consumer that finds the position recorded reads this clock
		 * or a later one, never an earlier gap's. */
		GHOST_RING_STORE(&r->tail.gap_since_ns, now_ns);
		GHOST_RING_CAS(&r->tail.gap_pos, gap, tail + 1);
		return 0;
	}
	if ((__s64)(now_ns - GHOST_RING_LOAD(&r->tail.gap_since_ns)) < (__s64)GHOST_RING_GAP_NS)
		return 0;
	GHOST_RING_RACE_WINDOW();
	if (GHOST_RING_CAS(&s->state, w, GHOST_RING_WORD(tail, GHOST_RING_SKIPPED)) != w)
		return 0; /* published (or skipped by another consumer) meanwhile */
	__sync_fetch_and_add(&r->tail.skips, 1);
	GHOST_RING_CAS(&r->tail.pos, tail, tail + 1);
	return 1;
}

/* Claims the oldest READY entry among the first GHOST_RING_SCAN positions
 * from the consumer index, after moving that index over the settled prefix
 * (and past a position unpublished for GHOST_RING_GAP_NS by now_ns, the
 * consumer's clock; 0: never). Returns 1 with *e filled (the caller must then
 * complete or fail it), 0 if there is none, -1 for a bad ring. Two plain
 * loops, each with only its index varying, keep the verifier's walk short. */
GHOST_RING_FN int ghost_ring_claim(struct ghost_ring *r, __u32 cpu, __u64 now_ns,
				   struct ghost_ring_entry *e)
{
	__u64 mask = ghost_ring_mask(r);
	__u64 tail, head, avail, settled = 0;
	int i;

	if (!mask)
		return -1;
	tail = GHOST_RING_LOAD(&r->tail.pos);
	head = GHOST_RING_LOAD(&r->head.pos);
	avail = head - tail; /* tail <= head: both only grow, tail read first */
	if (avail > GHOST_RING_SCAN)
		avail = GHOST_RING_SCAN;
	GHOST_RING_FOR(i, avail) {
		/* From the loop variable, never from a counter: a counter in an
		 * address keeps the verifier from merging iterations. */
		__u64 pos = tail + (__u32)i;

		if (!ghost_ring_word_settled(GHOST_RING_LOAD(&ghost_ring_slot_at(r, mask, pos)->state),
					     pos))
			break;
		settled = (__u32)i + 1;
	}
	if (settled > 0) {
		/* One attempt: if it fails, another consumer moved the index at
		 * least as far. Either way the positions before are settled. */
		GHOST_RING_CAS(&r->tail.pos, tail, tail + settled);
		tail += settled;
	}
	if (tail < head)
		tail += ghost_ring_pass_gap(r, mask, tail, now_ns);
	avail = head - tail;
	if (avail > GHOST_RING_SCAN)
		avail = GHOST_RING_SCAN;
	GHOST_RING_FOR(i, avail) {
		__u64 pos = tail + (__u32)i;
		__u64 ready = GHOST_RING_WORD(pos, GHOST_RING_READY);
		struct ghost_ring_slot *s = ghost_ring_slot_at(r, mask, pos);

		/* Settled, or taken by a producer and not published yet: look
		 * past it (the index stays at an unpublished one). Compared by
		 * XOR for the verifier, as above. */
		if ((GHOST_RING_LOAD(&s->state) ^ ready) != 0)
			continue;
		GHOST_RING_RACE_WINDOW();
		if (GHOST_RING_CAS(&s->state, ready, GHOST_RING_WORD(pos, GHOST_RING_CLAIMED)) != ready)
			continue; /* another consumer, or the agent's revoke, won */
		s->cpu = cpu;
		e->pos = pos;
		e->tid = s->tid;
		e->seqnum = s->seqnum;
		e->push_ns = s->push_ns;
		e->slice_ns = s->slice_ns;
		return 1;
	}
	return 0;
}

/* The claiming consumer ran the entry's thread. 0, or -1 if `pos` was not
 * CLAIMED (a protocol error: nobody else may touch a claimed slot). */
GHOST_RING_FN int ghost_ring_complete(struct ghost_ring *r, __u64 pos)
{
	__u64 mask = ghost_ring_mask(r);
	struct ghost_ring_slot *s;
	__u64 claimed = GHOST_RING_WORD(pos, GHOST_RING_CLAIMED);

	if (!mask)
		return -1;
	s = ghost_ring_slot_at(r, mask, pos);
	return GHOST_RING_CAS(&s->state, claimed, GHOST_RING_WORD(pos, GHOST_RING_RAN)) ==
			       claimed ? 0 : -1;
}

/* The claiming consumer dropped the entry as stale for `reason`. */
GHOST_RING_FN int ghost_ring_fail(struct ghost_ring *r, __u64 pos, __u32 reason)
{
	__u64 mask = ghost_ring_mask(r);
	struct ghost_ring_slot *s;
	__u64 claimed = GHOST_RING_WORD(pos, GHOST_RING_CLAIMED);

	if (!mask)
		return -1;
	s = ghost_ring_slot_at(r, mask, pos);
	if (GHOST_RING_LOAD(&s->state) != claimed)
		return -1;
	s->reason = reason; /* ordered before the outcome by the CAS */
	return GHOST_RING_CAS(&s->state, claimed, GHOST_RING_WORD(pos, GHOST_RING_STALE)) ==
			       claimed ? 0 : -1;
}

/* The agent takes back the entry at `pos` if no consumer has claimed it. */
GHOST_RING_FN int ghost_ring_revoke(struct ghost_ring *r, __u64 pos)
{
	__u64 mask = ghost_ring_mask(r);
	struct ghost_ring_slot *s;
	__u64 ready = GHOST_RING_WORD(pos, GHOST_RING_READY);
	__u64 w;
	__u32 st;

	if (!mask)
		return GHOST_RING_REVOKE_BAD_RING;
	s = ghost_ring_slot_at(r, mask, pos);
	w = GHOST_RING_LOAD(&s->state);
	if (w == ready) {
		GHOST_RING_RACE_WINDOW();
		w = GHOST_RING_CAS(&s->state, ready, GHOST_RING_WORD(pos, GHOST_RING_REVOKED));
		if (w == ready)
			return GHOST_RING_REVOKE_WON;
	}
	if (GHOST_RING_WORD_POS(w) != pos)
		return GHOST_RING_REVOKE_GONE;
	st = GHOST_RING_WORD_STATE(w);
	if (st == GHOST_RING_CLAIMED || st == GHOST_RING_RAN || st == GHOST_RING_STALE)
		return GHOST_RING_REVOKE_LOST;
	if (st == GHOST_RING_REVOKED)
		return GHOST_RING_REVOKE_GONE; /* revoked twice: the first call won */
	if (st == GHOST_RING_SKIPPED || st == GHOST_RING_ABANDONED)
		return GHOST_RING_REVOKE_GONE; /* its push failed: never an entry */
	if ((__s64)(pos - GHOST_RING_LOAD(&r->head.pos)) >= 0)
		return GHOST_RING_REVOKE_GONE; /* never pushed */
	return GHOST_RING_REVOKE_UNPUBLISHED;
}

/* Position `pos`, whose slot word is `w`, was taken by a producer that has not
 * published it: still EMPTY, or SKIPPED by consumers meanwhile. */
GHOST_RING_FN int ghost_ring_word_unpublished(__u64 w, __u64 pos)
{
	return w == GHOST_RING_WORD(pos, GHOST_RING_EMPTY) ||
	       w == GHOST_RING_WORD(pos, GHOST_RING_SKIPPED);
}

/* Marks position `pos` ABANDONED if it is still unpublished (EMPTY) or passed
 * by consumers (SKIPPED), so that the reaper frees it. Only for a position
 * whose producer will never write again: an agent that took the ring over
 * calls it after its predecessor died and after every BPF producer that
 * could hold such a position has let go (userspace/ring.h,
 * AbandonDeadPushes). Returns 1 if this call marked it. */
GHOST_RING_FN int ghost_ring_abandon(struct ghost_ring *r, __u64 pos)
{
	__u64 mask = ghost_ring_mask(r);
	struct ghost_ring_slot *s;
	__u64 w;
	int i;

	if (!mask)
		return 0;
	s = ghost_ring_slot_at(r, mask, pos);
	/* Twice: a consumer may pass it (EMPTY -> SKIPPED) between the load
	 * and the CAS; nothing else moves it. */
	GHOST_RING_FOR(i, 2) {
		w = GHOST_RING_LOAD(&s->state);
		if (!ghost_ring_word_unpublished(w, pos))
			return 0;
		GHOST_RING_RACE_WINDOW();
		if (GHOST_RING_CAS(&s->state, w, GHOST_RING_WORD(pos, GHOST_RING_ABANDONED)) == w)
			return 1;
	}
	return 0;
}

/* The reaper (one at a time: the agent) reads the outcome of the oldest
 * unreaped position and frees its slot for the next lap. Returns 1 with *o
 * filled, 0 if that position has no outcome yet (not pushed, unpublished,
 * READY, CLAIMED, or SKIPPED with its producer still writing), -1 for a bad
 * ring. An ABANDONED position is an outcome too (no entry: its push failed). */
GHOST_RING_FN int ghost_ring_reap(struct ghost_ring *r, struct ghost_ring_outcome *o)
{
	__u64 mask = ghost_ring_mask(r);
	struct ghost_ring_slot *s;
	__u64 pos, w;
	__u32 st;

	if (!mask)
		return -1;
	pos = GHOST_RING_LOAD(&r->reaped.pos);
	if (pos >= GHOST_RING_LOAD(&r->head.pos))
		return 0;
	s = ghost_ring_slot_at(r, mask, pos);
	w = GHOST_RING_LOAD(&s->state);
	st = GHOST_RING_WORD_STATE(w);
	if (GHOST_RING_WORD_POS(w) != pos ||
	    (st != GHOST_RING_RAN && st != GHOST_RING_STALE && st != GHOST_RING_REVOKED &&
	     st != GHOST_RING_ABANDONED))
		return 0;
	o->pos = pos;
	o->tid = s->tid;
	o->seqnum = s->seqnum;
	o->state = st;
	o->reason = s->reason;
	o->cpu = s->cpu;
	o->pad = 0;
	GHOST_RING_PUBLISH(&s->state, GHOST_RING_WORD(pos + mask + 1, GHOST_RING_EMPTY));
	GHOST_RING_PUBLISH(&r->reaped.pos, pos + 1);
	return 1;
}

#endif /* GHOST_SCX_KERNEL_GHOST_RING_OPS_H */
