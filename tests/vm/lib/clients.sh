# Debian's own programs under ghost-run, for one ghost-agent policy. Sourced by
# tests/vm/scenarios/clients_*.sh (vm.sh --file puts it in the guest's /bin),
# which call `run_clients POLICY [ghost-agent flags]` with fifo-per-cpu,
# fifo-centralized or none (the class alone: its FIFO runs the threads).
#
# The programs: rt-tests' cyclictest (its threads as it pins them, pinned with
# -a to CPU 0, where the centralized policy's global agent spins, and pinned
# off CPU 0) and hackbench (processes, threads), and stress-ng with the cpu,
# fork, clone, affinity, futex, switch, timer stressors (bounded by an ops
# count each), the affinity stressor again alone, and sem, yield (bounded by
# --timeout: stress-ng 0.15 keeps these two running past their ops count until
# its timeout), and cpu with twice as many hogs as CPUs for 8 s (longer than
# the 5 s watchdog: each hog must get its turn from the slice), pthread (up
# to 2,048 threads, 5 s), and under fifo-per-cpu one hog alone (its slice must
# be renewed in place, not committed anew). For each program:
#  - it exits 0 and prints its own success report (cyclictest: a summary per
#    thread with its cycle count; hackbench: its Time line; stress-ng:
#    "successful run completed", and at least the ops asked for);
#  - the class is still enabled and ghost-agent still runs;
#  - every thread it made has ended: no live thread in the guest is SCHED_EXT,
#    and the class holds no status word of a live thread (class_probe);
#  - under a policy, the agent placed the work: its runs were committed by the
#    agent (more than 0) or resumed after a higher class took the CPU for a
#    moment, never the fallback's (no fault is injected: a fallback run is a
#    thread that waited --watchdog-ms, here 5 s, for its agent, or ran on a CPU
#    the kernel's ext server lent to sched_ext). One exception, counted apart:
#    runs in the time the kernel lends sched_ext a CPU that a higher class held
#    for about a second (docs/FALLBACK.md, step 6). With --policy=none the class's FIFO
#    placed them and no enclave run happened.
# It prints each program's placements, and ghost-agent's --stats at the end.
# A failed check is reported and the next program still runs, except when the
# class or agent is gone, or the agent placed nothing at all (its commit path
# is broken: the rest would only crawl through the fallback). Nothing is timed: every program runs for a bounded amount of work or time,
# and TCG makes times meaningless.
set -u
# A thread the agent has not placed within 5 s is a failure; the shipped 1 s
# watchdog (and 5 s stall timeout) is a latency bound that TCG on a loaded CI
# host cannot keep: a host stall of a second ages every waiting thread by a
# second, and the fallback would take them, agent or no agent.
slow_host="--kernel-timeout-ms=30000 --watchdog-ms=5000"
policy=""
failures=0
out=/tmp/client.out

