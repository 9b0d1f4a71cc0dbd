# vm: --cpus 3 --timeout 600
# The library's FIFO policies (per-CPU and centralized) on the real class.
set -u
ghost_policy fifo-per-cpu || exit 1
ghost_policy fifo-centralized || exit 1
