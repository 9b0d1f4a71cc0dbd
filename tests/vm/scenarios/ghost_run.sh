# vm: --timeout 600
# ghost-run end to end with a running agent (fifo-centralized):
#  - `ghost-run -- CMD` runs CMD and its threads as SCHED_EXT in the enclave;
#  - `ghost-run --pid=PID` moves every thread of a running process;
#  - bad input (missing program, no such pid, bad enclave) is one line, exit 2,
#    and so is ghost-run with no agent running;
#  - the agent placed what ghost-run put in the enclave: its COMMITTED
#    transactions made the threads' runs (ghost-agent --stats 'runs:'), the
#    class's fallback none (no fault is injected).
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
one_line_exit2() {  # one_line_exit2 LABEL CMD...: expect exit 2 and one line on stderr
  label=$1; shift
  "$@" >/tmp/out 2>/tmp/err; rc=$?
  [ $rc = 2 ] && [ "$(wc -l </tmp/err)" = 1 ] || fail "$label: exit $rc, said: $(cat /tmp/err)"
  echo "PASS: $label: $(cat /tmp/err)"
}
ext_threads() {  # number of threads of PID run by a sched_ext class
  n=0
  for t in /proc/$1/task/*; do grep -q 'ext.enabled *: *1' $t/sched && n=$((n + 1)); done
  echo $n
}

one_line_exit2 "no agent" ghost-run -- /bin/true

ghost-agent --policy=fifo-centralized --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats \
  >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -q 'ghost-agent: policy' /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 150 ] && fail "agent did not start"; sleep 0.1
done

one_line_exit2 "missing program" ghost-run -- /no/such/program
one_line_exit2 "no such pid" ghost-run --pid=999999
one_line_exit2 "bad enclave" ghost-run --enclave=99 -- /bin/true

# Runs in the time the kernel's ext server lends sched_ext a CPU that a higher
# class held for about a second are counted apart (docs/FALLBACK.md, step 6).
runs_now() {  # sets $runs: "BY_AGENT BY_FALLBACK_NOT_LENT"
  out=$(class_probe --print 2>&1) || fail "class_probe: $out"
  set -- $(echo "$out" | sed -n 's/.* runs_by_agent=\([0-9]*\) runs_by_fallback=\([0-9]*\).* starved_runs=\([0-9]*\).*/\1 \2 \3/p')
  runs="$1 $(($2 - $3))"
}
runs_now; set -- $runs; a0=$1 f0=$2
ghost-run -- workers --threads 8 --bursts 20 --burst-us 1000 --sleep-us 1000 --nosched-ext --expect-class ||
  fail "ghost-run -- CMD: threads not run by the class"
# Checked here too, so that a broken commit path fails before the 6000
# bursts below (each a --watchdog-ms fallback wait then).
runs_now; set -- $runs
[ $(($1 - a0)) -gt 0 ] && [ $2 = $f0 ] ||
  fail "ghost-run -- CMD: runs placed by the agent $(($1 - a0)), by the fallback $(($2 - f0)) (class: $out)"
echo "PASS: ghost-run -- CMD: 8 threads ran under the class without switching themselves; the agent placed $(($1 - a0)) runs, the fallback none"

workers --threads 6 --bursts 1000 --burst-us 1000 --sleep-us 1000 --nosched-ext >/tmp/w.log 2>&1 &
w=$!
# All 7 threads (main + 6 workers) exist before they are moved (30 s at most).
i=0
while [ "$(ls /proc/$w/task 2>/dev/null | wc -l)" -lt 7 ]; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "workers did not start their threads"; sleep 0.1
done
[ "$(ext_threads $w)" = 0 ] || fail "threads were in sched_ext before ghost-run --pid"
ghost-run --pid=$w || fail "ghost-run --pid failed"
i=0
while n=$(ext_threads $w); total=$(ls /proc/$w/task | wc -l); [ "$n" != "$total" ]; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "after ghost-run --pid: $n of $total threads run by the class"
  sleep 0.1
done
echo "PASS: ghost-run --pid moved all $total threads"
wait $w || { cat /tmp/w.log; fail "moved workers did not finish"; }
echo "PASS: moved workers finished"
kill -TERM $agent; wait $agent || fail "agent exit $?"
set -- $(sed -n 's/^ghost-agent: runs: committed=\([0-9]*\) fallback=\([0-9]*\) resumed=\([0-9]*\).*/\1 \2 \3/p' /tmp/agent.log)
# 8 x 20 and 6 x 1000 bursts, each after a sleep: each needs a placement.
ring=$(sed -n 's/^ghost-agent: runs: .* ring=\([0-9]*\)$/\1/p' /tmp/agent.log)
[ $((${1:-0} + ${ring:-0})) -gt 500 ] ||
  fail "the agent placed only ${1:-0} runs by commits and ${ring:-0} by ring entries"
lent=$(sed -n "s/^ghost-agent: runs: .* starved_cpu=\([0-9]*\).*/\1/p" /tmp/agent.log)
[ "${2:-x}" != x ] && [ $(($2 - ${lent:-0})) = 0 ] ||
  fail "${2:-?} runs were the class's fallback's, not the agent's ($(grep 'runs:' /tmp/agent.log))"
echo "PASS: the agent placed them: runs committed=$1 ring=${ring:-0} resumed=$3 fallback=0 ($(grep -o 'COMMITTED=[0-9]*' /tmp/agent.log) transactions)"
