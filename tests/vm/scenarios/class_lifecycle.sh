# The first ghost class end to end (issue: build and VM test bed):
#  0. as a non-root user ghost-agent refuses in one line with exit 2;
#  1. ghost-agent loads and attaches the class: state 'enabled', ops 'ghost';
#  2. 16 SCHED_EXT threads run to completion under it (each checks it is run
#     by the class), and the class counted their enqueues;
#  3. SIGTERM mid-run: the agent detaches cleanly (exit 0), the state becomes
#     'disabled', and the threads still all finish (in the fair class).
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
state() { cat /sys/kernel/sched_ext/state; }
ext_threads() {  # number of threads of PID run by a sched_ext class
  n=0
  for t in /proc/$1/task/*; do grep -q 'ext.enabled *: *1' $t/sched 2>/dev/null && n=$((n + 1)); done
  echo $n
}
wait_state() {  # wait_state WANT TENTHS
  i=0
  while [ "$(state)" != "$1" ]; do
    i=$((i + 1)); [ $i -gt "$2" ] && return 1; sleep 0.1
  done
}

[ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' before the agent started"
runas 1000 ghost-agent >/tmp/nonroot.log 2>&1; rc=$?
[ $rc = 2 ] && grep -q 'must run as root' /tmp/nonroot.log && [ "$(wc -l </tmp/nonroot.log)" = 1 ] ||
  fail "non-root ghost-agent: exit $rc, said: $(cat /tmp/nonroot.log)"
[ "$(state)" = disabled ] || fail "a refused non-root agent changed the state"
echo "PASS: not root: one line, exit 2"
ghost-agent --stats >/tmp/agent.log 2>&1 &
agent=$!
wait_state enabled 100 || fail "class not enabled within 10 s (state '$(state)')"
ops=$(cat /sys/kernel/sched_ext/root/ops)
[ "$ops" = ghost ] || fail "root ops is '$ops', want 'ghost'"
echo "PASS: agent attached: state enabled, ops ghost"

workers --threads 16 --bursts 50 --burst-us 2000 --sleep-us 1000 --expect-class ||
  fail "SCHED_EXT workers did not all complete under the class"
echo "PASS: 16 SCHED_EXT threads ran to completion under ghost"

workers --threads 16 --bursts 400 --burst-us 2000 --sleep-us 1000 >/tmp/late.log 2>&1 &
late=$!
# SIGTERM only once all 16 threads run in the class (30 s at most).
i=0
while [ "$(ext_threads $late)" != 16 ]; do
  kill -0 $late 2>/dev/null || fail "second worker batch ended before SIGTERM; make it longer"
  i=$((i + 1)); [ $i -gt 300 ] && fail "second batch: $(ext_threads $late) of 16 threads in the class"
  sleep 0.1
done
kill -TERM $agent
wait $agent; rc=$?
[ $rc = 0 ] || fail "ghost-agent exited $rc after SIGTERM"
grep -q 'detaching' /tmp/agent.log || fail "agent did not report detaching"
wait_state disabled 50 || fail "state is '$(state)' after the agent detached"
echo "PASS: SIGTERM: agent exit 0, state disabled"
enq=$(sed -n 's/.*enqueued=\([0-9]*\).*direct=\([0-9]*\).*/\1 \2/p' /tmp/agent.log)
set -- $enq
[ $(( ${1:-0} + ${2:-0} )) -ge 16 ] || fail "class counted too few enqueues: '$enq'"
echo "PASS: class counted $1 queued and $2 direct placements"

wait $late; rc=$?
cat /tmp/late.log
[ $rc = 0 ] || fail "threads did not all finish after the class went away"
echo "PASS: threads still finished after detach"
exit 0
