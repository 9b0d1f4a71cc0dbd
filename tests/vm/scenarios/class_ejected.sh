# When the kernel ends the class (here: SysRq-S, which disables any sched_ext
# scheduler), ghost-agent prints the kernel's reason and exits non-zero, and
# the SCHED_EXT threads carry on in the fair class.
set -u
fail() { echo "FAIL: $*"; [ -f /tmp/agent.log ] && sed 's/^/  agent: /' /tmp/agent.log; exit 1; }
ext_threads() {  # number of threads of PID run by a sched_ext class
  n=0
  for t in /proc/$1/task/*; do grep -q 'ext.enabled *: *1' $t/sched 2>/dev/null && n=$((n + 1)); done
  echo $n
}
ghost-agent >/tmp/agent.log 2>&1 &
agent=$!
i=0
while [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "class not enabled"; sleep 0.1
done
workers --threads 4 --bursts 300 --burst-us 1000 --sleep-us 1000 >/tmp/w.log 2>&1 &
w=$!
# Eject only once the 4 threads run in the class (30 s at most).
i=0
while [ "$(ext_threads $w)" != 4 ]; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "workers not in the class before the ejection"; sleep 0.1
done
echo S >/proc/sysrq-trigger
wait $agent; rc=$?
[ $rc != 0 ] || fail "ghost-agent exited 0 after the kernel ended the class"
grep -q 'the kernel ended the class (sysrq' /tmp/agent.log || fail "agent did not print the kernel's reason"
echo "PASS: agent exited $rc: $(grep 'ended' /tmp/agent.log)"
wait $w || { cat /tmp/w.log; fail "workers did not finish after the class was ejected"; }
echo "PASS: workers finished"
