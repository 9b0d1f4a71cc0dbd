# vm: --cpus 4 --timeout 600
# Both ghOSt policies run real workloads through ghost-run to completion with
# no watchdog exit: a 64-thread mixed workload (bursts and sleeps) and a
# 1000-process fork/exit churn. The agents must really have scheduled them
# (commit calls and messages counted), nothing may have been dropped, and the
# class must still be enabled at the end.
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
wait_policy() {  # the agent prints this line once its agents run
  i=0
  while ! grep -q "ghost-agent: policy $1" /tmp/agent.log; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "$1: agent did not start the policy"; sleep 0.1
  done
}
churn='i=0; while [ $i -lt 1000 ]; do /bin/true & i=$((i + 1)); done; wait'

for policy in fifo-per-cpu fifo-centralized; do
  ghost-agent --policy=$policy --slice-us=2000 --stats >/tmp/agent.log 2>&1 &
  agent=$!
  wait_policy $policy
  [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] || fail "$policy: class not enabled"
  ghost-run -- workers --threads 64 --bursts 20 --burst-us 1000 --sleep-us 2000 --expect-class ||
    fail "$policy: 64-thread mixed workload did not complete"
  echo "PASS: $policy: 64 threads ran to completion"
  ghost-run -- sh -c "$churn" || fail "$policy: fork/exit churn failed"
  echo "PASS: $policy: 1000 fork/exit children completed"
  [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] || fail "$policy: class no longer enabled"
  kill -TERM $agent
  wait $agent; rc=$?
  [ $rc = 0 ] || fail "$policy: agent exit $rc (the kernel ended the class?)"
  set -- $(sed -n 's/.*msgs_dropped=\([0-9]*\) commit_calls=\([0-9]*\) tid_index_failures=\([0-9]*\).*/\1 \2 \3/p' /tmp/agent.log)
  [ "${1:-x}" = 0 ] || fail "$policy: messages dropped: ${1:-?}"
  [ "${3:-x}" = 0 ] || fail "$policy: the class's tid index was full ${3:-?} times"
  [ "${2:-0}" -gt 100 ] || fail "$policy: only ${2:-0} commit calls: the agent did not schedule"
  msgs=$(sed -n 's/.*rounds, \([0-9]*\) messages/\1/p' /tmp/agent.log | awk '{s += $1} END {print s + 0}')
  [ "$msgs" -gt 1000 ] || fail "$policy: agents handled only $msgs messages"
  echo "PASS: $policy: $2 commit calls, $msgs messages, none dropped; $(grep -o 'fallback_runs=[0-9]*' /tmp/agent.log)"
done
