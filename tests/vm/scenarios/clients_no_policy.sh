# vm: --cpus 4 --timeout 900 --prog cyclictest --prog hackbench --prog stress-ng --file tests/vm/lib/clients.sh
# Debian's own programs (rt-tests, stress-ng) under the class alone
# (ghost-agent --policy=none: SCHED_EXT threads run in the class's FIFO): each
# exits 0, the class stays enabled, every thread ends. What runs and what is
# checked: tests/vm/lib/clients.sh.
. /bin/clients.sh
run_clients none
