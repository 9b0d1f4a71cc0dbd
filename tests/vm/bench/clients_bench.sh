# vm: --cpus 4 --timeout 3600 --prog stress-ng --prog hackbench --prog cyclictest
# Debian's own programs under the default scheduler and under the ghost class
# (issue #8 §2; a benchmark, not a test: run by scripts/bench.sh, never by
# `make test`). Needs the guest to have stress-ng, hackbench and cyclictest:
#
#   tests/vm/vm.sh --cpus 4 --timeout 3600 --prog stress-ng --prog hackbench \
#     --prog cyclictest tests/vm/bench/clients_bench.sh [--rounds=N] [--scheds=...]
#     [--progs=...] [--agent-flags=...]
#
# Schedulers: default (no sched_ext at all), none (`ghost-agent --policy=none`:
# the class's own FIFO, no agent), fifo-per-cpu, fifo-centralized (the fast
# path: idle CPUs take threads from the agent's rings in BPF) and
# fifo-centralized-txn (the same policy, transactions only),
# fifo-centralized-spin (shallow rings and a global agent that spins: the
# defaults before 2026-12-06, --ring-depth=idle --agent-sleep-us=0),
# fifo-per-cpu-commit (the per-CPU FIFO without pinned push: its agents commit
# every run, as before 2026-12-06, --pinned-push=off). Under the
# class every program starts as `ghost-run -- PROGRAM ...`.
# Peers (issue #11): scx_simple, scx_central, scx_userland (or any scx_NAME),
# the kernel's own example sched_ext schedulers built by `make peers`
# (scripts/peers.sh) and put into the guest's /bin, e.g.
#   tests/vm/vm.sh $(for f in "$(bash scripts/peers.sh)"/scx_*; do echo --file "$f"; done) ...
# A peer is started for each cell as the whole system's scheduler (it switches
# every SCHED_OTHER task, so programs run plainly, not under ghost-run), is
# waited for until /sys/kernel/sched_ext/state is enabled with its name in
# root/ops, and is stopped with SIGINT after the cell until the state is
# disabled. A peer that fails to load, exits or is ejected during the cell
# (state, ops name or enable_seq changed) fails that cell with its reason.
# With a peer among the schedulers the first table also gives each value's
# ratio to the best peer's median (highest bogo ops, lowest time or latency).
# Programs (--progs, each one "cell" per scheduler and round):
#   affinity   stress-ng --affinity 2 --timeout 4s: bogo ops
#   switch     stress-ng --switch 1 --timeout 8s (pipe ping-pong), started
#              together with hackbench -g 4 -l 200 and a CPU hog (a shell
#              loop), all three under the scheduler: switch bogo ops, and
#              hackbench's time under that load
#   hackbench  hackbench -g 4 -l 200 alone: its time
#   hogs       stress-ng --cpu 8 --timeout 5s: twice as many CPU hogs as the
#              guest has CPUs, so half of them wait at any moment: bogo ops
#              (and in CB-STATS the fallback runs: a hog left waiting behind
#              another until the class's watchdog moved it)
#   cyclictest cyclictest -t1 -i 1000 -D 4 -q as it runs: its measuring thread
#              sets its own policy (SCHED_OTHER for priority 0), which takes it
#              out of sched_ext, so under ghost-run only its main thread stays
#              in the class: this row is the fair class's latency beside our
#              agents. The scenario counts the threads in the class mid-run.
#   cyclictest-class  the same command, but once the measuring thread has set
#              its policy, `ghost-run --pid` moves it back into the class for
#              the rest of the run (the first part, printed per cell, ran in
#              the fair class). Under the default scheduler: plain cyclictest.
#   cyclictest-class-cpu0  the same with the measuring thread pinned to CPU 0
#              (cyclictest -a 0), where the centralized FIFO's global agent
#              lives.
# A scheduler POLICY@NAME (e.g. fifo-per-cpu@old) runs POLICY with the
# binaries ghost-agent-NAME and ghost-run-NAME instead (another build, put into
# the guest with GHOST_VM_FILES), to compare two builds in one run.
# The order is interleaved, round by round and program by program: for each
# program, every scheduler in turn (A B C D, A B C D, ...), so a host that gets
# slower or faster shifts all schedulers alike.
#
# Every cell starts its own ghost-agent (--stats) and stops it with SIGTERM,
# so the agent's counters are that program's: messages (the sum of 'agent cpu
# N: R rounds, M messages'), COMMITTED transactions, the per-CPU FIFO's
# migrations (AssociateQueue calls), fallback runs, dropped messages.
# The agent keeps the shipped --watchdog-ms (1000); the kernel's stall timeout
# is raised to 30 s (--agent-flags to change) so that a host stall of a few
# seconds (a loaded 2-core host running TCG) does not end the class.
#
# A cell fails when its program exits non-zero or prints no result, the class
# is ejected or the agent exits non-zero, or the agent placed nothing (under a
# policy: no run committed by it; under --policy=none: nothing placed by the
# class's FIFO). The other cells still run; the scenario then exits 1.
# Output: one 'CB-SAMPLE round sched metric value' line per measurement, one
# 'CB-STATS round sched prog ...' line per ghost cell, then the tables (median,
# spread, ratio to the default scheduler; only cells that passed) and the
# failed cells with their reasons, between CLIENTS-BENCH-TABLE-BEGIN and
# CLIENTS-BENCH-TABLE-END.
set -u
rounds=3
scheds="default none fifo-per-cpu fifo-centralized fifo-centralized-txn"
progs="affinity switch hackbench cyclictest cyclictest-class"
# Known besides the defaults: hogs, cyclictest-class-cpu0.
agent_flags="--kernel-timeout-ms=30000"
prog_timeout=600
for a in "$@"; do
  case "$a" in
    --rounds=*) rounds=${a#*=} ;;
    --scheds=*) scheds=${a#*=} ;;
    --progs=*) progs=${a#*=} ;;
    --agent-flags=*) agent_flags=${a#*=} ;;
    *) echo "FAIL: clients_bench: unknown argument '$a'"; exit 2 ;;
  esac
