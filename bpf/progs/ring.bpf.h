/* SPDX-License-Identifier: GPL-2.0 */
/* The fast path's rings (issue 9) on the BPF side: the protocol itself is
 * kernel/ghost_ring_ops.h, shared with the agent. Not used by the class yet:
 * ring_check.bpf.c compiles it (and exercises it through BPF_PROG_TEST_RUN);
 * the consumers in ops.dispatch come later (docs/FAST_PATH.md). */
#ifndef GHOST_SCX_BPF_RING_H
#define GHOST_SCX_BPF_RING_H

#include "kernel/ghost_ring_ops.h"

#endif /* GHOST_SCX_BPF_RING_H */
