# vm: --cpus 4 --numa --smt --timeout 900 --prog cyclictest --prog hackbench --prog stress-ng --file tests/vm/lib/clients.sh
# Debian's own programs (rt-tests, stress-ng) under ghost-agent
# --policy=search in a 2-node SMT guest (the centralized scheduler placing by
# cache distance, pinned push on): each exits 0, the class stays enabled, every thread
# ends, and the agent placed the work (no fallback runs). What runs and what is
# checked: tests/vm/lib/clients.sh.
. /bin/clients.sh
run_clients search