done
case "$rounds" in '' | *[!0-9]*) echo "FAIL: --rounds=$rounds is not a number"; exit 2 ;; esac
for p in $progs; do
  case "$p" in affinity | switch | hackbench | hogs | cyclictest | cyclictest-class | cyclictest-class-cpu0) ;;
    *) echo "FAIL: unknown program '$p'"; exit 2 ;; esac
done
for s in $scheds; do
  case "${s%%@*}" in default | none | fifo-per-cpu | fifo-per-cpu-commit | fifo-centralized | fifo-centralized-txn | fifo-centralized-spin) ;;
    scx_*@*) echo "FAIL: '$s': a peer takes no @NAME"; exit 2 ;;
    scx_*) command -v "$s" >/dev/null ||
             { echo "FAIL: '$s': no $s in the guest (make peers; put it in with vm.sh --file)"; exit 2; }
           continue ;;
    *) echo "FAIL: unknown scheduler '$s'"; exit 2 ;; esac
  case "$s" in
    default@*) echo "FAIL: '$s': the default scheduler has no binaries"; exit 2 ;;
    *@*) for b in ghost-agent ghost-run; do
           command -v "$b-${s#*@}" >/dev/null || { echo "FAIL: '$s': no $b-${s#*@} in the guest"; exit 2; }
         done ;;
  esac
done

