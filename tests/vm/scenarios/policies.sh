# vm: --cpus 4 --timeout 600
# Both ghOSt policies run real workloads through ghost-run to completion with
# no watchdog exit: a 64-thread mixed workload (bursts and sleeps) and a
# 1000-process fork/exit churn (fifo-centralized with its fast path, where ring
# entries must have placed runs, and with --fast-path=off, where none may). The agents must really have scheduled them:
# their COMMITTED transactions placed the threads' runs (ghost-agent --stats
# 'runs:': committed > 0, and every run committed or resumed after a higher
# class took the CPU, none the fallback's: no fault is injected), nothing may
# have been dropped, and the class must still be enabled at the end.
set -u
fail() {
  echo "FAIL: $*"
  echo "  sched_ext state: $(cat /sys/kernel/sched_ext/state)"
  [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log
  dmesg | tail -20 | sed 's/^/  dmesg: /'
  exit 1
}
wait_policy() {  # the agent prints this line once its agents run
  i=0
  while ! grep -qs "ghost-agent: policy $1" /tmp/agent.log; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "$1: agent did not start the policy"; sleep 0.1
  done
}
# Runs of enclave threads during one phase, by who placed them (class_probe
# reads the class's counters): the agent's commits must have placed some, the
# fallback none. Checked after each phase, so that a broken commit path fails
# here, not after the fallback has slowly finished everything.
# Runs in the time the kernel's ext server lends sched_ext a CPU that a higher
# class (the global agent, a kernel thread) held for about a second are counted
# apart (docs/FALLBACK.md, step 6): every other fallback run (a thread that
# waited --watchdog-ms for its agent) fails the phase.
runs_now() {  # sets $runs: "BY_AGENT BY_FALLBACK RESUMED LENT"
  out=$(class_probe --print 2>&1) || fail "$variant: class_probe: $out"
  runs="$(echo "$out" | sed -n 's/.* runs_by_agent=\([0-9]*\) runs_by_fallback=\([0-9]*\) runs_resumed=\([0-9]*\).*/\1 \2 \3/p') \
$(echo "$out" | sed -n 's/.* starved_runs=\([0-9]*\).*/\1/p')"
}
phase_start() { runs_now; set -- $runs; a0=$1 f0=$2 r0=$3 l0=$4; }
phase_runs() {  # phase_runs LABEL
  label=$1
  runs_now
  set -- $runs
  placed="runs placed by the agent $(($1 - a0)), by the fallback $(($2 - f0)) (on CPUs the kernel lent: $(($4 - l0))), resumed $(($3 - r0))"
  [ $(($1 - a0)) -gt 0 ] || fail "$variant: $label: the agent placed nothing ($placed)"
  [ $(($2 - f0 - ($4 - l0))) = 0 ] || fail "$variant: $label: runs were the fallback's, not the agent's ($placed)"
}
churn='i=0; while [ $i -lt 1000 ]; do /bin/true & i=$((i + 1)); done; wait'

# fifo-centralized three times: as shipped (the fast path: idle CPUs take the
# agent's threads from its rings in BPF, and the class pushes wake-ups there
# itself; ring entries must have placed runs; the rings hold the whole backlog
# and the agent sleeps when idle: it must have slept and its own CPU run ring
# entries meanwhile), with shallow rings and a spinning agent (+spin:
# --ring-depth=idle --agent-sleep-us=0: the agent must never have slept) and by
# transactions alone (+txn: --fast-path=off).
for variant in fifo-per-cpu fifo-centralized fifo-centralized+spin fifo-centralized+txn; do
  policy=${variant%%+*} variant_flags=""
  case "$variant" in
    *+txn) variant_flags="--fast-path=off" ;;
    *+spin) variant_flags="--ring-depth=idle --agent-sleep-us=0" ;;
  esac
  # shellcheck disable=SC2086
  rm -f /tmp/agent.log  # else the wait below may read the previous agent's log
  ghost-agent --policy=$policy $variant_flags --slice-us=2000 --kernel-timeout-ms=30000 --watchdog-ms=5000 --stats >/tmp/agent.log 2>&1 &
  agent=$!
  wait_policy $policy
  state=$(cat /sys/kernel/sched_ext/state)
  [ "$state" = enabled ] || fail "$variant: class not enabled (state: $state)"
  # A short first run: a broken commit path fails here, after a few
  # --watchdog-ms waits, not after the fallback has crawled through the rest.
  phase_start
  ghost-run -- workers --threads 4 --bursts 3 --burst-us 1000 --sleep-us 2000 --expect-class ||
    fail "$variant: 4-thread warm-up did not complete"
  phase_runs "4-thread warm-up"
  echo "PASS: $variant: 4 threads ran to completion; $placed"
  phase_start
  ghost-run -- workers --threads 64 --bursts 20 --burst-us 1000 --sleep-us 2000 --expect-class ||
    fail "$variant: 64-thread mixed workload did not complete"
  phase_runs "64-thread mixed workload"
  echo "PASS: $variant: 64 threads ran to completion; $placed"
  phase_start
  ghost-run -- sh -c "$churn" || fail "$variant: fork/exit churn failed"
  phase_runs "fork/exit churn"
  echo "PASS: $variant: 1000 fork/exit children completed; $placed"
  [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] || fail "$variant: class no longer enabled"
  kill -TERM $agent
  wait $agent; rc=$?
  [ $rc = 0 ] || fail "$variant: agent exit $rc (the kernel ended the class?)"
  set -- $(sed -n 's/.*msgs_dropped=\([0-9]*\) commit_calls=\([0-9]*\) tid_index_failures=\([0-9]*\).*/\1 \2 \3/p' /tmp/agent.log)
  [ "${1:-x}" = 0 ] || fail "$variant: messages dropped: ${1:-?}"
  [ "${3:-x}" = 0 ] || fail "$variant: the class's tid index was full ${3:-?} times"
  calls=$2
  set -- $(sed -n 's/^ghost-agent: runs: committed=\([0-9]*\) fallback=\([0-9]*\) resumed=\([0-9]*\).*/\1 \2 \3/p' /tmp/agent.log)
  runs_committed=${1:-0} runs_fallback=${2:-x} runs_resumed=${3:-0}
  # Runs placed by the fast path's ring entries (the centralized FIFO's
  # default where the class has rings): the agent's placements too.
  runs_ring=$(sed -n 's/^ghost-agent: runs: .* ring=\([0-9]*\)$/\1/p' /tmp/agent.log)
  runs_ring=${runs_ring:-0}
  # The class's own pushes at wake-up (--wakeup-push, on by default with the
  # fast path), and the agent's adoption of them from the TASK_WAKEUP.
  wakeup_pushes=$(sed -n 's/^ghost-agent: fast path (class): .* wakeup_pushes=\([0-9]*\).*/\1/p' /tmp/agent.log)
  wakeup_pushes=${wakeup_pushes:-0}
  adopted=$(sed -n 's/.* wakeup_entries=\([0-9:,-]*\) .*/\1/p' /tmp/agent.log | tr ',' '\n' |
    awk -F: '{s += $2} END {print s + 0}')
  if [ "$variant" != fifo-per-cpu ] && [ "$variant" != fifo-centralized+txn ]; then
    [ "$runs_ring" -gt 0 ] || fail "$variant: no run was placed by a ring entry ($(grep 'runs:' /tmp/agent.log))"
    [ "$wakeup_pushes" -gt 0 ] && [ "$adopted" -gt 0 ] ||
      fail "$variant: the class pushed $wakeup_pushes wake-ups, the agent adopted $adopted ($(grep 'fast path' /tmp/agent.log))"
    echo "$variant: the class pushed $wakeup_pushes wake-ups into the rings, the agent adopted $adopted"
    sleeps=$(sed -n 's/^ghost-agent: agent cpu .* idle sleeps \([0-9]*\);.*$/\1/p' /tmp/agent.log)
    agent_cpu_runs=$(sed -n 's/.* ran_per_cpu=\([0-9:,-]*\) .*/\1/p' /tmp/agent.log | tr ',' '\n' |
      sed -n 's/^0:\([0-9]*\)$/\1/p')
    if [ "$variant" = fifo-centralized ]; then
      [ "${sleeps:-0}" -gt 0 ] && [ "${agent_cpu_runs:-0}" -gt 0 ] ||
        fail "$variant: the agent slept ${sleeps:-0} times, its CPU 0 ran ${agent_cpu_runs:-0} ring entries ($(grep -E 'agent cpu|ran_per_cpu' /tmp/agent.log))"
      echo "$variant: the agent slept $sleeps times; its CPU 0 ran $agent_cpu_runs ring entries meanwhile"
    else
      [ "${sleeps:-0}" = 0 ] || fail "$variant: the spinning agent slept $sleeps times"
    fi
  else
    [ "$runs_ring" = 0 ] || fail "$variant: $runs_ring runs were placed by ring entries ($(grep 'runs:' /tmp/agent.log))"
    [ "$wakeup_pushes" = 0 ] || fail "$variant: the class pushed $wakeup_pushes wake-ups without rings"
  fi
  lent=$(sed -n "s/^ghost-agent: runs: .* starved_cpu=\([0-9]*\).*/\1/p" /tmp/agent.log)
  [ "$runs_fallback" = x ] || runs_fallback=$((runs_fallback - ${lent:-0}))
  txn_committed=$(sed -n 's/^ghost-agent: transactions: .* COMMITTED=\([0-9]*\).*/\1/p' /tmp/agent.log)
  # Runs of threads pinned to one CPU that the class queued there for a
  # per-CPU agent (pinned push, fifo-per-cpu's default): the agent's too.
  runs_pinned=$(sed -n 's/^ghost-agent: pinned push: pushes=[0-9]* runs=\([0-9]*\)$/\1/p' /tmp/agent.log)
  runs_pinned=${runs_pinned:-0}
  # 64 threads x 20 bursts after sleeps, and 1000 children: each needs a placement.
  [ $((runs_committed + runs_ring + runs_pinned)) -gt 1000 ] ||
    fail "$variant: the agent placed only $runs_committed runs by commits, $runs_ring by ring entries and $runs_pinned by pinned push ($(grep 'runs:' /tmp/agent.log))"
  [ "$runs_fallback" = 0 ] ||
    fail "$variant: $runs_fallback runs were the fallback's, not the agent's ($(grep 'runs:' /tmp/agent.log))"
  [ "$runs_committed" -le "${txn_committed:-0}" ] ||
    fail "$variant: $runs_committed committed runs but ${txn_committed:-0} COMMITTED transactions"
  msgs=$(sed -n 's/.*rounds, \([0-9]*\) messages/\1/p' /tmp/agent.log | awk '{s += $1} END {print s + 0}')
  [ "$msgs" -gt 1000 ] || fail "$variant: agents handled only $msgs messages"
  echo "PASS: $variant: the agent placed the runs: $runs_committed committed (COMMITTED transactions: $txn_committed), $runs_ring by ring entries, $runs_resumed resumed, 0 fallback; $calls commit calls, $msgs messages, none dropped"
done
