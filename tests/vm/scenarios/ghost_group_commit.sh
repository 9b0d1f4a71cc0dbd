# vm: --cpus 4
# A group commit to 3 CPUs is one bpf() call and all 3 threads start there.
ghost_group_commit