samples=/tmp/samples
cell_samples=/tmp/cell.samples
failed_cells=/tmp/failed.cells
out=/tmp/prog.out
: >$samples
: >$failed_cells
failures=0
agent=""
peer=""
kind=default
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm  # cyclictest's shm_open
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || { echo "FAIL: a sched_ext class is already loaded"; exit 1; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

bad() {  # a failed cell: the reason and what the program and agent (or peer) said
  echo "FAIL: round $round: $sched: $prog: $*"
  echo "$round|$sched|$prog|$*" >>$failed_cells
  failures=$((failures + 1))
  [ -f $out ] && tail -n 20 $out | sed 's/^/  output: /'
  [ -f /tmp/agent.log ] && [ "$kind" = ghost ] && sed 's/^/  agent: /' /tmp/agent.log | tail -n 60
  if [ -f /tmp/peer.log ] && [ "$kind" = peer ]; then
    grep -v '^local=\|^\[SEQ\|^total  \|^timer  \|^overflow:' /tmp/peer.log | tail -n 40 | sed "s/^/  $sched: /"
    dmesg | grep -i 'sched_ext\|scx' | tail -n 10 | sed 's/^/  dmesg: /'
  fi
}
# A cell's samples count (go into the tables) only if the whole cell passed.
sample() { echo "CB-SAMPLE $round $sched $1 $2" | tee -a $cell_samples; }

start_agent() {
  i=0
  while [ "$(cat /sys/kernel/sched_ext/state)" != disabled ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { bad "sched_ext still $(cat /sys/kernel/sched_ext/state) 30 s after the last agent"; return 1; }
    sleep 0.1
  done
  # The shell truncates the log in the child: an old log must not be read
  # as this agent's start.
  rm -f /tmp/agent.log
  # shellcheck disable=SC2086
  local policy_flags="--policy=$policy"
  [ "$policy" = fifo-centralized ] && policy_flags="--policy=fifo-centralized --fast-path=on"
  [ "$policy" = fifo-centralized-txn ] && policy_flags="--policy=fifo-centralized --fast-path=off"
  [ "$policy" = fifo-per-cpu-commit ] && policy_flags="--policy=fifo-per-cpu --pinned-push=off"
  [ "$policy" = fifo-centralized-spin ] &&
    policy_flags="--policy=fifo-centralized --fast-path=on --ring-depth=idle --agent-sleep-us=0"
  # shellcheck disable=SC2086
  $agent_bin $policy_flags --stats $agent_flags >/tmp/agent.log 2>&1 &
  agent=$!
  i=0
  while ! grep -qs 'ghost-agent: \(policy\|class\)' /tmp/agent.log; do
    kill -0 $agent 2>/dev/null || { wait $agent; bad "ghost-agent exited $? at start"; agent=""; return 1; }
    i=$((i + 1)); [ $i -gt 600 ] && { bad "ghost-agent did not start within 60 s"; return 1; }
    sleep 0.1
  done
}

# Stops the agent and reports its counters for this cell; non-zero (and a
# failure) if the class was ejected, the agent failed or it placed nothing.
stop_agent() {
  a=$agent
  agent=""
  if ! kill -0 $a 2>/dev/null; then
    wait $a
    bad "ghost-agent exited $? during the program (the class ejected?)"
    return 1
  fi
  kill -TERM $a
  wait $a
  rc=$?
  [ $rc = 0 ] || { bad "ghost-agent exited $rc"; return 1; }
  l=/tmp/agent.log
  sed -n 's/^ghost-agent: \(stats\|runs\|transactions\|pinned push\|hand-over\|policy [a-z-]*\|agent cpu [0-9]*\): /  agent: \1: /p' $l
  msgs=$(sed -n 's/^ghost-agent: agent cpu [0-9]*: [0-9]* rounds, \([0-9]*\) messages.*/\1/p' $l |
    awk '{s += $1; n++} END {print n ? s : "-"}')
  committed=$(sed -n 's/^ghost-agent: transactions: .* COMMITTED=\([0-9]*\).*/\1/p' $l)
  migrations=$(sed -n 's/^ghost-agent: policy fifo-per-cpu: .* migrations=\([0-9]*\).*/\1/p' $l)
  fallback=$(sed -n 's/^ghost-agent: runs: .* fallback=\([0-9]*\).*/\1/p' $l)
  # The agent's placements: committed, ring and pinned-push runs (handed-over included).
  agent_runs=$( (sed -n 's/^ghost-agent: runs: committed=\([0-9]*\).* ring=\([0-9]*\)$/\1 \2/p' $l
    sed -n 's/^ghost-agent: pinned push: pushes=[0-9]* runs=\([0-9]*\)$/\1/p' $l) |
    awk '{for (i = 1; i <= NF; i++) s += $i} END {print s + 0}')
  dropped=$(sed -n 's/^ghost-agent: stats: .* msgs_dropped=\([0-9]*\).*/\1/p' $l)
  fifo=$(sed -n 's/^ghost-agent: stats: enqueued=\([0-9]*\) dispatched=[0-9]* direct=\([0-9]*\).*/\1 \2/p' $l |
    awk '{print $1 + $2}')
  [ -n "$fallback" ] && [ -n "$dropped" ] && [ -n "$fifo" ] ||
    { bad "no --stats in the agent's output"; return 1; }
  if [ "$policy" = none ]; then
    committed=- migrations=-
    [ "$fifo" -gt 0 ] || { bad "the class's FIFO placed nothing: the program did not run in the class"; return 1; }
  else
    case "$policy" in fifo-per-cpu | fifo-per-cpu-commit) ;; *) migrations=- ;; esac
    [ "${agent_runs:-0}" -gt 0 ] || { bad "the agent committed no run: it did not schedule the program"; return 1; }
  fi
  echo "CB-STATS $round $sched $prog ${msgs:--} ${committed:-0} $migrations $fallback $dropped" | tee -a $samples
}

