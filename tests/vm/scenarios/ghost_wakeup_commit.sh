# vm: --cpus 3
# A commit made the moment TASK_WAKEUP arrives, to an idle enclave CPU, is
# COMMITTED on the first try (no spurious CPU_UNAVAILABLE bounce).
ghost_wakeup_commit
