# The demo run by `make demo` (in the VM, or on a sched_ext host as root):
# load the ghost class, run SCHED_EXT threads under it and under the kernel's
# default scheduler, and show what happened.
set -u
fail() { echo "demo: FAILED: $*"; exit 1; }
now() { cut -d' ' -f1 /proc/uptime; }
threads=${1:-16}
echo "== ghost-scx demo: kernel $(uname -r), $(nproc) CPUs"
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || fail "another sched_ext class is loaded"
ghost-agent --stats >/tmp/agent.log 2>&1 &
agent=$!
i=0
while [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat /tmp/agent.log; fail "class not enabled"; }; sleep 0.1
done
echo "ghost-agent attached: state=$(cat /sys/kernel/sched_ext/state) ops=$(cat /sys/kernel/sched_ext/root/ops)"
echo "-- $threads SCHED_EXT threads, 50 x (2 ms compute, 1 ms sleep), under ghost:"
t0=$(now)
workers --threads "$threads" --bursts 50 --burst-us 2000 --sleep-us 1000 --expect-class || fail "workers under ghost"
t1=$(now)
kill -TERM $agent; wait $agent || fail "agent exit $?"
sed 's/^/   /' /tmp/agent.log
echo "ghost-agent detached: state=$(cat /sys/kernel/sched_ext/state)"
echo "-- the same threads under the kernel's default scheduler:"
t2=$(now)
workers --threads "$threads" --bursts 50 --burst-us 2000 --sleep-us 1000 --nosched-ext || fail "workers under CFS"
t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
  printf "\n%-28s %10s\n", "scheduler", "wall (s)";
  printf "%-28s %10.2f\n", "ghost (sched_ext)", b - a;
  printf "%-28s %10.2f\n", "kernel default (EEVDF)", d - c; }'
echo "demo: OK"