sx_state() { cat /sys/kernel/sched_ext/state; }
# The loaded scheduler's name ('want' if the kernel has no root/ops file).
sx_ops() { if [ -e /sys/kernel/sched_ext/root/ops ]; then cat /sys/kernel/sched_ext/root/ops; else echo "$want"; fi; }
sx_seq() { cat /sys/kernel/sched_ext/enable_seq 2>/dev/null; }

# Starts peer $sched (the kernel's example scheduler) as the system's
# scheduler and waits until sched_ext says it is enabled under its name.
start_peer() {
  i=0
  while [ "$(sx_state)" != disabled ]; do
    i=$((i + 1)); [ $i -gt 300 ] && { bad "sched_ext still $(sx_state) 30 s after the last scheduler"; return 1; }
    sleep 0.1
  done
  rm -f /tmp/peer.log
  seq0=$(sx_seq)
  $sched >/tmp/peer.log 2>&1 &
  peer=$!
  want=${sched#scx_}
  i=0
  while [ "$(sx_state)" != enabled ] || [ "$(sx_ops)" != "$want" ]; do
    if ! kill -0 $peer 2>/dev/null; then
      wait $peer; rc=$?; peer=""
      bad "$sched exited $rc before sched_ext was enabled (state $(sx_state)): it did not load"
      return 1
    fi
    i=$((i + 1))
    if [ $i -gt 600 ]; then
      bad "$sched not enabled within 60 s (state $(sx_state), ops '$(sx_ops)')"
      stop_peer_quietly
      return 1
    fi
    sleep 0.1
  done
  peer_seq=$(sx_seq)
  [ -z "$seq0" ] || [ "$peer_seq" = $((seq0 + 1)) ] || echo "note: enable_seq went $seq0 -> $peer_seq while $sched started"
}

stop_peer_quietly() {  # after a failure: SIGINT, then SIGKILL after 30 s
  [ -n "$peer" ] || return 0
  kill -INT $peer 2>/dev/null
  i=0
  while kill -0 $peer 2>/dev/null && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
  kill -KILL $peer 2>/dev/null
  wait $peer 2>/dev/null
  peer=""
}

# Checks the peer scheduled the whole cell (still running, still enabled under
# its name, not re-enabled) and stops it with SIGINT; non-zero (and a failure)
# otherwise, with the peer's exit report (its 'EXIT: reason' lines).
stop_peer() {
  p=$peer
  st=$(sx_state) ops=$(sx_ops) seq=$(sx_seq)
  if ! kill -0 $p 2>/dev/null; then
    wait $p; rc=$?; peer=""
    bad "$sched exited $rc during the program (sched_ext $st): ejected; its report: $(grep -m1 '^EXIT' /tmp/peer.log)"
    return 1
  fi
  if [ "$st" != enabled ] || [ "$ops" != "$want" ] || [ "$seq" != "$peer_seq" ]; then
    bad "sched_ext is '$st' (ops '$ops', enable_seq $peer_seq -> $seq) at the end of the program: $sched was ejected"
    stop_peer_quietly
    return 1
  fi
  kill -INT $p
  i=0
  while kill -0 $p 2>/dev/null || [ "$(sx_state)" != disabled ]; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      bad "$sched still running or sched_ext still $(sx_state) 30 s after SIGINT"
      stop_peer_quietly
      return 1
    fi
    sleep 0.1
  done
  wait $p
  rc=$?
  peer=""
  [ $rc = 0 ] || { bad "$sched exited $rc after SIGINT"; return 1; }
  # Its last counters (scx_userland: tasks enqueued in BPF vs in user space).
  case "$sched" in
    scx_userland) n=14 ;; scx_central) n=5 ;; *) n=2 ;;
  esac
  grep -v '^$' /tmp/peer.log | tail -n $n | sed "s/^/  $sched: /"
}

