# vm: --cpus 4 --prog hackbench --prog stress-ng --timeout 900
# Faults under load (issue 8, section 6): while Debian's hackbench (threads)
# and stress-ng (processes: switch, pipe, fork) run round after round
# in enclave 0, the agent is killed (kill -9) and replaced KILLS times, then
# live-upgraded (ghost-agent --upgrade) UPGRADES times; the new agents take
# turns through POLICIES (comma-separated; a successor may run another policy
# than the agent it replaces). Each cycle checks:
#  - before the fault, the live agent placed everything: the enclave's
#    fallback runs did not grow since the last takeover settled, and its
#    queues lost no message (a thread run by a CPU that a higher class held
#    for long, from its parking queue, is counted apart: e_starved);
#  - the class stays enabled with the same enable_seq (no second load);
#  - the new agent took enclave 0 over, rediscovered its threads and places
#    them (the enclave's committed runs grow);
#  - the longest wait of a runnable enclave thread over the cycle (the class
#    measures it: held_at -> ops.running) is reported; no timing is asserted.
# At the end every load round exited 0 with the counts it asked for (stress-ng's
# bogo ops, hackbench's own check of every message), no thread of the enclave
# is left, and SIGTERM unloads the class.
#   agent_faults.sh [KILLS] [UPGRADES] [POLICIES]   make test: 2 2 fifo-per-cpu;
#                                                   make soak: 20 20 fifo-per-cpu
set -u
kills=${1:-2}
upgrades=${2:-2}
policies=${3:-fifo-per-cpu}
t0=$(date +%s)
fail() {
  echo "FAIL: $*"
  for f in ${prev:-} ${log:-} /tmp/load.out; do [ -f $f ] && tail -40 $f | sed "s|^|  $f: |"; done
  class_probe --print --enclave=0 --count-threads | sed 's/^/  class: /'
  [ -n "${agent:-}" ] && kill -TERM $agent 2>/dev/null && wait $agent
  [ -n "${log:-}" ] && grep -E 'stats|runs|transactions|enclave 0|watchdog move|policy|agent cpu' $log | sed 's/^/  agent: /'
  exit 1
}
pass() { echo "PASS: [$(($(date +%s) - t0))s] $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
since() { echo "$1 $(up)" | awk '{printf "%.2f", $2 - $1}'; }
state() { cat /sys/kernel/sched_ext/state; }
enable_seq() { cat /sys/kernel/sched_ext/enable_seq; }
probe() { class_probe --print --enclave=0 | sed -n "s/.* $1=\([0-9]*\).*/\1/p; s/^$1=\([0-9]*\).*/\1/p"; }
wait_grep() {  # wait_grep FILE PATTERN TENTHS
  local n=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt "$3" ] && return 1; sleep 0.1
  done
}
wait_committed() {  # wait_committed N: the enclave's committed runs grow by N (60 s at most)
  local target=$(($(probe e_placed) + $1)) n=0
  while [ "$(probe e_placed)" -lt $target ]; do
    n=$((n + 1)); [ $n -gt 120 ] && return 1; sleep 0.5
  done
}
policy_of() {  # the policy of the Nth agent (0: the first)
  echo "$policies" | awk -F, -v n="$1" '{ print $((n % NF) + 1) }'
}
# The watchdog is long on purpose. In a TCG guest on a loaded 2-core host a
# live FIFO policy can leave a thread waiting 2-3 s (guest time) with nothing
# wrong; only a watchdog well above that makes "the fallback ran nothing while
# an agent lived" a sound check. It costs the handoffs nothing: a new agent
# lets the fallback run the enclave's waiting threads at once until its own
# agents run (ClearPreviousAgent). A thread a new agent failed to take over
# would wait the whole watchdog and then show up as a fallback run: each
# cycle watches for one at least that long before its check.
watchdog_ms=6000
agent_flags="--watchdog-ms=$watchdog_ms --kernel-timeout-ms=15000 --stats"