agent_log() { [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; }
# The class or its agent is gone: nothing after this can be judged.
fatal() {
  echo "FAIL: $policy: $*"
  [ -f $out ] && tail -n 40 $out | sed 's/^/  output: /'
  [ -n "${agent:-}" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent"
  agent_log
  exit 1
}
bad() {  # a failed check; the next programs still run
  echo "FAIL: $policy: $*"
  failures=$((failures + 1))
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# The class's pinned counters (class_probe --print), read into $probe_out.
snapshot() { probe_out=$(class_probe --print 2>&1) || fatal "class_probe: $probe_out"; }
counter() { echo "$probe_out" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }

# Live threads in the guest that are SCHED_EXT (policy 7), one "tid comm" a line.
ext_threads() {
  for s in $(grep -lE '^policy +: +7$' /proc/[0-9]*/task/[0-9]*/sched 2>/dev/null); do
    d=${s%/sched}
    case "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "$d/status" 2>/dev/null)" in
      Z | X | "") continue ;;  # ended (a zombie) or gone meanwhile
    esac
    echo "${d##*/} $(cat "$d/comm" 2>/dev/null)"
  done
}

# After a program: every thread it made ends, in the guest and in the class's
# books (a status word is freed when the class sends TASK_DEAD/DEPARTED).
# Waits up to 30 s: exits are asynchronous.
threads_ended() {
  i=0
  while :; do
    left=$(ext_threads)
    snapshot
    live=$(counter live_threads)
    [ -z "$left" ] && [ "$live" = 0 ] && return 0
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      bad "$1: threads did not end: $(echo $left | head -c 300) (status words of live threads: $live)"
      return 1
    fi
    sleep 0.1
  done
}

class_alive() {
  [ "$(cat /sys/kernel/sched_ext/state)" = enabled ] ||
    fatal "$1: the class is no longer enabled ($(cat /sys/kernel/sched_ext/state))"
  kill -0 "$agent" 2>/dev/null || fatal "$1: ghost-agent died"
}

# client LABEL CHECK CMD...: runs CMD (which starts the program under
# ghost-run), then CHECK (reads $out; prints a reason and returns 1 if the
# program's own report is not a success), then the checks above.
client() {
  label=$1 check=$2
  shift 2
  snapshot
  agent0=$(counter runs_by_agent) fb0=$(counter runs_by_fallback)
  res0=$(counter runs_resumed) fifo0=$(counter fifo_placements)
  wd0=$(counter watchdog_moves) st0=$(counter starved_runs) sp0=$(counter starved_pinned) la0=$(counter starved_agent_cpu)
  t0=$(uptime_s)
  "$@" >$out 2>&1
  rc=$?
  t1=$(uptime_s)
  class_alive "$label"
  ok=1
  if [ $rc != 0 ]; then
    bad "$label: exit $rc"
    ok=0
  elif ! why=$($check); then
    bad "$label: $why"
    ok=0
  fi
  threads_ended "$label" || ok=0
  snapshot
  agent_runs=$(($(counter runs_by_agent) - agent0))
  fb_runs=$(($(counter runs_by_fallback) - fb0))
  resumed=$(($(counter runs_resumed) - res0))
  fifo=$(($(counter fifo_placements) - fifo0))
  lent_pinned=$(($(counter starved_pinned) - sp0))
  lent_agent=$(($(counter starved_agent_cpu) - la0))
  lent=$(($(counter starved_runs) - st0))
  placed="runs placed by the agent $agent_runs, resumed $resumed, fallback $fb_runs, FIFO $fifo"
  [ $fb_runs = 0 ] || placed="$placed; the fallback's: watchdog moves (waited 5 s) \
$(($(counter watchdog_moves) - wd0)), runs on a CPU the ext server lent $lent \
(on the global agent's CPU: $lent_agent; of threads allowed there only: $lent_pinned)"
  if [ "$policy" = none ]; then
    [ $fifo -gt 0 ] || { bad "$label: the class's FIFO placed nothing ($placed)"; ok=0; }
    [ $agent_runs = 0 ] && [ $fb_runs = 0 ] && [ $resumed = 0 ] ||
      { bad "$label: enclave runs without an enclave ($placed)"; ok=0; }
  else
    # Nothing placed at all: the commit path is broken, and the next programs
    # would only crawl through the fallback (a --watchdog-ms wait per run).
    [ $agent_runs -gt 0 ] || fatal "$label: the agent placed nothing ($placed)"
    # The one exception: runs in the time the kernel's ext server lends
    # sched_ext a CPU that a higher class (the global agent, a kernel thread)
    # held for about a second (docs/FALLBACK.md, step 6: the kernel's share).
    [ $((fb_runs - lent)) = 0 ] ||
      { bad "$label: $((fb_runs - lent)) runs were the fallback's, not the agent's ($placed)"; ok=0; }
  fi
  if [ $ok = 1 ]; then
    echo "PASS: $policy: $label: exit 0, $(summary_$check), every thread ended; $placed (${t0%.*}-${t1%.*} s)"
  else
    tail -n 30 $out | sed 's/^/  output: /'
    echo "  counters: $probe_out"
  fi
}

# --- the programs' own reports ---------------------------------------------
cyclictest_ok() {  # every one of $threads threads reports cycles
  n=$(grep -c '^T: *[0-9]' $out)
  [ "$n" = "$threads" ] || { echo "cyclictest reported $n threads, want $threads"; return 1; }
  if grep '^T: *[0-9]' $out | sed 's/.* C: *\([0-9]*\).*/\1/' | grep -qx 0; then
    echo "a cyclictest thread made no cycle"; return 1
  fi
}
summary_cyclictest_ok() {
  echo "cycles $(grep '^T: *[0-9]' $out | sed 's/.* C: *\([0-9]*\).*/\1/' | tr '\n' ' ' | sed 's/ $//')"
}
hackbench_ok() { grep -q '^Time: [0-9]' $out || { echo "no 'Time:' line from hackbench"; return 1; }; }
summary_hackbench_ok() { grep '^Time:' $out; }
# stress-ng's metrics: every stressor in $want ("name:ops", ops 0: bounded by
# --timeout, any progress) reports at least its ops.
stress_ok() {
  grep -q 'successful run completed' $out || { echo "no 'successful run completed'"; return 1; }
  for w in $want; do
    name=${w%%:*} ops=${w#*:}
    got=$(sed -n "s/^stress-ng: metrc: \[[0-9]*\] $name  *\([0-9][0-9]*\) .*/\1/p" $out | head -1)
    [ -n "$got" ] || { echo "no metrics for stressor $name"; return 1; }
    [ "$got" -ge "$ops" ] && [ "$got" -gt 0 ] ||
      { echo "stressor $name did $got bogo ops, want at least $ops (and more than 0)"; return 1; }
  done
}
summary_stress_ok() {
  s=""
  for w in $want; do
    name=${w%%:*}
    s="$s $name=$(sed -n "s/^stress-ng: metrc: \[[0-9]*\] $name  *\([0-9][0-9]*\) .*/\1/p" $out | head -1)"
  done
  if [ -n "$s" ]; then echo "bogo ops:$s"; else echo "successful run completed"; fi
}

# hogs_sampled CMD...: runs CMD (stress-ng with CPU hogs), and 6 s in prints
# each of its children's CPU time so far (utime + stime, in ticks).
hogs_sampled() {
  "$@" &
  p=$!
  sleep 6
  times=""
  for c in $(cat /proc/$p/task/*/children 2>/dev/null); do
    times="$times $(awk '{print $14 + $15}' /proc/$c/stat 2>/dev/null)"
  done
  wait $p
  rc=$?
  echo "hog CPU times at 6 s (ticks):$times"
  return $rc
}
# stress_ok, and the hogs took turns: at 6 s every one of the $hogs hogs had
# at least a quarter of the busiest one's CPU time. A hog left waiting behind
# one that never blocks gets only what a passing preemption gives it.
hogs_fair_ok() {
  stress_ok || return 1
  awk -v want="$hogs" '/^hog CPU times at 6 s/ {
      n = 0; min = -1; max = 0
      for (i = 8; i <= NF; i++) { n++; if (min < 0 || $i < min) min = $i; if ($i > max) max = $i }
      found = 1
    }
    END {
      if (!found || n < want) { printf "CPU times of %d hogs sampled, want %d\n", n, want; exit 1 }
      if (min * 4 < max) { printf "a hog had %d ticks of CPU at 6 s, the busiest %d: they did not take turns\n", min, max; exit 1 }
    }' $out
}
summary_hogs_fair_ok() { echo "$(summary_stress_ok); $(grep '^hog CPU times' $out)"; }

# cyclictest ARGS: rt-tests sets its measurement threads' policy itself (to
# SCHED_OTHER for the default priority 0) when they start and again when they
# end, which takes them out of SCHED_EXT. So the process starts under
# ghost-run, and once every measurement thread has set its policy, `ghost-run
# --pid` moves them all back into the class, where they stay until their
# measurement ends. Exits with cyclictest's status.
cyclictest_in_class() {
  ghost-run -- cyclictest "$@" &
  c=$!
  i=0
  while :; do
    n=0 set_policy=0
    for t in /proc/$c/task/*; do
      [ "${t##*/}" = "$c" ] && continue
      n=$((n + 1))
      grep -qE '^policy +: +0$' $t/sched 2>/dev/null && set_policy=$((set_policy + 1))
    done
    [ $n = "$threads" ] && [ $set_policy = "$threads" ] && break
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "cyclictest: $set_policy of $n threads set their policy (want $threads)"
      kill $c; wait $c; return 1
    fi
    sleep 0.1
  done
  ghost-run --pid=$c || { kill $c; wait $c; return 1; }
  in_class=$(grep -lE '^policy +: +7$' /proc/$c/task/*/sched | wc -l)
  wait $c
  rc=$?
  [ "$in_class" = $((threads + 1)) ] ||
    { echo "after ghost-run --pid, $in_class of $((threads + 1)) threads were SCHED_EXT"; return 1; }
  return $rc
}

run_clients() {
  policy=$1
  shift
  mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm  # cyclictest's shm_open
  [ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || fatal "sched_ext is not disabled at start"
  rm -f /tmp/agent.log  # else the wait below may read the previous agent's log
  ghost-agent --policy="$policy" --stats $slow_host "$@" >/tmp/agent.log 2>&1 &
  agent=$!
  i=0
  while ! grep -qs 'ghost-agent: \(policy\|class\)' /tmp/agent.log; do
    i=$((i + 1)); [ $i -gt 300 ] && fatal "ghost-agent did not start"
    kill -0 $agent 2>/dev/null || fatal "ghost-agent exited at start"
    sleep 0.1
  done
  class_alive start
  echo "$policy: $(head -1 /tmp/agent.log)"

  # cyclictest pins thread N to CPU N itself; -a 0: CPU 0 only (the global
  # agent's CPU under fifo-centralized); -a 1-3: never CPU 0.
  threads=2 client "cyclictest -t 2 -i 1000 -D 4 -q" cyclictest_ok \
    cyclictest_in_class -t 2 -i 1000 -D 4 -q
  threads=1 client "cyclictest -a 0 -t 1 -i 1000 -D 4 -q" cyclictest_ok \
    cyclictest_in_class -a 0 -t 1 -i 1000 -D 4 -q
  threads=3 client "cyclictest -a 1-3 -t 3 -i 1000 -D 4 -q" cyclictest_ok \
    cyclictest_in_class -a 1-3 -t 3 -i 1000 -D 4 -q
  client "hackbench -g 2 -l 50" hackbench_ok ghost-run -- hackbench -g 2 -l 50
  client "hackbench -T -g 2 -l 50" hackbench_ok ghost-run -- hackbench -T -g 2 -l 50
  want="cpu:20 fork:50 clone:50 affinity:500 futex:500 switch:500 timer:500"
  client "stress-ng cpu fork clone affinity futex switch timer (ops-bounded)" stress_ok \
    ghost-run -- stress-ng --cpu 2 --cpu-ops 20 --fork 2 --fork-ops 50 --clone 2 --clone-ops 50 \
    --affinity 2 --affinity-ops 500 --futex 2 --futex-ops 500 --switch 2 --switch-ops 500 \
    --timer 2 --timer-ops 500 --timer-freq 1000 --metrics-brief --timeout 300s --temp-path /tmp
  # Alone, so that its CPUs' agents have nothing else waiting and let the
  # class queue the movers itself (checked at the end).
  want="affinity:2000"
  client "stress-ng affinity alone (ops-bounded)" stress_ok \
    ghost-run -- stress-ng --affinity 2 --affinity-ops 2000 --metrics-brief --timeout 300s --temp-path /tmp
  want="sem:0 yield:0"
  client "stress-ng sem yield (--timeout 3s)" stress_ok \
    ghost-run -- stress-ng --sem 2 --yield 2 --metrics-brief --timeout 3s --temp-path /tmp
  # Twice as many CPU hogs as CPUs, for longer than the watchdog's 5 s: a hog
  # waiting behind one that never blocks gets the CPU at the slice's end (the
  # default --slice-us), not from the class's watchdog (a fallback run), and
  # the hogs take turns.
  want="cpu:0" hogs=$((2 * $(nproc)))
  [ "$policy" = none ] || class_probe --reset-wait-max --enclave=0 >/dev/null
  client "stress-ng cpu, twice the CPUs (--timeout 8s)" hogs_fair_ok \
    hogs_sampled ghost-run -- stress-ng --cpu $hogs --metrics-brief --timeout 8s --temp-path /tmp
  [ "$policy" = none ] || echo "$policy: hogs: longest wait $(class_probe --reset-wait-max --enclave=0)"
  # Up to 2,048 threads that mostly run (stress-ng's pthread stressor): with
  # no default slice, 80 of them once queued behind one thread that kept its
  # CPU under fifo-per-cpu (815-1,429 watchdog runs in 5 s, docs/OPERATING.md).
  want=""
  client "stress-ng pthread (up to 2,048 threads, --timeout 5s)" stress_ok \
    ghost-run -- stress-ng --pthread 2 --metrics-brief --timeout 5s --temp-path /tmp
  # One hog alone under fifo-per-cpu (its commits carry --slice-us): nothing
  # waits for its CPU, so the class gives it a new slice in place at each
  # slice's end (bpf/progs/slices.bpf.h) instead of sending it back to its
  # agent to be committed again.
  if [ "$policy" = fifo-per-cpu ]; then
    snapshot
    ren0=$(counter slice_renewals) com0=$(counter committed)
    want="cpu:0"
    client "stress-ng cpu, one hog alone (--timeout 2s)" stress_ok \
      ghost-run -- stress-ng --cpu 1 --metrics-brief --timeout 2s --temp-path /tmp
    snapshot
    ren=$(($(counter slice_renewals) - ren0)) com=$(($(counter committed) - com0))
    echo "$policy: one hog alone: slices renewed in place $ren, transactions committed $com"
    [ $ren -ge 20 ] && [ $com -lt $ren ] ||
      bad "one hog alone: $ren slices renewed in 2 s, $com commits: slices that ended with nothing waiting went back to the agent"
  fi

  class_alive end
  kill -TERM $agent
  wait $agent
  rc=$?
  agent=""
  [ $rc = 0 ] || fatal "ghost-agent exited $rc"
  sed -n 's/^ghost-agent: \(stats\|runs\|transactions\|slices\|fast path (class)\|policy [a-z-]*\): /\1: /p' /tmp/agent.log | sed "s/^/$policy: /"
  dropped=$(sed -n 's/.*msgs_dropped=\([0-9]*\).*/\1/p' /tmp/agent.log)
  [ "$dropped" = 0 ] || bad "messages dropped: ${dropped:-?} (the agent lost events)"
  # Both FIFOs' pinned push (on by default): cyclictest and the affinity
  # stressor pin threads to one CPU, so the class queued some on their CPU
  # itself, and they ran (bpf/progs/pinned.bpf.h). Without a policy nothing
  # asks for it, so the class never does it.
  case "$policy" in fifo-per-cpu | fifo-centralized | search) asks_pinned=1 ;; *) asks_pinned=0 ;; esac
  pinned=$(sed -n 's/^ghost-agent: pinned push: pushes=\([0-9]*\) runs=\([0-9]*\)$/\1 \2/p' /tmp/agent.log)
  echo "$policy: pinned push: pushes and runs: ${pinned:-none}"
  set -- $pinned
  if [ $asks_pinned = 1 ]; then
    [ "${1:-0}" -gt 0 ] && [ "${2:-0}" -gt 0 ] ||
      bad "pinned push: the class queued ${1:-0} pinned threads itself, ${2:-0} ran so"
  else
    [ "${1:-x}" = 0 ] ||
      bad "pinned push: the class queued ${1:-?} pinned threads itself for $policy, which never asked"
  fi
  # A thread that pins itself to another CPU (the affinity stressor does it
  # every op) is queued there by the class at that change, if the agent lets
  # it (nothing else waits for that CPU: the stressor alone does most of the
  # changes): the change's AFFINITY_CHANGED then says class-held and wakes no
  # agent. Reading the BPF prolog's own migrate_disable() of the current
  # thread as the thread's made none of them so (docs/FAST_PATH.md, "A thread
  # that moves itself").
  affinity=$(awk '/^ghost-agent: agent cpu [0-9]*: messages by type:/ {
      for (i = 1; i <= NF; i++) if ($i ~ /^TASK_AFFINITY_CHANGED=/) {
        split($i, kv, "="); all += kv[2]
        if ($(i + 1) == "(held") { h = $(i + 2); sub(/\)/, "", h); held += h }
      }
    } END { print all + 0, held + 0 }' /tmp/agent.log)
  echo "$policy: AFFINITY_CHANGED messages, all and class-held: $affinity"
  set -- $affinity
  if [ $asks_pinned = 1 ] && [ "$1" = 0 ]; then
    bad "no AFFINITY_CHANGED message counted (no 'messages by type' line in --stats?)"
  elif [ $asks_pinned = 1 ] && [ $(($2 * 4)) -lt "$1" ]; then
    bad "pinned push: $2 of $1 AFFINITY_CHANGED messages were class-held, want at least a quarter"
  elif [ $asks_pinned = 0 ] && [ "$2" != 0 ]; then
    bad "pinned push: $2 AFFINITY_CHANGED messages were class-held for $policy, which never asked"
  fi
  if [ $failures -gt 0 ]; then
    agent_log
    echo "$policy: $failures check(s) failed"
    exit 1
  fi
  echo "PASS: $policy: every program exited 0 under the class, every thread ended"
}
