# vm: --cpus 2 --timeout 600
# Threads pinned to the CPU where a global agent spins run, and the class is
# never ejected: with a hostile agent (the kernel's ext deadline server lends
# the CPU and the class must use it) and with the library's agent (the class
# asks it to step aside). tests/vm/bin/ghost_agent_cpu.cc says how.
set -u
ghost_agent_cpu hostile || exit 1
ghost_agent_cpu library || exit 1
