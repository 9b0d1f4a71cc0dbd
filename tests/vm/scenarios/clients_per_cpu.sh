# vm: --cpus 4 --timeout 900 --prog cyclictest --prog hackbench --prog stress-ng --file tests/vm/lib/clients.sh
# Debian's own programs (rt-tests, stress-ng) under ghost-agent
# --policy=fifo-per-cpu: each exits 0, the class stays enabled, every thread
# ends, and the agent placed the work (no fallback runs). What runs and what is
# checked: tests/vm/lib/clients.sh.
. /bin/clients.sh
run_clients fifo-per-cpu
