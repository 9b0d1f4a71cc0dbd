# vm: --cpus 6 --prog hackbench --prog stress-ng --timeout 600
# Two enclaves, each with its own agent process and policy, on disjoint CPUs
# of one class (issue 8, section 6):
#  1. agent A (enclave 0, CPUs 0-1, fifo-per-cpu) loads the class; agent B
#     (enclave 1, CPUs 2-4, fifo-centralized) re-attaches to it without a new
#     load and without disturbing A;
#  2. refused in one line, exit 2, touching nothing: a third agent whose CPUs
#     overlap an enclave, a second agent for a running enclave; ghost-run
#     into an enclave nobody made;
#  3. with a load in each enclave (ghost-run --enclave confines it to the
#     enclave's CPUs), kill -9 of A: B's enclave is unaffected (its agent
#     keeps placing, its fallback runs stay zero) while A's threads run
#     through the fallback;
#  4. a new agent for enclave 0 replaces only the dead one (B untouched: its
#     fallback runs still zero); live upgrade of B replaces only B (the new
#     agent of enclave 0 keeps placing);
#  5. SIGTERM of A: its enclave closes (its threads go back to the fair
#     class), the class stays for B; every load round of both enclaves
#     exited 0 with its counts; SIGTERM of B, the last agent, unloads the
#     class and leaves nothing pinned.
# CPU 5 is in no enclave: this script and its probes run there, so that what
# they cost (a fair-class task preempts any enclave thread) is charged to no
# enclave, and an enclave's waits are its own agent's doing.
set -u
taskset -p -c 5 $$ >/dev/null || { echo "FAIL: cannot move the scenario to CPU 5"; exit 1; }
t0=$(date +%s)
pins=/sys/fs/bpf/ghost
fail() {
  echo "FAIL: $*"
  for f in /tmp/a*.log /tmp/b*.log /tmp/load-*.out; do [ -f $f ] && tail -20 $f | sed "s|^|  $f: |"; done
  for e in 0 1; do class_probe --print --enclave=$e 2>&1 | tail -1 | sed "s/^/  enclave $e: /"; done
  exit 1
}
pass() { echo "PASS: [$(($(date +%s) - t0))s] $*"; }
state() { cat /sys/kernel/sched_ext/state; }
enable_seq() { cat /sys/kernel/sched_ext/enable_seq; }
probe() {  # probe ENCLAVE COUNTER
  class_probe --print --enclave=$1 | sed -n "s/.* $2=\([0-9]*\).*/\1/p; s/^$2=\([0-9]*\).*/\1/p"
}
wait_grep() {  # wait_grep FILE PATTERN TENTHS
  local n=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt "$3" ] && return 1; sleep 0.1
  done
}
wait_grows() {  # wait_grows ENCLAVE COUNTER N: grows by N (60 s at most)
  local target=$(($(probe $1 $2) + $3)) n=0
  while [ "$(probe $1 $2)" -lt $target ]; do
    n=$((n + 1)); [ $n -gt 120 ] && return 1; sleep 0.5
  done
}
one_line_exit2() {  # one_line_exit2 LABEL PATTERN CMD...
  local label=$1 pattern=$2 rc
  shift 2
  "$@" >/tmp/out 2>/tmp/err; rc=$?
  [ $rc = 2 ] && [ "$(wc -l </tmp/err)" = 1 ] && grep -q "$pattern" /tmp/err ||
    fail "$label: exit $rc, said: $(cat /tmp/err)"
  pass "$label: $(cat /tmp/err)"
}
# Long enough that a live FIFO policy on two or three CPUs never needs the
# fallback on a loaded TCG host (see agent_faults.sh; waits of 4 s were seen).
common="--watchdog-ms=9000 --kernel-timeout-ms=20000 --stats"

