/* SPDX-License-Identifier: GPL-2.0 */
/* Class-wide information agents read without a syscall: the ABI version they
 * check at attach, and counters that make silent failure impossible. */
#ifndef GHOST_SCX_BPF_CLASS_INFO_H
#define GHOST_SCX_BPF_CLASS_INFO_H

#include "ghost_common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ghost_class_info);
} class_info SEC(".maps");

static __always_inline struct ghost_class_info *class_info_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&class_info, &zero);
}

#define CLASS_COUNT(field)                                           \
	do {                                                         \
		struct ghost_class_info *__ci = class_info_get();    \
		if (__ci)                                            \
			__sync_fetch_and_add(&__ci->field, 1);       \
	} while (0)

#endif /* GHOST_SCX_BPF_CLASS_INFO_H */
