# vm: --cpus 2
# What an unprivileged user (uid 1000, through runas) can do to a running
# class and its agent (issue 8, section 6): nothing.
#  - the pins (bpffs directories 0700, files 0600, all root's) and the lock
#    files (0600, in a 0755 root directory) have the modes ghost-agent gives
#    them, whatever the umask;
#  - the user can neither open, bpf_obj_get nor mmap any pin, create anything
#    beside them, nor open or hold an agent's lock;
#  - the user cannot attach (ghost-agent, ghost-agent --upgrade), signal the
#    agent, nor move a thread into an enclave (ghost-run -- CMD, ghost-run
#    --pid): each is refused, and the agent runs on;
#  - a thread the user switches to SCHED_EXT itself (allowed to anyone) runs
#    in the class's FIFO, in no enclave: no agent hears of it;
#  - root's agent refuses a pin or lock directory someone else made, in one
#    line, exit 2 (bpffs's root is world-writable: a user could make one
#    first).
set -u
user=1000
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
pass() { echo "PASS: $*"; }
refused() {  # refused LABEL PATTERN CMD...: as the user, exit 2 with one line matching PATTERN
  local label=$1 pattern=$2 rc
  shift 2
  runas $user "$@" >/tmp/out 2>/tmp/err; rc=$?
  [ $rc = 2 ] && [ "$(wc -l </tmp/err)" = 1 ] && grep -q "$pattern" /tmp/err ||
    fail "$label: exit $rc, said: $(cat /tmp/err /tmp/out)"
  pass "$label: refused: $(cat /tmp/err)"
}

umask 000  # the modes must not come from the umask
ghost-agent --policy=fifo-per-cpu --stats >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -q 'ghost-agent: policy' /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the agent did not start"; sleep 0.1
done
umask 022
echo "unprivileged BPF: kernel.unprivileged_bpf_disabled=$(cat /proc/sys/kernel/unprivileged_bpf_disabled)"

pin_access --check-modes >/tmp/modes 2>&1 || { cat /tmp/modes; fail "pins or locks with the wrong owner or mode"; }
pass "modes: $(grep -c '^ok' /tmp/modes) pins and locks are root's with directories 0700 (pins) / 0755 (locks) and files 0600"

runas $user pin_access --expect-denied >/tmp/denied 2>&1 ||
  { cat /tmp/denied; fail "the user could reach a pin or a lock"; }
pass "the user can open, map, lock or create nothing: $(grep -c '^denied' /tmp/denied) attempts denied"

refused "ghost-agent as a user" "must run as root" ghost-agent --policy=fifo-per-cpu
refused "ghost-agent --upgrade as a user" "must run as root" ghost-agent --upgrade
refused "ghost-run as a user" "cannot open /sys/fs/bpf/ghost/enroll: Permission denied" ghost-run -- /bin/true
sleep 1000 &
victim=$!
refused "ghost-run --pid as a user" "Permission denied" ghost-run --pid=$victim
kill $victim
runas $user kill -USR1 $agent 2>/dev/null && fail "the user could signal the agent"
runas $user kill -TERM $agent 2>/dev/null && fail "the user could signal the agent"
kill -0 $agent || fail "the agent is gone"
[ "$(cat /sys/kernel/sched_ext/state)" = enabled ] || fail "the class is not enabled"
pass "the user cannot signal the agent; it runs on"

# Anyone may choose SCHED_EXT: the class runs such a thread in its FIFO, and
# it belongs to no enclave (no status word, no message to any agent).
runas $user workers --threads 2 --bursts 200 --burst-us 1000 --sleep-us 1000 --expect-class \
  >/tmp/w.log 2>&1 &
w=$!
i=0
while [ "$(grep -l 'ext.enabled *: *1' /proc/$w/task/*/sched 2>/dev/null | wc -l)" -lt 1 ]; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "the user's threads never entered SCHED_EXT"; sleep 0.1
done
for t in /proc/$w/task/*; do
  tid=${t##*/}
  e=$(class_probe --find-pid=$tid)
  [ "$e" = none ] || fail "the user's thread $tid is in enclave $e"
done
wait $w || { cat /tmp/w.log; fail "the user's SCHED_EXT threads did not finish"; }
pass "the user's own SCHED_EXT threads ran in the class's FIFO, in no enclave"

# Directories someone else made are refused, not used.
runas $user mkdir /sys/fs/bpf/intruder || fail "the user could not make a directory in bpffs's root"
out=$(ghost-agent --policy=fifo-per-cpu --pin-dir=/sys/fs/bpf/intruder --lock-dir=/run/ghost-other 2>&1 >/dev/null)
rc=$?
[ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "belongs to uid $user" ||
  fail "a foreign pin directory: exit $rc, said: $out"
pass "a foreign pin directory: refused: $out"
mkdir -p /tmp/locks && chown $user /tmp/locks
out=$(ghost-agent --policy=fifo-per-cpu --enclave=1 --cpus=1 --lock-dir=/tmp/locks 2>&1 >/dev/null)
rc=$?
[ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "belongs to uid $user" ||
  fail "a foreign lock directory: exit $rc, said: $out"
pass "a foreign lock directory: refused: $out"

kill -TERM $agent
wait $agent || fail "the agent exited $? after SIGTERM"
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || fail "the class is still loaded"
# With no class loaded, the foreign pin directory is what stops a new agent.
out=$(ghost-agent --policy=fifo-per-cpu --pin-dir=/sys/fs/bpf/intruder 2>&1 >/dev/null)
rc=$?
[ $rc = 2 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "belongs to uid $user" ||
  fail "a foreign pin directory with no class loaded: exit $rc, said: $out"
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || fail "the refused agent left a class loaded"
pass "a foreign pin directory, no class loaded: refused, nothing left loaded: $out"
exit 0
