# vm: --cpus 4 --numa --timeout 600
# The centralized FIFO with its fast path in a 2-node guest (node 0: CPUs 0-1,
# the global agent on 0; node 1: CPUs 2-3), under a mixed workload: 24
# unpinned workers, 12 pinned to node 1, while a storm flips the unpinned
# workers' affinity between all CPUs and node 1 and renices them. Checked:
# everything completes with the class enabled and no watchdog move; the agent
# and the class fed both nodes' rings (the agent's pushes and the class's
# wake-up pushes, per node), CPUs of both nodes ran ring entries, nothing was
# stolen (stealing is off: an entry runs on its ring's node), the class saw no
# ring protocol error, and next to no entry was dropped because its thread may
# not run on the node it was pushed to (STALE AFFINITY with the pushed seqnum
# still current: the agent put it in the wrong ring, e.g. a thread pinned to
# node 1 in node 0's; an affinity change moves the seqnum, so the storm's
# changes end as STALE SEQNUM; a few may race with the consumer's check).
# Then a second agent with --ring-steal=on (below).
set -u
fail() {
  echo "FAIL: $*"
  echo "  sched_ext state: $(cat /sys/kernel/sched_ext/state)"
  [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log
  dmesg | tail -20 | sed 's/^/  dmesg: /'
  exit 1
}
rm -f /tmp/agent.log
ghost-agent --policy=fifo-centralized --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats \
  >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -qs "ghost-agent: policy fifo-centralized" /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the agent did not start"; sleep 0.1
done
ghost-run -- workers --threads 24 --bursts 30 --burst-us 1000 --sleep-us 2000 --expect-class &
wide=$!
ghost-run -- taskset -c 2-3 workers --threads 12 --bursts 30 --burst-us 1000 --sleep-us 2000 \
  --expect-class &
narrow=$!
# The storm, on the unpinned workers' threads (ghost-run execs the program:
# same pid).
storm() {
  n=0
  while kill -0 $wide 2>/dev/null; do
    for t in /proc/$wide/task/*; do
      tid=${t##*/}
      [ -d "$t" ] || continue
      if [ $((n % 2)) = 0 ]; then cpus=0-3; else cpus=2-3; fi
      taskset -p -c $cpus "$tid" >/dev/null 2>&1
      renice -n $((n % 5)) -p "$tid" >/dev/null 2>&1
      n=$((n + 1))
    done
    sleep 0.05
  done
  echo "storm: $n affinity and nice changes"
}
storm &
stormer=$!
wait $wide || fail "the unpinned workers did not complete"
wait $narrow || fail "the workers pinned to node 1 did not complete"
wait $stormer
state=$(cat /sys/kernel/sched_ext/state)
[ "$state" = enabled ] || fail "class not enabled after the workload (state: $state)"
kill -TERM $agent
wait $agent || fail "ghost-agent exited $?"
stat_of() {  # stat_of NAME: the sum over NODE:N pairs of the policy line's NAME=
  sed -n "s/.* $1=\\([0-9:,-]*\\) .*/\\1/p" /tmp/agent.log | tr ',' '\n' |
    awk -F: -v node="${2:-}" '$2 != "" && (node == "" || $1 == node) {s += $2} END {print s + 0}'
}
for node in 0 1; do
  fed=$(($(stat_of pushes $node) + $(stat_of wakeup_entries $node)))
  [ "$fed" -gt 0 ] || fail "node $node's ring was never fed ($(grep 'fast_path=' /tmp/agent.log))"
  echo "node $node: $(stat_of pushes $node) pushed by the agent, $(stat_of wakeup_entries $node) by the class at wake-up"
done
# Node 0: CPU 1, and CPU 0 while the global agent sleeps (its default).
ran_node0=$(($(stat_of ran_per_cpu 0) + $(stat_of ran_per_cpu 1)))
ran_node1=$(($(stat_of ran_per_cpu 2) + $(stat_of ran_per_cpu 3)))
[ "$ran_node0" -gt 0 ] && [ "$ran_node1" -gt 0 ] ||
  fail "ring entries ran on node 0: $ran_node0, node 1: $ran_node1"
