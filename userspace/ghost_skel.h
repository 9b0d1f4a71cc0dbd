// The generated skeleton of bpf/progs/ghost.bpf.c, with the ABI types its
// globals use declared first. Include this, never skel/ghost.skel.h directly.
#ifndef GHOST_SCX_USERSPACE_GHOST_SKEL_H_
#define GHOST_SCX_USERSPACE_GHOST_SKEL_H_

#include <linux/types.h>

#include "kernel/ghost_abi.h"
#include "skel/ghost.skel.h"

#endif  // GHOST_SCX_USERSPACE_GHOST_SKEL_H_
