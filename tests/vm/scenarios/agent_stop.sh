# vm: --cpus 4 --prog hackbench --prog stress-ng --timeout 600
# SIGSTOP on the agent under load (issue 8, section 6), for both policies:
#  - stopped, the agent places nothing, and its enclave is served by the
#    class's fallback: every runnable thread runs within --watchdog-ms plus a
#    tolerance (the class measures each wait: held_at -> ops.running), and
#    nothing stalls (the class stays enabled, the load keeps completing
#    rounds);
#  - it stays stopped until its queues overflow; SIGCONT: the agent sees it
#    lost messages, starts its agents again from the status words (as a
#    successor would), places threads again, and the fallback runs stop
#    growing;
#  - the load's rounds all exit 0 with the counts they asked for.
# A stopped agent is not running: its CPUs (fifo-centralized's spinning
# global agent's too) are free for the fallback.
set -u
t0=$(date +%s)
fail() {
  echo "FAIL: $*"
  for f in ${log:-} /tmp/load.out; do [ -f $f ] && tail -30 $f | sed "s|^|  $f: |"; done
  class_probe --print --enclave=0 | sed 's/^/  class: /'
  exit 1
}
pass() { echo "PASS: [$(($(date +%s) - t0))s $policy] $*"; }
state() { cat /sys/kernel/sched_ext/state; }
probe() { class_probe --print --enclave=0 | sed -n "s/.* $1=\([0-9]*\).*/\1/p; s/^$1=\([0-9]*\).*/\1/p"; }
wait_grep() {  # wait_grep FILE PATTERN TENTHS
  local n=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt "$3" ] && return 1; sleep 0.1
  done
}
wait_grows() {  # wait_grows COUNTER N: the enclave's COUNTER grows by N (60 s at most)
  local target=$(($(probe $1) + $2)) n=0
  while [ "$(probe $1)" -lt $target ]; do
    n=$((n + 1)); [ $n -gt 120 ] && return 1; sleep 0.5
  done
}
rounds() { grep -c ': ok:' /tmp/load.out; }

# Long enough that a live policy never needs the fallback on a loaded TCG
# host (see agent_faults.sh); the tolerance covers the watchdog timer's
# period (5 ms), its kick and dispatch, in a guest that a loaded host may
# stall for a second or more.
watchdog_ms=4000
tolerance_ms=2000
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
    /metrc:/ && ($4 == "switch" || $4 == "pipe" || $4 == "fork") { printf "%s=%s ", $4, $5 }' /tmp/sng.out)
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

for policy in fifo-per-cpu fifo-centralized; do
  log=/tmp/agent-$policy.log
  rm -f /tmp/stop /tmp/load.out
  ghost-agent --policy=$policy --watchdog-ms=$watchdog_ms --kernel-timeout-ms=15000 --stats \
    >$log 2>&1 &
  agent=$!
  wait_grep $log 'ghost-agent: policy' 300 || fail "the agent did not start"
  ghost-run -- sh /tmp/load.sh >/tmp/load.out 2>&1 &
  load=$!
  wait_grows e_placed 300 || fail "the agent placed no load"
  # A thread the live agent missed would have waited out the watchdog by now.
  sleep $((watchdog_ms / 1000 + 1))
  wait_grows e_placed 100 || fail "the agent stopped placing"
  fb=$(probe e_fallback)
  [ "$fb" = 0 ] || fail "the fallback ran $fb runs while the agent lived"

  class_probe --reset-wait-max --enclave=0 >/dev/null || fail "cannot reset the wait maximum"
  kill -STOP $agent
  committed=$(( $(probe e_committed) + $(probe e_pinned) ))
  ring_runs=$(probe e_ring)
  wait_grows e_fallback 50 || fail "stopped agent: the fallback did not run the enclave's threads"
  r=$(rounds)
  i=0
  while [ "$(rounds)" -le "$r" ]; do
    i=$((i + 1)); [ $i -gt 1200 ] && fail "stopped agent: no load round completed in 120 s"; sleep 0.1
  done
  [ "$(state)" = enabled ] || fail "stopped agent: state '$(state)'"
  # Stopped long enough for its queues to overflow: it will have lost messages.
  i=0
  while [ "$(probe e_dropped)" = 0 ]; do
    i=$((i + 1)); [ $i -gt 240 ] && fail "stopped agent: its queues never overflowed in 120 s"; sleep 0.5
  done
  wait_us=$(probe e_wait_max_us)
  now=$(( $(probe e_committed) + $(probe e_pinned) ))
  # A commit made just before the stop may still start its thread; entries
  # it pushed into the ring before it stopped still run (its decisions, at
  # most the ring's 256).
  [ $((now - committed)) -le 4 ] || fail "stopped agent: $((now - committed)) commits ran"
  [ $(( $(probe e_ring) - ring_runs )) -le 256 ] ||
    fail "stopped agent: $(( $(probe e_ring) - ring_runs )) ring entries ran, more than a ring holds"
  [ $((wait_us / 1000)) -le $((watchdog_ms + tolerance_ms)) ] ||
    fail "stopped agent: a thread waited $((wait_us / 1000)) ms, more than --watchdog-ms=$watchdog_ms + $tolerance_ms"
  pass "SIGSTOP: the fallback runs the enclave ($(($(probe e_fallback) - fb)) runs, a load round completed); longest wait $((wait_us / 1000)) ms <= $watchdog_ms + $tolerance_ms ms; class enabled; its full queues lost $(probe e_dropped) messages"

  kill -CONT $agent
  # What it lost could hold any policy's view stale for good (a TASK_DEAD of
  # a thread it placed, a CPU_AVAILABLE): it starts its agents again from the
  # status words.
  wait_grep $log 'message(s) were lost from enclave 0' 300 ||
    fail "SIGCONT: the agent did not resynchronise after losing messages"
  wait_grows e_placed 100 || fail "SIGCONT: the agent did not place threads again"
  # Waits that began while it was stopped are over once it places again; from
  # then on a thread it lost track of would wait out the watchdog.
  sleep 1
  fb=$(probe e_fallback)
  sleep $((watchdog_ms / 1000 + 1))
  wait_grows e_placed 300 || fail "SIGCONT: the agent stopped placing"
  [ "$(probe e_fallback)" = "$fb" ] ||
    fail "SIGCONT: the fallback still runs the enclave ($fb -> $(probe e_fallback))"
  pass "SIGCONT: the agent places again ($(probe e_placed) agent placements in all), the fallback runs stayed at $fb; $(sed -n 's/.*ghost-agent: \([0-9]* message(s) were lost\).*(\([0-9]*\) thread.*/\1, resynchronised \2 threads from the status words/p' $log | tail -1)"

  touch /tmp/stop
  i=0
  while kill -0 $load 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 1800 ] && fail "the load did not finish its round within 180 s"; sleep 0.1
  done
  wait $load || fail "the load driver failed"
  grep -q FAILED /tmp/load.out && fail "a load round failed: $(grep -A12 FAILED /tmp/load.out | head -30)"
  pass "all $(rounds) load rounds exited 0 with the counts they asked for"
  kill -TERM $agent
  wait $agent; rc=$?
  [ $rc = 0 ] || fail "the agent exited $rc after SIGTERM"
  i=0
  while [ "$(state)" != disabled ]; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "state '$(state)' after SIGTERM"; sleep 0.1
  done
  pass "SIGTERM: $(grep -o 'enclave 0: runs.*' $log)"
done
exit 0
