# vm: --cpus 2
# An enclave watchdog is capped at half the kernel's stall timeout: a silent
# agent with a huge watchdog in its enclave word cannot get the class ejected.
ghost_watchdog_cap
