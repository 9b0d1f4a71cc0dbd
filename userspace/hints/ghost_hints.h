/*
 * The hint table: shared memory in which an application tells the agents
 * about its threads (issue 10; docs/HINTS.md). ghOSt's PrioTable plays this
 * part; this is our own layout.
 *
 * The application creates the table (a sealed memfd: its size cannot
 * change) and writes; agents map it read-only and read. Nothing an application writes
 * can hurt an agent: a reader checks the header against the file's size,
 * treats every entry as untrusted, and gives up on an entry that stays
 * inconsistent (a writer that died mid-update) after a bounded number of
 * tries. A thread with no entry simply has no hints: policies then use their
 * defaults.
 *
 *   header | classes[nr_classes] | entries[nr_entries]
 *
 * Classes describe kinds of work (a request type); entries describe one
 * thread each and may name a class, whose values fill in the fields the
 * entry leaves unset (GHOST_HINT_F_* says which are set).
 *
 * Consistency: every class and entry starts with a sequence count. The
 * writer makes it odd, stores the fields, makes it even again; a reader
 * copies the fields between two reads of the count and keeps the copy only
 * if both reads are the same even value. Writers of one table must not
 * update the same entry concurrently (one writer per entry; the library's
 * writer is one process).
 *
 * Layout is plain C, little-endian, naturally aligned, the same for C and
 * C++. A reader refuses another major version; a minor version only adds
 * fields at the end of the header, a class or an entry (readers use
 * header_bytes, class_bytes and entry_bytes, never their own sizes, to find
 * things).
 */
#ifndef GHOST_SCX_USERSPACE_HINTS_GHOST_HINTS_H_
#define GHOST_SCX_USERSPACE_HINTS_GHOST_HINTS_H_

#include <stdint.h>

#define GHOST_HINT_MAGIC 0x544e4847u /* "GHNT" */
#define GHOST_HINT_VERSION_MAJOR 1
#define GHOST_HINT_VERSION_MINOR 0

/* Limits a reader enforces (a table beyond them is refused). */
#define GHOST_HINT_MAX_ENTRIES (1u << 20)
#define GHOST_HINT_MAX_CLASSES 4096u

/* An entry's class_id when it names none. */
#define GHOST_HINT_NO_CLASS 0xffffffffu

/* flags of a class or an entry: which fields hold a value. */
#define GHOST_HINT_F_QOS (1u << 0)      /* qos */
#define GHOST_HINT_F_DEADLINE (1u << 1) /* deadline_ns */
#define GHOST_HINT_F_RUNTIME (1u << 2)  /* runtime_ns */
#define GHOST_HINT_F_COOKIE (1u << 3)   /* cookie */
/* An entry's own state: the thread has work (runnable) or is idle. Unset:
 * the application does not say (a policy treats it as having work). */
#define GHOST_HINT_F_IDLE (1u << 8)

struct ghost_hint_header {
	uint32_t magic;          /* GHOST_HINT_MAGIC */
	uint16_t version_major;  /* GHOST_HINT_VERSION_MAJOR */
	uint16_t version_minor;
	uint32_t header_bytes;   /* at least sizeof(struct ghost_hint_header) */
	uint32_t class_bytes;    /* at least sizeof(struct ghost_hint_class), a multiple of 8 */
	uint32_t entry_bytes;    /* at least sizeof(struct ghost_hint_entry), a multiple of 8 */
	uint32_t nr_classes;
	uint32_t nr_entries;
	uint32_t classes_offset; /* from the start of the table, a multiple of 8 */
	uint32_t entries_offset; /* likewise */
	uint32_t owner_pid;      /* the process that created it (informational) */
	uint32_t reserved0;
	/* Bumped (after the entry's own update) whenever an entry's tid
	 * changes: a reader rebuilds its tid index only when this moved. */
	uint64_t tid_generation;
	uint64_t reserved[1];
};

/* A kind of work. */
struct ghost_hint_class {
	uint32_t seq;            /* sequence count: odd while being written */
	uint32_t flags;          /* GHOST_HINT_F_QOS | _DEADLINE | _RUNTIME | _COOKIE */
	uint32_t qos;            /* higher runs first */
	uint32_t reserved0;
	uint64_t deadline_ns;    /* relative: a request of this class is due this long after it starts */
	uint64_t runtime_ns;     /* expected CPU time of one request */
	uint64_t cookie;         /* core-scheduling cookie (0: none) */
	uint64_t reserved[3];
};

/* One thread. */
struct ghost_hint_entry {
	uint32_t seq;            /* sequence count: odd while being written */
	uint32_t flags;          /* GHOST_HINT_F_* */
	int32_t tid;             /* the thread (kernel tid); 0: a free entry */
	uint32_t class_id;       /* index into the classes, or GHOST_HINT_NO_CLASS */
	uint32_t qos;
	uint32_t reserved0;
	uint64_t deadline_ns;    /* absolute, CLOCK_MONOTONIC */
	uint64_t runtime_ns;
	uint64_t cookie;
	uint64_t reserved[2];
};

#ifdef __cplusplus
static_assert(sizeof(struct ghost_hint_header) == 64, "hint table header layout");
static_assert(sizeof(struct ghost_hint_class) == 64, "hint class layout");
static_assert(sizeof(struct ghost_hint_entry) == 64, "hint entry layout: one cache line");
#endif

#endif /* GHOST_SCX_USERSPACE_HINTS_GHOST_HINTS_H_ */
