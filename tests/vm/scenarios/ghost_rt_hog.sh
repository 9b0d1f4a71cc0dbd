# An RT hog on an enclave CPU: CPU_BUSY, then CPU_AVAILABLE when it leaves.
ghost_rt_hog
