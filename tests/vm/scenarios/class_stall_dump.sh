# vm: --cpus 2 --timeout 300
# When the kernel does end the class for a stall, ghost-agent prints the
# kernel's reason and the kernel's debug dump with the class's own lines
# (bpf/progs/dump.bpf.h): which thread waits, in which enclave, since when,
# where it is parked, and what the watchdog did.
# The stall is forced from outside, as only an administrator can: CPU 1's
# ext deadline server is switched off and an RT hog holds CPU 1, so a
# SCHED_EXT thread pinned to CPU 1 can never run (docs/FALLBACK.md: the one
# case the class cannot help).
# The class hands the victim to its fallback either by the watchdog (it
# waited --watchdog-ms for its agent) or at once, when the agent's heartbeat
# is older than that. The first is expected: the agent threads keep the
# heartbeat (agent_heartbeat.sh); before they did, ghost-agent's main thread,
# a fair-class thread that the RT hog on CPU 1 and the global agent spinning
# on CPU 0 starve, was its only writer (seen once on a loaded host). The dump
# must show which. Pinned push is off: with it the class would queue the
# victim (pinned to CPU 1) on CPU 1 itself, no agent or watchdog involved, and
# the stall would be the same but the dump would show no hand-over.
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
srv=/sys/kernel/debug/sched/ext_server/cpu1/runtime
[ -w $srv ] || fail "no $srv to switch CPU 1's ext server off"
ghost-agent --kernel-timeout-ms=2000 --watchdog-ms=500 --pinned-push=off >/tmp/agent.log 2>&1 &
agent=$!
i=0
while ! grep -q 'ghost-agent: policy' /tmp/agent.log; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "agent did not start"; sleep 0.1
done
echo 0 >$srv || fail "could not switch CPU 1's ext server off"
taskset -c 1 fifo 1 sh -c 'while :; do :; done' &
hog=$!
ghost-run -- taskset -c 1 sh -c 'while :; do :; done' &
victim=$!
i=0
while kill -0 $agent 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 600 ] && { kill $hog $victim; fail "the class was not ejected within 60 s"; }
  sleep 0.1
done
wait $agent; rc=$?
kill -9 $hog $victim 2>/dev/null
echo 50000000 >$srv
[ $rc = 1 ] || fail "ghost-agent exited $rc after the stall, want 1"
grep -q 'the kernel ended the class (runnable task stall' /tmp/agent.log || fail "no stall reason"
echo "PASS: ghost-agent printed the reason: $(grep -o 'runnable task stall:.*' /tmp/agent.log | head -1)"
grep -q "the kernel's dump of the class follows" /tmp/agent.log || fail "no dump"
for want in 'ghost: ABI' 'ghost: enclave 0: cpus' 'ghost: enclave 0 online 1' 'ghost: dispatch ran' \
            'ghost: tid [0-9]* enclave 0 .* fallback 1 '; do
  grep -q "$want" /tmp/agent.log || fail "the dump lacks '$want'"
done
set -- $(sed -n 's/^ghost: ABI .* watchdog moves \([0-9]*\), .* sent at once (agent silent) \([0-9]*\)$/\1 \2/p' \
  /tmp/agent.log)
[ $((${1:-0} + ${2:-0})) -gt 0 ] ||
  fail "the dump shows no hand-over to the fallback: watchdog moves '${1:-}', sent at once '${2:-}'"
echo "PASS: the dump carries the class's view:"
grep 'ghost: tid [0-9]* enclave 0 \|ghost: ABI' /tmp/agent.log | head -3 | sed 's/^/  /'
