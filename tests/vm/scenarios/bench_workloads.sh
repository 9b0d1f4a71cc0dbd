# vm: --cpus 4 --timeout 600
# ghost-bench's four workloads under the ghost class (behaviour, never timings:
# TCG makes times meaningless):
#  1. under each policy of ghost-agent, with --enclave=0 the measured threads
#     join the agent's enclave: mixed, dispersive, antagonist and pingpong each
#     run to completion (exit 0), every measured thread run by the class
#     (--expect-class), and the agent placed them: its commits made their runs,
#     the class's fallback made none (no fault is injected), and no thread ran
#     in the class's FIFO (every measured thread was in the enclave);
#  2. without --enclave the same threads run in the class's FIFO, which no agent
#     sees (FIFO placements, no enclave runs);
#  3. --enclave naming an enclave no agent runs is one line, exit 2;
#  4. the same binary with --nosched-ext also completes (the comparison runs);
#  5. a workload that cannot finish in time makes ghost-bench fail (exit 1)
#     after --duration + --grace instead of hanging;
#  6. bad input exits 2 with one line on stderr.
set -u
fail() {  # stops a running agent first: its --stats (last watchdog move, stalls) explain
  echo "FAIL: $*"
  [ -n "${agent:-}" ] && kill -TERM $agent 2>/dev/null && wait $agent
  [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log
  exit 1
}
state() { cat /sys/kernel/sched_ext/state; }
now() { cut -d' ' -f1 /proc/uptime | cut -d. -f1; }
snapshot() { probe_out=$(class_probe --print 2>&1) || fail "class_probe: $probe_out"; }
counter() { echo "$probe_out" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }

agent=""
start_agent() {  # start_agent POLICY: ghost-agent runs it, the class is enabled
  [ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' before the agent started"
  rm -f /tmp/agent.log  # else the wait below may read the previous agent's log
  ghost-agent --policy=$1 --slice-us=2000 --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats >/tmp/agent.log 2>&1 &
  agent=$!
  i=0
  while ! grep -qs 'ghost-agent: policy' /tmp/agent.log; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "$1: agent did not start"; sleep 0.1
  done
  [ "$(state)" = enabled ] || fail "$1: class not enabled"
  echo "PASS: $1: agent attached"
}
stop_agent() {
  kill -0 $agent 2>/dev/null || fail "ghost-agent died during the workloads"
  [ "$(state)" = enabled ] || fail "class no longer enabled after the workloads ($(state))"
  kill -TERM $agent
  wait $agent; rc=$?
  [ $rc = 0 ] || fail "ghost-agent exited $rc"
  grep -E 'runs:|transactions:' /tmp/agent.log
}

# run LABEL NAME FLAGS...: one workload under ghost, CSV out, must exit 0 with
# a complete record; LABEL says where its threads should have run: "enclave"
# (the agent's commits placed them) or "fifo" (the class's FIFO).
run() {
  where=$1 name=$2; shift 2
  snapshot
  agent0=$(counter runs_by_agent) fb0=$(counter runs_by_fallback) fifo0=$(counter fifo_placements)
  wd0=$(counter watchdog_moves) st0=$(counter starved_runs) la0=$(counter starved_agent_cpu)
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
  snapshot
  by_agent=$(($(counter runs_by_agent) - agent0))
  by_fallback=$(($(counter runs_by_fallback) - fb0))
  # Runs in the time the kernel lends sched_ext a CPU that a higher class
  # held are counted apart (docs/FALLBACK.md, step 6).
  lent=$(($(counter starved_runs) - st0))
  fifo=$(($(counter fifo_placements) - fifo0))
  placed="runs placed by the agent $by_agent, by the fallback $by_fallback; FIFO placements $fifo"
  [ $by_fallback = 0 ] || placed="$placed; the fallback's: watchdog moves (waited 5 s) \
$(($(counter watchdog_moves) - wd0)), runs on a CPU the ext server lent $lent \
(on the global agent's CPU: $(($(counter starved_agent_cpu) - la0)))"
  if [ "$where" = enclave ]; then
    [ $by_agent -gt 0 ] || fail "$name: the agent placed nothing ($placed)"
    [ $((by_fallback - lent)) = 0 ] || fail "$name: $((by_fallback - lent)) runs were the fallback's ($placed)"
    [ $fifo = 0 ] || fail "$name: threads ran in the class's FIFO, not in the enclave ($placed)"
  else
    [ $fifo -gt 0 ] || fail "$name: the class's FIFO placed nothing ($placed)"
    [ $by_agent = 0 ] && [ $by_fallback = 0 ] || fail "$name: enclave runs without --enclave ($placed)"
  fi
  echo "PASS: $policy: $name ($where): exit 0, $completions completions; $placed"
}

for policy in fifo-centralized fifo-per-cpu; do
  start_agent $policy
  run enclave mixed --enclave=0 --threads=16 --duration=2s
  run enclave dispersive --enclave=0 --workers=32 --rps=1000 --duration=2s
  run enclave antagonist --enclave=0 --threads=8 --duration=2s
  run enclave pingpong --enclave=0 --pairs=2 --rounds=300 --duration=2s
  if [ $policy = fifo-centralized ]; then
    run fifo mixed --threads=16 --duration=2s
    ghost-bench --workload=mixed --enclave=3 --duration=1s >/dev/null 2>/tmp/bad.err
    rc=$?
    [ $rc = 2 ] && [ "$(wc -l </tmp/bad.err)" = 1 ] && grep -q 'enclave 3 is not in use' /tmp/bad.err ||
      fail "--enclave=3 (no agent runs it): exit $rc, said: $(cat /tmp/bad.err)"
    echo "PASS: $(cat /tmp/bad.err)"
  fi
  stop_agent
done

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

for bad in --workload=nope --threads=0 --duration=-1s --rps=0 --format=xml --enclave=8 --enclave=0; do
  ghost-bench --nosched-ext $bad >/dev/null 2>/tmp/bad.err
  rc=$?
  [ $rc = 2 ] || fail "ghost-bench $bad exited $rc, want 2"
  [ "$(wc -l </tmp/bad.err)" = 1 ] || fail "ghost-bench $bad: want one line on stderr"
done
echo "PASS: bad input exits 2 with one line"
ghost-bench --enclave=0 >/dev/null 2>/tmp/bad.err
rc=$?
[ $rc = 2 ] && [ "$(wc -l </tmp/bad.err)" = 1 ] && grep -q 'no ghost class is running' /tmp/bad.err ||
  fail "ghost-bench --enclave=0 with no agent: exit $rc, said: $(cat /tmp/bad.err)"
echo "PASS: with no agent: $(cat /tmp/bad.err)"
exit 0