class=$(grep '^ghost-agent: fast path (class):' /tmp/agent.log)
steals=$(echo "$class" | sed -n 's/.* steals=\([0-9]*\).*/\1/p')
errors=$(echo "$class" | sed -n 's/.* settle_errors=\([0-9]*\).*/\1/p')
[ "${steals:-x}" = 0 ] || fail "entries were stolen across nodes with stealing off ($class)"
[ "${errors:-x}" = 0 ] || fail "the class refused ring settles ($class)"
# The policy's entries dropped by reason (REASON:N,...; 5 is AFFINITY).
wrong_node=$(sed -n 's/.* stale_by_reason=\([0-9:,-]*\) .*/\1/p' /tmp/agent.log | tr ',' '\n' |
  sed -n 's/^5:\([0-9]*\)$/\1/p')
wrong_node=${wrong_node:-0}
[ "$wrong_node" -le 3 ] ||
  fail "$wrong_node ring entries were dropped: their thread may not run on the ring's node ($(grep -o 'stale_by_reason=[^ ]*' /tmp/agent.log))"
moves=$(sed -n 's/.*watchdog_moves=\([0-9]*\).*/\1/p' /tmp/agent.log)
[ "${moves:-x}" = 0 ] || fail "$moves threads waited for the watchdog ($(grep 'transactions:' /tmp/agent.log))"
first="36 workers completed under a storm; ring runs on node 0: $ran_node0, node 1: $ran_node1; no steal, no watchdog move; entries dropped for affinity: $wrong_node ($(grep -o 'stale_by_reason=[^ ]*' /tmp/agent.log))"
echo "$first"

# Then --ring-steal=on: 16 workers start on node 0 only and are let onto
# every CPU after 0.3 s; the agent keeps pushing them to node 0's ring (where
# they last ran), and node 1's CPUs, whose own ring runs dry, take entries
# from it. Checked: they did, everything completed, no protocol error, no
# watchdog move.
rm -f /tmp/agent.log
ghost-agent --policy=fifo-centralized --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats \
  --ring-steal=on >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -qs "ghost-agent: policy fifo-centralized" /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the agent (--ring-steal=on) did not start"; sleep 0.1
done
ghost-run -- taskset -c 0-1 workers --threads 16 --bursts 40 --burst-us 1000 --sleep-us 1000 \
  --expect-class &
w=$!
sleep 0.3
for t in /proc/$w/task/*; do taskset -p -c 0-3 "${t##*/}" >/dev/null 2>&1; done
wait $w || fail "the workers (--ring-steal=on) did not complete"
state=$(cat /sys/kernel/sched_ext/state)
[ "$state" = enabled ] || fail "class not enabled after the stealing run (state: $state)"
kill -TERM $agent
wait $agent || fail "ghost-agent (--ring-steal=on) exited $?"
grep -q ' ring_steal=on' /tmp/agent.log || fail "the policy line does not say ring_steal=on"
class=$(grep '^ghost-agent: fast path (class):' /tmp/agent.log)
steals=$(echo "$class" | sed -n 's/.* steals=\([0-9]*\).*/\1/p')
errors=$(echo "$class" | sed -n 's/.* settle_errors=\([0-9]*\).*/\1/p')
[ "${steals:-0}" -gt 0 ] || fail "no entry was stolen with --ring-steal=on ($class)"
[ "${errors:-x}" = 0 ] || fail "the class refused ring settles with stealing ($class)"
moves=$(sed -n 's/.*watchdog_moves=\([0-9]*\).*/\1/p' /tmp/agent.log)
[ "${moves:-x}" = 0 ] || fail "$moves threads waited for the watchdog with stealing"
echo "PASS: policy_numa: $first; with --ring-steal=on, 16 workers moved from node 0 to all CPUs completed, $steals entries stolen"