# The load: rounds until /tmp/stop; each round's programs must exit 0 and
# report what they were asked for. It runs in the enclave (ghost-run), and so
# does every thread and process it starts.
cat >/tmp/load.sh <<'EOF'
n=0
while [ ! -e /tmp/stop ]; do
  n=$((n + 1))
  hackbench -T -g 1 -f 4 -l 100 >/tmp/hb.out 2>&1 &
  hb=$!
  stress-ng --switch 1 --switch-ops 1000 --pipe 1 --pipe-ops 1000 --fork 1 --fork-ops 20 \
    --metrics-brief >/tmp/sng.out 2>&1
  src=$?
  wait $hb
  hrc=$?
  counts=$(awk '/miscellaneous metrics/ { exit }
    /metrc:/ && ($4 == "switch" || $4 == "pipe" || $4 == "fork") {
    printf "%s=%s ", $4, $5 }' /tmp/sng.out)
  if [ $hrc = 0 ] && grep -q '^Time:' /tmp/hb.out && [ $src = 0 ] &&
     grep -q 'successful run completed' /tmp/sng.out &&
     [ "$counts" = "switch=1000 pipe=1000 fork=20 " ]; then
    echo "round $n: ok: hackbench 8 threads x 100 messages; stress-ng $counts"
  else
    echo "round $n: FAILED: hackbench exit $hrc, stress-ng exit $src, counts '$counts'"
    sed 's/^/    /' /tmp/hb.out /tmp/sng.out
  fi
done
echo "done after $n rounds"
EOF

[ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' before the agent started"
# Every agent has its own log: an old agent still writes while the next starts.
log=/tmp/agent-0.log
ghost-agent --policy=$(policy_of 0) $agent_flags >$log 2>&1 &
agent=$!
wait_grep $log 'ghost-agent: policy' 300 || fail "the first agent did not start"
seq=$(enable_seq)
rm -f /tmp/stop
ghost-run -- sh /tmp/load.sh >/tmp/load.out 2>&1 &
load=$!
wait_committed 100 || fail "the first agent placed no load"
pass "agent ($(policy_of 0)) up, hackbench and stress-ng rounds running in enclave 0"

fb_settled=$(probe e_fallback)
max_kill=0 max_upgrade=0
cycles=$((kills + upgrades))
i=1
while [ $i -le $cycles ]; do
  if [ $i -le $kills ]; then kind=kill n=$i of=$kills; else kind=upgrade n=$((i - kills)) of=$upgrades; fi
  policy=$(policy_of $i)
  label="$kind $n/$of -> $policy"
  # The live agent places everything and loses nothing: a thread it missed
  # would have waited out the watchdog by now.
  sleep $((watchdog_ms / 1000 + 1))
  wait_committed 200 || fail "[$label] the agent stopped placing before the fault"
  fb=$(probe e_fallback) dropped=$(probe e_dropped)
  [ "$fb" = "$fb_settled" ] ||
    fail "[$label] the fallback ran $((fb - fb_settled)) runs of enclave 0 while its agent lived"
  [ "$dropped" = 0 ] || fail "[$label] the live agent's queues lost $dropped messages"
  kill -0 $load 2>/dev/null || fail "[$label] the load ended early: $(tail -3 /tmp/load.out)"
  prev=$log log=/tmp/agent-$i.log
  # The wait maximum restarts when the handoff does: at the kill, or when the
  # old agent says it hands over (the new one re-attaches before it asks).
  if [ $kind = kill ]; then
    class_probe --reset-wait-max --enclave=0 >/dev/null || fail "cannot reset the wait maximum"
    t=$(up)
    kill -9 $agent
    wait $agent 2>/dev/null
    ghost-agent --policy=$policy $agent_flags >$log 2>&1 &
    agent=$!
  else
    old=$agent
    ghost-agent --upgrade --policy=$policy $agent_flags >$log 2>&1 &
    agent=$!
    wait_grep $prev 'handing over' 600 || fail "[$label] the old agent was not asked to hand over"
    class_probe --reset-wait-max --enclave=0 >/dev/null || fail "cannot reset the wait maximum"
    t=$(up)
    wait $old; rc=$?
    [ $rc = 0 ] || fail "[$label] the old agent exited $rc handing over"
  fi
  wait_grep $log 'ghost-agent: policy' 600 || fail "[$label] the new agent did not start"
  took=$(since $t)
  [ "$(state)" = enabled ] && [ "$(enable_seq)" = "$seq" ] ||
    fail "[$label] state '$(state)', enable_seq $seq -> $(enable_seq)"
  grep -q 'taking enclave 0 over from its previous agent' $log ||
    fail "[$label] the new agent did not take enclave 0 over"
  found=$(sed -n 's/.*rediscovered \([0-9]*\) thread.*/\1/p' $log)
  [ "${found:-0}" -gt 0 ] || fail "[$label] the new agent rediscovered no thread"
  takeover=$(sed -n 's/.*ghost-agent: rediscovered \(.*\) from status words (\(.*\))/\1; \2/p' $log)
  wait_committed 100 || fail "[$label] the new agent placed nothing"
  # Waits that began in the handoff are over once the new agent places.
  sleep 1
  wait_us=$(probe e_wait_max_us)
  fb_settled=$(probe e_fallback)
  pass "[$label] new agent running ${took}s after the $kind; rediscovered $takeover; fallback runs meanwhile: $((fb_settled - fb)); longest wait of a runnable thread: $((wait_us / 1000)) ms"
  if [ $kind = kill ]; then
    [ $wait_us -gt $max_kill ] && max_kill=$wait_us
  else
    [ $wait_us -gt $max_upgrade ] && max_upgrade=$wait_us
  fi
  i=$((i + 1))
done

# After the last takeover, too, only the agent places work.
sleep $((watchdog_ms / 1000 + 1))
wait_committed 300 || fail "the last agent stopped placing"
fb=$(probe e_fallback) dropped=$(probe e_dropped)
[ "$fb" = "$fb_settled" ] || fail "the fallback ran $((fb - fb_settled)) runs after the last takeover"
[ "$dropped" = 0 ] || fail "the last agent's queues lost $dropped messages"
touch /tmp/stop
i=0
while kill -0 $load 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 1800 ] && fail "the load did not finish its last round within 180 s"; sleep 0.1
done
wait $load || fail "the load driver failed"
grep -q FAILED /tmp/load.out && fail "a load round failed: $(grep -A12 FAILED /tmp/load.out | head -30)"
rounds=$(grep -c ': ok:' /tmp/load.out)
grep -q "done after $rounds rounds" /tmp/load.out || fail "load rounds: $(tail -3 /tmp/load.out)"
left=$(class_probe --print --enclave=0 --count-threads | sed -n 's/.* e_threads=\([0-9]*\).*/\1/p')
[ "$left" = 0 ] || fail "${left:-?} threads of enclave 0 are left"
pass "all $rounds load rounds exited 0 with the counts they asked for ($(sed -n '1s/^round 1: ok: //p' /tmp/load.out)); no enclave thread is left; runs of a thread by a CPU a higher class held (not fallback runs): $(probe e_starved)"
pass "longest wait of a runnable thread in a handoff cycle: kill -9 $((max_kill / 1000)) ms over $kills cycles (--watchdog-ms=$watchdog_ms), upgrade $((max_upgrade / 1000)) ms over $upgrades cycles"

kill -TERM $agent
wait $agent; rc=$?
[ $rc = 0 ] || fail "the last agent exited $rc after SIGTERM"
i=0
while [ "$(state)" != disabled ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "state '$(state)' after SIGTERM"; sleep 0.1
done
pass "SIGTERM: the last agent unloaded the class ($(grep -o 'enclave 0: runs.*' $log))"
exit 0