# The bogo ops of stressor $1 in $out (stress-ng --metrics-brief).
stress_ops() { awk -v s="$1" '$2 == "metrc:" && $4 == s && $5 ~ /^[0-9]+$/ {print $5; exit}' $out; }
stress_done() { grep -q 'successful run completed' $out || { bad "stress-ng did not report a successful run"; return 1; }; }
hackbench_time() { sed -n 's/^Time: \([0-9.]*\)$/\1/p' "$1" | head -1; }
# The policy (0 other, 1 fifo, 7 ext) of every thread of process $1 but the first.
worker_policies() {
  for t in /proc/$1/task/*; do
    [ "${t##*/}" = "$1" ] && continue
    sed -n 's/^policy *: *\([0-9]*\)$/\1/p' $t/sched 2>/dev/null
  done
}
ext_threads() { grep -lE '^policy +: +7$' /proc/$1/task/*/sched 2>/dev/null | wc -l; }

# stress_cell STRESSOR ARGS...: stress-ng ARGS under the scheduler; its
# STRESSOR's bogo ops are the sample PROG:bogo-ops.
stress_cell() {
  stressor=$1
  shift
  # shellcheck disable=SC2086
  timeout $prog_timeout $runner stress-ng "$@" --metrics-brief --temp-path /tmp >$out 2>&1 ||
    { bad "stress-ng exited $?"; return 1; }
  stress_done || return 1
  ops=$(stress_ops "$stressor")
  [ -n "$ops" ] || { bad "no $stressor metrics"; return 1; }
  sample "$prog:bogo-ops" "$ops"
}
run_affinity() { stress_cell affinity --affinity 2 --timeout 4s; }
run_hogs() { stress_cell cpu --cpu 8 --timeout 5s; }

run_switch() {
  # shellcheck disable=SC2086
  $runner sh -c 'while :; do :; done' &
  hog=$!
  # shellcheck disable=SC2086
  timeout $prog_timeout $runner hackbench -g 4 -l 200 >$out.hb 2>&1 &
  hb=$!
  # shellcheck disable=SC2086
  timeout $prog_timeout $runner stress-ng --switch 1 --timeout 8s --metrics-brief \
    --temp-path /tmp >$out 2>&1
  src=$?
  wait $hb
  hrc=$?
  kill -KILL $hog
  wait $hog 2>/dev/null
  cat $out.hb >>$out
  [ $src = 0 ] || { bad "stress-ng exited $src"; return 1; }
  [ $hrc = 0 ] || { bad "hackbench exited $hrc"; return 1; }
  stress_done || return 1
  ops=$(stress_ops switch)
  t=$(hackbench_time $out.hb)
  [ -n "$ops" ] && [ -n "$t" ] || { bad "no switch metrics or no hackbench time"; return 1; }
  sample switch:bogo-ops "$ops"
  sample switch:hackbench-s "$t"
}

run_hackbench() {
  # shellcheck disable=SC2086
  timeout $prog_timeout $runner hackbench -g 4 -l 200 >$out 2>&1 || { bad "hackbench exited $?"; return 1; }
  t=$(hackbench_time $out)
  [ -n "$t" ] || { bad "no hackbench time"; return 1; }
  sample hackbench:s "$t"
}

# cyclictest_cell MOVE [CPU]: runs cyclictest (MOVE=1: moves its measuring
# thread back into the class once it has left it; CPU: pinned there) and
# samples Avg and Max.
cyclictest_cell() {
  move=$1
  cpu=${2:-}
  name=cyclictest
  [ "$move" = 1 ] && name=cyclictest-class
  pin=""
  [ -n "$cpu" ] && { pin="-a $cpu"; name=$name-cpu$cpu; }
  t0=$(uptime_s)
  # shellcheck disable=SC2086
  timeout $prog_timeout $runner cyclictest -t1 $pin -i 1000 -D 4 -q >$out 2>&1 &
  c=$!
  where=""
  if [ "$kind" = peer ]; then
    # Every thread should be in sched_ext (/proc/PID/sched: ext.enabled).
    i=0
    while [ "$(ls /proc/$c/task 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 600 ] && kill -0 $c 2>/dev/null; do
      i=$((i + 1)); sleep 0.05
    done
    in_ext=$(grep -lE '^ext\.enabled +: +1$' /proc/$c/task/*/sched 2>/dev/null | wc -l)
    where="measuring thread's policy $(worker_policies $c); threads in sched_ext: $in_ext of $(ls /proc/$c/task 2>/dev/null | wc -l)"
  elif [ "$kind" = ghost ]; then
    # The measuring thread exists and has set its own policy (not 7).
    i=0
    while pol=$(worker_policies $c); [ -z "$pol" ] || [ "$pol" = 7 ]; do
      i=$((i + 1))
      if [ $i -gt 600 ] || ! kill -0 $c 2>/dev/null; then
        kill $c 2>/dev/null; wait $c; bad "cyclictest's measuring thread never set its policy"; return 1
      fi
      sleep 0.05
    done
    if [ "$move" = 1 ]; then
      t1=$(uptime_s)
      $run_bin --pid=$c >/tmp/move.out 2>&1 || { cat /tmp/move.out >>$out; kill $c; wait $c; bad "ghost-run --pid failed"; return 1; }
      t2=$(uptime_s)
      where="measuring thread (policy $pol) seen $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s after the start, moved into the class $(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.2f", b - a}') s later;"
    else
      where="measuring thread's policy $pol;"
    fi
    where="$where threads in the class: $(ext_threads $c) of $(ls /proc/$c/task | wc -l)"
  fi
  wait $c
  rc=$?
  [ $rc = 0 ] || { bad "cyclictest exited $rc"; return 1; }
  line=$(grep '^T: *0 ' $out)
  avg=$(echo "$line" | sed -n 's/.*Avg: *\([0-9]*\).*/\1/p')
  max=$(echo "$line" | sed -n 's/.*Max: *\([0-9]*\).*/\1/p')
  [ -n "$avg" ] && [ -n "$max" ] || { bad "no cyclictest summary"; return 1; }
  [ -z "$where" ] || echo "CB-NOTE $round $sched $name: $where"
  sample $name:avg-us "$avg"
  sample $name:max-us "$max"
}
run_cyclictest() { cyclictest_cell 0; }
run_cyclictest_class() { cyclictest_cell 1; }
run_cyclictest_class_cpu0() { cyclictest_cell 1 0; }

