# vm: --cpus 4 --timeout 600
# ghost-bench's four workloads under the ghost class (behaviour, never timings:
# TCG makes times meaningless):
#  1. with ghost-agent running, mixed, dispersive, antagonist and pingpong each
#     run to completion (exit 0), every measured thread run by the class
#     (--expect-class), and the class counted their placements;
#  2. the same binary with --nosched-ext also completes (the comparison runs);
#  3. a workload that cannot finish in time makes ghost-bench fail (exit 1)
#     after --duration + --grace instead of hanging;
#  4. bad input exits 2 with one line on stderr.
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
state() { cat /sys/kernel/sched_ext/state; }
now() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }

[ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' before the agent started"
ghost-agent --stats >/tmp/agent.log 2>&1 &
agent=$!
i=0
while [ "$(state)" != enabled ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "class not enabled within 10 s"; sleep 0.1
done
echo "PASS: agent attached"

run() {  # run NAME FLAGS...: one workload under ghost, CSV out, must exit 0
  name=$1; shift
  ghost-bench --workload="$name" --expect-class --format=csv "$@" >/tmp/$name.csv 2>/tmp/$name.err
  rc=$?
  cat /tmp/$name.csv /tmp/$name.err
  [ $rc = 0 ] || fail "$name under ghost exited $rc"
  row=$(sed -n "2p" /tmp/$name.csv)
  case "$row" in
    "$name,ghost,"*",0,0,1") ;;
    *) fail "$name: unexpected record '$row'" ;;
  esac
  completions=$(echo "$row" | cut -d, -f5)
  [ "$completions" -gt 0 ] || fail "$name completed nothing"
  echo "PASS: $name under ghost: exit 0, $completions completions"
}
run mixed --threads=16 --duration=2s
run dispersive --workers=32 --rps=1000 --duration=2s
run antagonist --threads=8 --duration=2s
run pingpong --pairs=2 --rounds=300 --duration=2s

kill -0 $agent 2>/dev/null || fail "ghost-agent died during the workloads"
[ "$(state)" = enabled ] || fail "class no longer enabled after the workloads ($(state))"
kill -TERM $agent
wait $agent; rc=$?
[ $rc = 0 ] || fail "ghost-agent exited $rc"
enq=$(sed -n 's/.*enqueued=\([0-9]*\).*direct=\([0-9]*\).*/\1 \2/p' /tmp/agent.log)
set -- $enq
[ $(( ${1:-0} + ${2:-0} )) -ge 100 ] || fail "class counted too few placements: '$enq'"
echo "PASS: agent detached cleanly; class placed threads $1 + $2 times"

ghost-bench --workload=mixed,pingpong --nosched-ext --threads=16 --pairs=2 --rounds=300 \
  --duration=2s || fail "workloads under the default scheduler"
echo "PASS: the same workloads complete under the default scheduler"

t0=$(now)
ghost-bench --workload=pingpong --nosched-ext --rounds=1000000000 --duration=1s --grace=1s \
  >/tmp/hang.out 2>/tmp/hang.err
rc=$?
t1=$(now)
cat /tmp/hang.out /tmp/hang.err
[ $rc = 1 ] || fail "an unfinishable pingpong exited $rc, want 1"
grep -q "did not finish" /tmp/hang.err || fail "no report of the unfinished threads"
[ $((t1 - t0)) -le 30 ] || fail "ghost-bench took $((t1 - t0)) s to give up (duration+grace = 2 s)"
echo "PASS: unfinishable run fails with exit 1 after duration + grace"

for bad in --workload=nope --threads=0 --duration=-1s --rps=0 --format=xml; do
  ghost-bench --nosched-ext $bad >/dev/null 2>/tmp/bad.err
  rc=$?
  [ $rc = 2 ] || fail "ghost-bench $bad exited $rc, want 2"
  [ "$(wc -l </tmp/bad.err)" = 1 ] || fail "ghost-bench $bad: want one line on stderr"
done
echo "PASS: bad input exits 2 with one line"
exit 0
