# vm: --cpus 4 --timeout 900
# The ghOSt paper's Table 3 on the ghost class (a benchmark, not a test: run
# by scripts/bench.sh, never by `make test`). Extra arguments go to abi_bench.
set -u
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || { echo "FAIL: a sched_ext class is already loaded"; exit 1; }
abi_bench "$@"