echo "clients_bench: agent flags: --stats $agent_flags"
start=$(uptime_s)
round=1
while [ $round -le "$rounds" ]; do
  for prog in $progs; do
    for sched in $scheds; do
      # POLICY@NAME: POLICY with ghost-agent-NAME and ghost-run-NAME.
      policy=${sched%%@*} agent_bin=ghost-agent run_bin=ghost-run runner=""
      case "$sched" in *@*) agent_bin=ghost-agent-${sched#*@} run_bin=ghost-run-${sched#*@} ;; esac
      case "$sched" in default) kind=default ;; scx_*) kind=peer ;; *) kind=ghost ;; esac
      : >$cell_samples
      if [ $kind = ghost ]; then
        start_agent || continue
        runner="$run_bin --"
      elif [ $kind = peer ]; then
        start_peer || continue
      fi
      c0=$(uptime_s)
      ok=1
      case $prog in
        cyclictest-class) run_cyclictest_class || ok=0 ;;
        cyclictest-class-cpu0) run_cyclictest_class_cpu0 || ok=0 ;;
        *) run_$prog || ok=0 ;;
      esac
      if [ $kind = ghost ]; then
        if [ $ok = 1 ]; then stop_agent || ok=0
        elif [ -n "$agent" ]; then kill -TERM $agent; wait $agent; agent=""; fi
      elif [ $kind = peer ]; then
        if [ $ok = 1 ]; then stop_peer || ok=0; else stop_peer_quietly; fi
      fi
      [ $ok = 1 ] && cat $cell_samples >>$samples
      echo "cell: round $round $prog $sched: $(awk -v a="$c0" -v b="$(uptime_s)" 'BEGIN {printf "%.0f", b - a}') s"
    done
  done
  round=$((round + 1))