# Rounds of hackbench and stress-ng until /tmp/stop-TAG; each must exit 0
# with the counts it asked for. They start with every CPU allowed (taskset):
# ghost-run narrows that to their enclave's CPUs.
cat >/tmp/load.sh <<'EOF'
tag=$1 n=0
while [ ! -e /tmp/stop-$tag ]; do
  n=$((n + 1))
  hackbench -T -g 1 -f 2 -l 100 >/tmp/hb-$tag.out 2>&1 &
  hb=$!
  stress-ng --switch 1 --switch-ops 500 --pipe 1 --pipe-ops 500 --fork 1 --fork-ops 10 \
    --metrics-brief >/tmp/sng-$tag.out 2>&1
  src=$?
  wait $hb
  hrc=$?
  counts=$(awk '/miscellaneous metrics/ { exit }
    /metrc:/ && ($4 == "switch" || $4 == "pipe" || $4 == "fork") { printf "%s=%s ", $4, $5 }' /tmp/sng-$tag.out)
  if [ $hrc = 0 ] && grep -q '^Time:' /tmp/hb-$tag.out && [ $src = 0 ] &&
     grep -q 'successful run completed' /tmp/sng-$tag.out &&
     [ "$counts" = "switch=500 pipe=500 fork=10 " ]; then
    echo "round $n: ok: $counts"
  else
    echo "round $n: FAILED: hackbench exit $hrc, stress-ng exit $src, counts '$counts'"
    sed 's/^/    /' /tmp/hb-$tag.out /tmp/sng-$tag.out
  fi
done
echo "done after $n rounds"
EOF

# 1. Two agents, one class.
[ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' at the start"
ghost-agent --enclave=0 --cpus=0-1 --policy=fifo-per-cpu $common >/tmp/a1.log 2>&1 &
a=$!
wait_grep /tmp/a1.log 'ghost-agent: policy' 300 || fail "agent A did not start"
seq=$(enable_seq)
rm -f /tmp/stop-0 /tmp/stop-1
taskset -c 0-5 ghost-run --enclave=0 -- sh /tmp/load.sh 0 >/tmp/load-0.out 2>&1 &
l0=$!
wait_grows 0 e_placed 100 || fail "A placed none of its load"
ghost-agent --enclave=1 --cpus=2-4 --policy=fifo-centralized $common >/tmp/b1.log 2>&1 &
b=$!
wait_grep /tmp/b1.log 'ghost-agent: policy' 300 || fail "agent B did not start"
grep -q 're-attached to the class pinned at .* enclave 1 is new' /tmp/b1.log ||
  fail "B did not re-attach as a new enclave: $(head -2 /tmp/b1.log)"
[ "$(enable_seq)" = "$seq" ] && [ "$(state)" = enabled ] || fail "B loaded the class again"
kill -0 $a || fail "A died when B started"
wait_grows 0 e_placed 100 || fail "A stopped placing after B started"
pass "B (enclave 1, fifo-centralized) re-attached to A's class (enable_seq $seq); A (enclave 0, fifo-per-cpu) goes on"

# 2. Refusals touch nothing.
one_line_exit2 "overlapping CPUs" "CPU 1 belongs to enclave 0, whose agent (pid $a) is running" \
  ghost-agent --enclave=2 --cpus=1-2 --policy=fifo-per-cpu
one_line_exit2 "a second agent for enclave 1" "enclave 1: another ghost-agent (pid $b) is running" \
  ghost-agent --enclave=1 --cpus=2-4
one_line_exit2 "ghost-run into no enclave" "there is no enclave 3" ghost-run --enclave=3 -- /bin/true
kill -0 $a && kill -0 $b || fail "a refused agent stopped a running one"

# 3. Both enclaves loaded; kill -9 of A.
taskset -c 0-5 ghost-run --enclave=1 -- sh /tmp/load.sh 1 >/tmp/load-1.out 2>&1 &
l1=$!
wait_grows 1 e_placed 100 || fail "B placed none of its load"
# Each load runs on its own enclave's CPUs only (ghost-run confines it).
for pid in $l0 $l1; do
  grep Cpus_allowed_list /proc/$pid/status | grep -q "$([ $pid = $l0 ] && echo 0-1 || echo 2-4)" ||
    fail "the load $pid is not confined to its enclave: $(grep Cpus_allowed_list /proc/$pid/status)"
done
sleep 5
fb1=$(probe 1 e_fallback)
[ "$fb1" = 0 ] || fail "the fallback ran $fb1 runs of B's enclave while B lived"
fb0=$(probe 0 e_fallback)
kill -9 $a
wait $a 2>/dev/null
wait_grows 0 e_fallback 30 || fail "A's threads do not run through the fallback after kill -9"
wait_grows 1 e_placed 200 || fail "B stopped placing after A was killed"
sleep 5
[ "$(probe 1 e_fallback)" = 0 ] || fail "the fallback ran $(probe 1 e_fallback) runs of B's enclave after A died"
[ "$(probe 1 e_dropped)" = 0 ] || fail "B's queues lost $(probe 1 e_dropped) messages"
kill -0 $b || fail "B died with A"
r0=$(grep -c ': ok:' /tmp/load-0.out)
pass "kill -9 of A: B's enclave unaffected ($(probe 1 e_placed) agent placements, 0 fallback runs, 0 messages lost); A's threads run through the fallback ($fb0 -> $(probe 0 e_fallback) runs, $r0 rounds done)"

# 4. A new agent replaces only the dead one; an upgrade of B only B.
ghost-agent --enclave=0 --cpus=0-1 --policy=fifo-per-cpu $common >/tmp/a2.log 2>&1 &
a=$!
wait_grep /tmp/a2.log 'ghost-agent: policy' 300 || fail "the new agent A did not start"
grep -q 'taking enclave 0 over from its previous agent' /tmp/a2.log || fail "A2 did not take over enclave 0"
[ "$(enable_seq)" = "$seq" ] || fail "A2 loaded the class again"
wait_grows 0 e_placed 100 || fail "A2 placed nothing"
wait_grows 1 e_placed 100 || fail "B stopped placing when A2 took over"
kill -0 $b || fail "A2 stopped B"
[ "$(probe 1 e_fallback)" = 0 ] || fail "the fallback ran $(probe 1 e_fallback) runs of B's enclave while A2 took over"
pass "A2 took enclave 0 over ($(sed -n 's/.*ghost-agent: \(rediscovered [0-9]* thread\).*/\1s/p' /tmp/a2.log)); B untouched (0 fallback runs)"
ghost-agent --upgrade --enclave=1 --cpus=2-4 --policy=fifo-centralized $common >/tmp/b2.log 2>&1 &
b2=$!
wait $b; rc=$?
[ $rc = 0 ] && grep -q 'handing over enclave 1' /tmp/b1.log || fail "B did not hand over (exit $rc)"
b=$b2
wait_grep /tmp/b2.log 'ghost-agent: policy' 300 || fail "the upgraded B did not start"
grep -q 'taking enclave 1 over' /tmp/b2.log || fail "B2 did not take over enclave 1"
wait_grows 1 e_placed 100 || fail "B2 placed nothing"
wait_grows 0 e_placed 100 || fail "A2 stopped placing during B's upgrade"
kill -0 $a || fail "B's upgrade stopped A2"
pass "live upgrade of B replaced only B ($(sed -n 's/.*ghost-agent: \(rediscovered [0-9]* thread\).*/\1s/p' /tmp/b2.log)); A2 kept placing"

# 5. SIGTERM of A leaves the class to B; SIGTERM of B unloads it.
kill -TERM $a
wait $a; rc=$?
[ $rc = 0 ] || fail "A exited $rc after SIGTERM"
grep -q 'enclave 0 closed' /tmp/a2.log || fail "A did not close its enclave: $(tail -3 /tmp/a2.log)"
[ "$(state)" = enabled ] && [ "$(enable_seq)" = "$seq" ] && [ -e $pins/link ] ||
  fail "SIGTERM of A took the class from B: state '$(state)'"
ghost-run --enclave=0 -- /bin/true 2>/dev/null && fail "enclave 0 still takes threads after its agent left"
wait_grows 1 e_placed 100 || fail "B stopped placing after A left"
touch /tmp/stop-0 /tmp/stop-1
for l in $l0 $l1; do
  i=0
  while kill -0 $l 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 1800 ] && fail "a load did not finish its round in 180 s"; sleep 0.1
  done
  wait $l || fail "a load driver failed"
done
grep -q FAILED /tmp/load-0.out /tmp/load-1.out && fail "a load round failed"
pass "SIGTERM of A: $(sed -n 's/.*\(enclave 0 closed.*\)/\1/p' /tmp/a2.log); all load rounds exited 0 with their counts (enclave 0: $(grep -c ': ok:' /tmp/load-0.out), enclave 1: $(grep -c ': ok:' /tmp/load-1.out))"
kill -TERM $b
wait $b; rc=$?
[ $rc = 0 ] || fail "B exited $rc after SIGTERM"
i=0
while [ "$(state)" != disabled ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "state '$(state)' after the last agent's SIGTERM"; sleep 0.1
done
[ ! -e $pins ] || fail "the last agent left pins behind: $(ls -R $pins)"
pass "SIGTERM of B, the last agent: class unloaded, nothing pinned; B: $(grep -o 'enclave 1: runs.*' /tmp/b2.log)"
exit 0
