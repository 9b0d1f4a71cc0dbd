# vm: --cpus 4 --timeout 600
# Shinjuku with Shenango-style sharing (ghost-agent --batch-below=1) on the
# class: lc_batch's latency-critical workers (class 1 in its hint table) wake
# every 4 ms and work 0.4 ms on the 3 CPUs the global agent leaves; measured
# alone, then beside 12 always-runnable batch threads with no entry (class 0:
# the batch application). Checked:
#  - the batch threads got at least 0.2 of the CPU time the workers left
#    idle (without sharing they would run only when the watchdog moved them:
#    next to none). Seen 0.58-0.60, and 0.38 on a host overloaded 2x: each
#    worker's burst leaves its CPU idle until the agent's next commit there,
#    milliseconds under emulation;
#  - the workers' p99 lateness beside them stays within 5x its value alone
#    plus 50 ms (each wake-up takes a batch thread's CPU at once: one
#    preempting commit). Seen 27-31 ms against 9-14 ms alone on a calm host,
#    120 ms against 26 ms beside another guest and a busy loop (the first
#    bound, 3x + 20 ms, failed there); in one class (the mutant
#    shinjuku-ignores-qos) 159 ms calm, and no qos_preemptions, checked next;
#  - the agent displaced batch threads for workers (qos_preemptions > 0), no
#    thread waited for the class's watchdog, the class stays.
set -u
fail() {
  echo "FAIL: $*"
  echo "  sched_ext state: $(cat /sys/kernel/sched_ext/state)"
  [ -f /tmp/lc.log ] && sed 's/^/  lc_batch: /' /tmp/lc.log
  [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log
  dmesg | tail -20 | sed 's/^/  dmesg: /'
  exit 1
}
rm -f /tmp/agent.log /tmp/lc.log /tmp/hints.path /tmp/go
lc_batch --path-file=/tmp/hints.path --go-file=/tmp/go --lc=3 --batch=12 --cpus=3 >/tmp/lc.log 2>&1 &
prog=$!
i=0
while ! [ -s /tmp/hints.path ]; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "lc_batch wrote no table path"; sleep 0.1
done
ghost-agent --policy=shinjuku --hints="$(cat /tmp/hints.path)" --batch-below=1 \
  --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -qs "ghost-agent: policy shinjuku" /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the agent did not start"; sleep 0.1
done
ghost-run --pid=$prog || fail "ghost-run --pid=$prog failed"
touch /tmp/go
wait $prog || fail "lc_batch failed"
state=$(cat /sys/kernel/sched_ext/state)
[ "$state" = enabled ] || fail "class not enabled after the workload (state: $state)"
kill -TERM $agent
wait $agent || fail "ghost-agent exited $?"
cat /tmp/lc.log
num() {  # num FILE PATTERN: the first number PATTERN (a sed group) finds
  sed -n "s/$2/\\1/p" "$1" | head -1
}
alone=$(num /tmp/lc.log '.*alone: p99_late=\([0-9]*\) us.*')
shared=$(num /tmp/lc.log '.*shared: p99_late=\([0-9]*\) us.*')
share=$(num /tmp/lc.log '.*of the idle capacity: \([0-9.]*\).*')
[ -n "$alone" ] && [ -n "$shared" ] && [ -n "$share" ] || fail "lc_batch did not report"
awk -v s="$share" 'BEGIN { exit !(s >= 0.2) }' ||
  fail "the batch threads got $share of the idle CPU time"
[ "$shared" -le $((5 * alone + 50000)) ] ||
  fail "the workers' p99 lateness went from $alone us alone to $shared us beside the batch threads"
pre=$(num /tmp/agent.log '.* qos_preemptions=\([0-9]*\).*')
moves=$(num /tmp/agent.log '.*transactions: watchdog_moves=\([0-9]*\).*')
[ "${pre:-0}" -gt 0 ] || fail "no batch thread was displaced by a worker (qos_preemptions=${pre:-?})"
[ "${moves:-x}" = 0 ] || fail "$moves watchdog move(s): a thread waited 5 s"
grep -E "^ghost-agent: (policy shinjuku:|transactions:|preempting commits)" /tmp/agent.log
echo "PASS: shinjuku sharing: batch got $share of the idle CPU time; workers' p99 lateness $alone us alone, $shared us shared; qos_preemptions=$pre"
