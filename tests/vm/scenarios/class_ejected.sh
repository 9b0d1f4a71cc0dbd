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
# The agent must notice within seconds; if it does not, say what every
# thread was doing (a hang here would otherwise only show as the VM timeout).
i=0
while kill -0 $agent 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 600 ]; then
    echo "sched_ext state: $(cat /sys/kernel/sched_ext/state)"
    for t in /proc/[0-9]*/task/[0-9]*; do
      read -r st <$t/stat 2>/dev/null || continue
      set -- ${st#*) }  # fields from the third: state is $1, cpu $37, policy $39
      echo "  ${t#/proc/}: $(cat $t/comm 2>/dev/null) state $1 cpu ${37:-?} policy ${39:-?}"
    done
    for t in /proc/$agent/task/*; do echo "  stack of ${t#/proc/}:"; sed 's/^/    /' $t/stack 2>/dev/null; done
    fail "ghost-agent still running 60 s after the kernel ended the class"
  fi
  sleep 0.1
done
wait $agent; rc=$?
[ $rc != 0 ] || fail "ghost-agent exited 0 after the kernel ended the class"
grep -q 'the kernel ended the class (sysrq' /tmp/agent.log || fail "agent did not print the kernel's reason"
echo "PASS: agent exited $rc: $(grep 'ended' /tmp/agent.log)"
wait $w || { cat /tmp/w.log; fail "workers did not finish after the class was ejected"; }
echo "PASS: workers finished"
