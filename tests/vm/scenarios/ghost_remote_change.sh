# vm: --cpus 3
# A running enclave thread's affinity changed from another CPU: the class
# keeps the thread's own CPU (not the caller's) as where it runs, so commits
# to the caller's CPU still take (tests/vm/bin/ghost_remote_change.cc).
ghost_remote_change
