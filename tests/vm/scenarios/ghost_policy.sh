# vm: --cpus 3 --timeout 600
# The library's FIFO policies (per-CPU and centralized) on the real class, their
# agent threads started as ghost-agent starts them: the agent's transactions
# place the workers' runs, the fallback none (tests/vm/bin/ghost_policy.cc).
set -u
ghost_policy fifo-per-cpu || exit 1
ghost_policy fifo-centralized || exit 1