done
echo "clients_bench: $rounds round(s) in $(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN {printf "%.0f", b - a}') s (guest time)"

# --- tables --------------------------------------------------------------------
echo CLIENTS-BENCH-TABLE-BEGIN
awk -v scheds="$scheds" '
  function sort(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  }
  function median(list,   a, n) {  # of space-separated numbers; "-" if none
    n = split(list, a, " ")
    if (n == 0) return "-"
    sort(a, n)
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function spread(list,   a, n) {
    n = split(list, a, " ")
    if (n == 0) return "-"
    sort(a, n)
    return num(a[1]) "-" num(a[n])
  }
  function num(x) {
    if (x == "-") return x
    if (x + 0 >= 100 || x == int(x)) return sprintf("%d", x + 0.5)
    return sprintf(x + 0 >= 10 ? "%.1f" : "%.3g", x)
  }
  function ratio(x) { return x == "-" ? "-" : sprintf("%.2f", x) }
  $1 == "CB-SAMPLE" {
    r = $2; s = $3; m = $4
    if (!(m in seen)) { seen[m] = 1; metrics[++nm] = m }
    val[r, s, m] = $5
    vals[s, m] = vals[s, m] " " $5
    rounds[r] = 1
  }
  $1 == "CB-STATS" {
    r = $2; s = $3; p = $4
    if (!(p in pseen)) { pseen[p] = 1; progs[++np] = p }
    has[s, p] = 1
    for (i = 5; i <= 9; i++) if ($i != "-") st[s, p, i] = st[s, p, i] " " $i
    stat[r, s, p, 5] = $5; stat[r, s, p, 6] = $6; stat[r, s, p, 7] = $7; stat[r, s, p, 8] = $8
  }
  END {
    ns = split(scheds, S, " ")
    npeer = 0
    for (j = 1; j <= ns; j++) if (S[j] ~ /^scx_/) npeer++
    if (npeer) {
      print "| program: measure | scheduler | median | min-max | / default (median of rounds) | / default (min-max) | / best peer (medians) |"
      print "|---|---|---:|---:|---:|---:|---:|"
    } else {
      print "| program: measure | scheduler | median | min-max | / default (median of rounds) | / default (min-max) |"
      print "|---|---|---:|---:|---:|---:|"
    }
    for (k = 1; k <= nm; k++) {
      m = metrics[k]
      # The best peer: highest bogo ops, lowest time or latency (median).
      best = ""; bestv = ""
      for (j = 1; j <= ns; j++) {
        s = S[j]
        if (s !~ /^scx_/ || !((s, m) in vals)) continue
        v = median(vals[s, m])
        if (best == "" || (m ~ /bogo-ops$/ ? v + 0 > bestv + 0 : v + 0 < bestv + 0)) { best = s; bestv = v }
      }
      if (best != "") bestof = bestof (bestof == "" ? "" : "; ") m ": " best
      for (j = 1; j <= ns; j++) {
        s = S[j]
        if (!((s, m) in vals)) continue
        rl = ""
        for (r in rounds)
          if (((r, s, m) in val) && ((r, "default", m) in val) && val[r, "default", m] > 0)
            rl = rl " " val[r, s, m] / val[r, "default", m]
        if (s == "default") rl = ""
        bp = ""
        if (npeer) bp = " " ((best != "" && bestv > 0) ? ratio(median(vals[s, m]) / bestv) : "-") " |"
        print "| " m " | " s " | " num(median(vals[s, m])) " | " spread(vals[s, m]) " | " \
          (rl == "" ? "-" : ratio(median(rl))) " | " (rl == "" ? "-" : spread2(rl)) " |" bp
      }
    }
    if (npeer) { print ""; print "Best peer per measure: " (bestof == "" ? "none (no peer cell passed)" : bestof) "." }
    print ""
    print "| program | scheduler | messages | COMMITTED | migrations | fallback runs | dropped messages |"
    print "|---|---|---:|---:|---:|---:|---:|"
    for (k = 1; k <= np; k++) {
      p = progs[k]
      for (j = 1; j <= ns; j++) {
        s = S[j]
        if (!((s, p) in has)) continue
        line = "| " p " | " s
        for (i = 5; i <= 9; i++) line = line " | " (((s, p, i) in st) ? num(median(st[s, p, i])) : "-")
        print line " |"
      }
    }
    print ""
    print "| affinity, per bogo op | scheduler | messages | COMMITTED | migrations | fallback runs |"
    print "|---|---|---:|---:|---:|---:|"
    for (j = 1; j <= ns; j++) {
      s = S[j]
      if (s == "default" || s ~ /^scx_/ || !((s, "affinity:bogo-ops") in vals)) continue
      line = "| affinity | " s
      for (i = 5; i <= 8; i++) {
        rl = ""
        for (r in rounds)
          if (((r, s, "affinity", i) in stat) && stat[r, s, "affinity", i] != "-" && val[r, s, "affinity:bogo-ops"] > 0)
            rl = rl " " stat[r, s, "affinity", i] / val[r, s, "affinity:bogo-ops"]
        line = line " | " (rl == "" ? "-" : sprintf("%.2f", median(rl)))
      }
      print line " |"
    }
  }
  function spread2(list,   a, n) {
    n = split(list, a, " ")
    sort(a, n)
    return sprintf("%.2f-%.2f", a[1], a[n])
  }
' $samples
if [ -s $failed_cells ]; then
  echo
  echo "Failed cells (their samples are left out of the tables above):"
  echo
  echo "| round | scheduler | program | reason |"
  echo "|---:|---|---|---|"
  awk -F'|' '{ r = $4; for (i = 5; i <= NF; i++) r = r "|" $i; gsub(/\|/, "\\|", r); print "| " $1 " | " $2 " | " $3 " | " r " |" }' $failed_cells
fi
echo CLIENTS-BENCH-TABLE-END
if [ $failures -gt 0 ]; then
  echo "FAIL: clients_bench: $failures cell(s) failed"
  exit 1
fi
echo "PASS: clients_bench: every program exited 0 under every scheduler, the class (and every peer) was never ejected"
