# The class outlives its agent (crash isolation) and a new agent re-attaches
# (restart, live upgrade):
#  1. ghost-agent loads the class and pins it (link, maps, enroll) in bpffs;
#  2. kill -9 of the agent: the class stays enabled with ops ghost; the
#     enclave's threads (ghost-run) keep running through the BPF fallback (its
#     run counter grows) and all finish later;
#  3. a pinned class that publishes another ABI version is refused in one line
#     naming both versions, exit 2, and left as it is; so is a --watchdog-ms
#     above the pinned class's cap (half the kernel timeout it was loaded with);
#  4. a new ghost-agent re-attaches: sched_ext's enable_seq does not move (no
#     second load or attach), it rediscovers the enclave's still-running
#     threads from their status words and commits them (the class's count of
#     committed transactions grows while only those threads exist);
#  5. a second ghost-agent while one is alive: one line, exit 2;
#  6. live upgrade: `ghost-agent --upgrade` takes over from the running agent
#     (SIGUSR1: it exits 0 leaving the class pinned) while a workload runs; no
#     thread of that workload is ever seen off sched_ext;
#  7. new ghost-run work runs under the upgraded agent; SIGTERM: exit 0, state
#     disabled, nothing left pinned.
# All of it for fifo-centralized, then for fifo-per-cpu.
set -u
pins=/sys/fs/bpf/ghost
fail() {
  echo "FAIL: $*"
  for f in /tmp/a1.log /tmp/a2.log /tmp/a3.log /tmp/w1.log /tmp/w2.log /tmp/watch.log; do
    [ -f $f ] && sed "s|^|  $f: |" $f
  done
  exit 1
}
state() { cat /sys/kernel/sched_ext/state; }
ops() { cat /sys/kernel/sched_ext/root/ops 2>/dev/null; }
enable_seq() { cat /sys/kernel/sched_ext/enable_seq; }
wait_grep() {  # wait_grep FILE PATTERN TENTHS
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt "$3" ] && return 1; sleep 0.1
  done
}
probe() { class_probe --print | sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }
ext_threads() {  # threads of PID run by a sched_ext class
  n=0
  for t in /proc/$1/task/*; do grep -q 'ext.enabled *: *1' $t/sched 2>/dev/null && n=$((n + 1)); done
  echo $n
}
wait_ext() {  # wait_ext PID N: N threads of PID in sched_ext within 10 s
  i=0
  while [ "$(ext_threads $1)" -lt $2 ]; do
    i=$((i + 1)); [ $i -gt 100 ] && return 1; sleep 0.1
  done
}
one_line_exit2() {  # one_line_exit2 LABEL PATTERN CMD...
  label=$1 pattern=$2; shift 2
  "$@" >/tmp/out 2>/tmp/err; rc=$?
  [ $rc = 2 ] && [ "$(wc -l </tmp/err)" = 1 ] && grep -q "$pattern" /tmp/err ||
    fail "$label: exit $rc, said: $(cat /tmp/err)"
  pass "$label: $(cat /tmp/err)"
}
# An agent placed work if it committed or, with the fast path, an idle CPU ran
# one of its ring entries: a short run can place everything through the ring;
# the per-CPU FIFO's agents can leave threads pinned to one CPU to the class
# (pinned push: class_held counts their messages).
placed_work() {  # placed_work LOG
  grep -Eq 'commit_calls=[1-9]|ring_ran=[1-9]|class_held=[1-9]' "$1"
}
t0=$(date +%s)
pass() { echo "PASS: [$(($(date +%s) - t0))s $policy] $*"; }

# Both policies: fifo-per-cpu's per-CPU queues reuse the dead agent's queue
# numbers, fifo-centralized's global agent busy-polls.
for policy in fifo-centralized fifo-per-cpu; do
agent_flags="--policy=$policy --watchdog-ms=50 --stats"
rm -f /tmp/a1.log /tmp/a2.log /tmp/a3.log /tmp/w1.log /tmp/w2.log /tmp/watch.log

[ "$(state)" = disabled ] || fail "sched_ext state is '$(state)' before the agent started"
ghost-agent $agent_flags >/tmp/a1.log 2>&1 &
a1=$!
wait_grep /tmp/a1.log 'ghost-agent: policy' 300 || fail "first agent did not start"
[ "$(state)" = enabled ] && [ "$(ops)" = ghost ] || fail "state '$(state)', ops '$(ops)'"
for p in link enroll maps/status_words maps/task_ctx maps/bss maps/watchdog; do
  [ -e $pins/$p ] || fail "$pins/$p is not pinned (have: $(ls $pins $pins/maps))"
done
seq1=$(enable_seq)
pass "agent attached and pinned the class (enable_seq $seq1)"

# Long enough to outlive the first agent and reach the second (with the agent
# gone the class runs the enclave at FIFO speed: 600 bursts were done too soon).
ghost-run -- workers --threads 4 --bursts 1500 --burst-us 2000 --sleep-us 2000 --nosched-ext \
  >/tmp/w1.log 2>&1 &
w1=$!
wait_ext $w1 4 || fail "ghost-run workload not in sched_ext"

kill -9 $a1
wait $a1 2>/dev/null
# Runs the agent placed (commits and ring entries: with the fast path, its
# default, most placements are ring entries).
committed_at_kill=$(probe runs_by_agent)
fb_at_kill=$(probe fallback_runs)
# Unpinned, a killed loader's class is gone within 0.5 s: watch for 2 s.
i=0
while [ $i -lt 20 ]; do
  [ "$(state)" = enabled ] && [ "$(ops)" = ghost ] ||
    fail "class went away after kill -9: state '$(state)', ops '$(ops)'"
  i=$((i + 1)); sleep 0.1
done
pass "kill -9: the class stays enabled with ops ghost"
i=0
while [ "$(probe fallback_runs)" -le $((fb_at_kill + 20)) ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "fallback ran too little: $fb_at_kill -> $(probe fallback_runs)"
  sleep 0.1
done
kill -0 $w1 2>/dev/null || fail "workload ended before the restart; make it longer"
[ "$(ext_threads $w1)" -ge 4 ] || fail "workload threads left sched_ext with the agent dead"
pass "no agent: the BPF fallback runs the enclave's threads ($fb_at_kill -> $(probe fallback_runs) runs)"

abi=$(probe abi)
class_probe --set-abi=$((abi + 98)) || fail "could not rewrite the ABI version"
one_line_exit2 "ABI mismatch" "ABI version $((abi + 98)).*ABI version $abi" ghost-agent $agent_flags
class_probe --set-abi=$abi
[ "$(state)" = enabled ] && [ "$(enable_seq)" = "$seq1" ] || fail "a refused agent touched the class"
# The pinned class keeps its 5 s kernel timeout, so its watchdog cap is 2.5 s
# whatever the new agent's own --kernel-timeout-ms says.
one_line_exit2 "watchdog above the pinned class's cap" "above 2500, half the pinned class's kernel timeout (5000 ms" \
  ghost-agent --policy=$policy --watchdog-ms=3000 --kernel-timeout-ms=30000
[ "$(state)" = enabled ] && [ "$(enable_seq)" = "$seq1" ] || fail "a refused agent touched the class"

ghost-agent $agent_flags >/tmp/a2.log 2>&1 &
a2=$!
wait_grep /tmp/a2.log 'ghost-agent: policy' 300 || fail "second agent did not start"
grep -q 're-attached to the class pinned' /tmp/a2.log || fail "second agent did not re-attach"
[ "$(enable_seq)" = "$seq1" ] || fail "enable_seq moved $seq1 -> $(enable_seq): the class was attached again"
# libbpf must not have re-initialised the reused global data (ops.init set it once).
[ "$(probe bss_nr_cpus)" = "$(nproc)" ] || fail "the class's .bss was reset: nr_cpus '$(probe bss_nr_cpus)'"
n=$(sed -n 's/.*rediscovered \([0-9]*\) thread.*/\1/p' /tmp/a2.log)
[ "${n:-0}" -ge 4 ] || fail "second agent rediscovered '${n:-}' threads, want the workload's 4+"
pass "restart: re-attached without a new load (enable_seq $seq1), rediscovered $n threads"

one_line_exit2 "second agent while one runs" "another ghost-agent" ghost-agent $agent_flags

wait $w1 || fail "the killed agent's workload did not finish"
committed=$(probe runs_by_agent)
[ "$committed" -gt "$committed_at_kill" ] ||
  fail "the new agent placed none of the rediscovered threads ($committed_at_kill -> $committed runs)"
pass "rediscovered threads placed by the new agent ($committed_at_kill -> $committed runs by commits and ring entries) and all finished"

# It lasts until the upgraded agent has rediscovered it (/tmp/w2.stop): on a
# loaded host the upgrade can take longer than any fixed number of bursts.
rm -f /tmp/w2.stop
ghost-run -- workers --threads 4 --bursts 200 --burst-us 2000 --sleep-us 2000 --nosched-ext \
  --until-file=/tmp/w2.stop >/tmp/w2.log 2>&1 &
w2=$!
wait_ext $w2 4 || fail "second workload not in sched_ext"
class_probe --watch-pid=$w2 >/tmp/watch.log 2>&1 &
watch=$!
ghost-agent --upgrade $agent_flags >/tmp/a3.log 2>&1 &
a3=$!
wait $a2; rc=$?
[ $rc = 0 ] && grep -q 'handing over' /tmp/a2.log || fail "old agent did not hand over (exit $rc)"
placed_work /tmp/a2.log || fail "the restarted agent's --stats show no commit, no ring entry run and no pinned push"
wait_grep /tmp/a3.log 'ghost-agent: policy' 300 || fail "upgraded agent did not start"
grep -q 're-attached to the class pinned' /tmp/a3.log || fail "upgraded agent did not re-attach"
[ "$(enable_seq)" = "$seq1" ] || fail "enable_seq moved during the upgrade"
n=$(sed -n 's/.*rediscovered \([0-9]*\) thread.*/\1/p' /tmp/a3.log)
[ "${n:-0}" -ge 4 ] || fail "upgraded agent rediscovered '${n:-}' threads, want the workload's 4+"
touch /tmp/w2.stop
wait $w2 || fail "workload across the upgrade did not finish"
wait $watch || fail "a thread was seen off sched_ext during the upgrade"
pass "live upgrade: $(grep -o 'rediscovered [0-9]* thread' /tmp/a3.log)s, $(tail -1 /tmp/watch.log)"

ghost-run -- workers --threads 4 --bursts 30 --burst-us 1000 --sleep-us 1000 --nosched-ext \
  --expect-class || fail "new ghost-run work under the upgraded agent"
pass "new ghost-run work ran under the upgraded agent"
kill -TERM $a3
wait $a3; rc=$?
[ $rc = 0 ] || fail "upgraded agent exited $rc after SIGTERM"
i=0
while [ "$(state)" != disabled ]; do
  i=$((i + 1)); [ $i -gt 50 ] && fail "state '$(state)' after SIGTERM"; sleep 0.1
done
[ ! -e $pins ] || fail "SIGTERM left pins behind: $(ls -R $pins)"
placed_work /tmp/a3.log || fail "the upgraded agent placed nothing: no commit, no ring entry run, no pinned push"
pass "SIGTERM: exit 0, state disabled, nothing pinned"
done
exit 0
