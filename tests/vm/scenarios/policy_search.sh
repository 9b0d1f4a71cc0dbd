# vm: --cpus 4 --numa --smt --timeout 600
# Search (userspace/policies/search.h) on the class, in a guest of 2 NUMA
# nodes x 1 core x SMT2: CPUs 0,1 (node 0; the global agent has CPU 0) and
# 2,3 (node 1). 4 workers on the 3 scheduled CPUs, each sleeping 2.5 ms
# between 0.3 ms bursts, so a thread that wakes often finds its own CPU
# taken and must choose: its SMT sibling, or the other node after waiting
# for its own (SearchPolicy::kHoldLlc).
# Checked:
#  - the agent's placements onto the thread's last CPU or its sibling are at
#    least 3x those onto the other node (a placement by the lowest idle CPU
#    instead gives about 1x: the mutant search-ignores-topology);
#  - every worker finished its bursts in the class, no watchdog move, no
#    placement refused, the class stays.
set -u
fail() {
  echo "FAIL: $*"
  echo "  sched_ext state: $(cat /sys/kernel/sched_ext/state)"
  [ -f /tmp/w.log ] && sed 's/^/  workers: /' /tmp/w.log
  [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log
  dmesg | tail -20 | sed 's/^/  dmesg: /'
  exit 1
}
num() {  # num FILE PATTERN: the first number PATTERN (a sed group) finds
  sed -n "s/$2/\\1/p" "$1" | head -1
}
[ "$(cat /sys/devices/system/cpu/cpu3/topology/thread_siblings_list)" = 2-3 ] ||
  fail "CPU 3's siblings are not 2-3: $(cat /sys/devices/system/cpu/cpu3/topology/thread_siblings_list)"
[ "$(cat /sys/devices/system/node/node1/cpulist)" = 2-3 ] || fail "node 1 is not CPUs 2-3"
rm -f /tmp/agent.log /tmp/w.log
ghost-agent --policy=search --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -qs "ghost-agent: policy search" /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the agent did not start"; sleep 0.1
done
ghost-run -- workers --threads 4 --bursts 300 --burst-us 300 --sleep-us 2500 --count-moves \
  --expect-class >/tmp/w.log 2>&1 || fail "workers failed"
state=$(cat /sys/kernel/sched_ext/state)
[ "$state" = enabled ] || fail "class not enabled after the workload (state: $state)"
kill -TERM $agent
wait $agent || fail "ghost-agent exited $?"
cat /tmp/w.log
last=$(num /tmp/agent.log '.* placed_last_cpu=\([0-9]*\).*')
sibling=$(num /tmp/agent.log '.* placed_sibling=\([0-9]*\).*')
cross=$(num /tmp/agent.log '.* placed_cross_node=\([0-9]*\).*')
held=$(num /tmp/agent.log '.* placements_held=\([0-9]*\).*')
refused=$(num /tmp/agent.log '.* placements_refused=\([0-9]*\).*')
moves=$(num /tmp/agent.log '.*transactions: watchdog_moves=\([0-9]*\).*')
[ -n "$last" ] && [ -n "$sibling" ] && [ -n "$cross" ] || fail "no placement counts from the agent"
near=$((last + sibling))
[ "$near" -ge $((3 * cross)) ] ||
  fail "placed on the last CPU or its sibling $near times, on the other node $cross"
[ "${refused:-x}" = 0 ] || fail "$refused placements named a CPU the thread may not use"
[ "${moves:-x}" = 0 ] || fail "$moves watchdog move(s): a thread waited 5 s"
grep -E "^ghost-agent: (policy search:|transactions:)" /tmp/agent.log
echo "PASS: search: placed_last_cpu=$last placed_sibling=$sibling placed_cross_node=$cross" \
  "placements_held=$held"
