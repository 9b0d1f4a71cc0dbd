#!/usr/bin/env bash
# Bad input to the command-line tools, on the host (no sched_ext, no root
# needed): every case must print exactly one line on stderr, naming what was
# wrong, and exit 2. Prints one PASS/FAIL line per case.
set -u
build=${BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}
n_fail=0

expect() {  # expect PATTERN TOOL ARGS...: exit 2, one line on stderr matching PATTERN
  local pattern=$1; shift
  local err rc
  err=$("$build/$@" 2>&1 >/dev/null); rc=$?
  if [ $rc = 2 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && printf '%s' "$err" | grep -q -- "$pattern"; then
    echo "PASS: cli: $* -> exit 2: $err"
  else
    echo "FAIL: cli: $* -> exit $rc, want exit 2 and one line matching '$pattern'; said: $err"
    n_fail=$((n_fail + 1))
  fi
}

expect "unknown policy 'lottery'" ghost-agent --policy=lottery
expect "bad CPU list '3-1'" ghost-agent --cpus=3-1
expect "CPU 9999 is out of range" ghost-agent --cpus=9999
expect "slice-us=-5 is out of range" ghost-agent --slice-us=-5
expect "kernel-timeout-ms=50 is out of range" ghost-agent --kernel-timeout-ms=50
expect "watchdog-ms=0 must be within" ghost-agent --watchdog-ms=0
expect "at most half of --kernel-timeout-ms" ghost-agent --watchdog-ms=3000 --kernel-timeout-ms=5000
expect "agent-priority=0 is out of range" ghost-agent --agent-priority=0
expect "enclave=8 is out of range" ghost-agent --enclave=8
expect "unknown flag --bogus" ghost-agent --bogus
expect "unexpected argument 'extra'" ghost-agent extra
expect "unknown machine" ghost-sim --machine=cray
expect "unknown workload" ghost-sim --workload=nope
expect "load" ghost-sim --load=-1
expect "fast-path=maybe: want on, off or auto" ghost-agent --fast-path=maybe
expect "wakeup-push=yes: want on or off" ghost-agent --wakeup-push=yes
expect "ring-steal=yes: want on or off" ghost-agent --ring-steal=yes
expect "pinned-push=yes: want on or off" ghost-agent --pinned-push=yes
expect "agent-sleep-us=-1 is out of range (0..1000000)" ghost-agent --agent-sleep-us=-1
expect "ring-depth=deep: want idle or all" ghost-agent --ring-depth=deep
expect "hints is read by --policy=shinjuku and edf only (not fifo-centralized)" ghost-agent --hints=/tmp/t
expect "hints: hint table /no/such/table: " ghost-agent --policy=shinjuku --hints=/no/such/table
expect "hints: hint table /etc/passwd: not a sealed memfd" ghost-agent --policy=shinjuku --hints=/etc/passwd
expect "batch-below is --policy=shinjuku's sharing (not fifo-per-cpu)" ghost-agent --policy=fifo-per-cpu --batch-below=2
expect "batch-below=-1 is not a QoS class" ghost-agent --policy=shinjuku --batch-below=-1
expect "batch-below is --policy=shinjuku's sharing (not baseline-fair)" ghost-sim --policy=baseline-fair --batch-below=1
expect "worker-qos makes a hint table for a policy that reads one (not fifo-centralized)" ghost-sim --worker-qos=1
expect "sol measures the agent's own placements: --fast-path=on does not apply" ghost-sim --policy=sol --fast-path=on
expect "search places every thread near its caches by transaction: --fast-path=on does not apply" ghost-sim --policy=search --fast-path=on
expect "migration-us=1,2: want CORE,LLC,NODE, three whole us counts 0..1000000" ghost-sim --migration-us=1,2
expect "migration-us=1,2,2000000: want CORE,LLC,NODE" ghost-sim --policy=search --migration-us=1,2,2000000
expect "deadline-factor writes deadlines into the application's hint table: it needs --worker-qos" ghost-sim --policy=edf --deadline-factor=10
expect "ring-size: ring size 3 is not a power of two" ghost-agent --ring-size=3
expect "ring-size: ring size 0 is not a power of two" ghost-agent --ring-size=0
expect "ring-size: ring size 8192 is not a power of two" ghost-agent --ring-size=8192
expect "ring-size: ring size 100 is not a power of two" ghost-agent --ring-size=0:1024,1:100
expect "node must be 0..7" ghost-agent --ring-size=9:64
expect "ring size for node 1 given twice" ghost-agent --ring-size=1:64,1:128
expect "is not N or NODE:N" ghost-agent --ring-size=0:abc
expect "queue-bytes=1000: queue size 1000 is not a power of two" ghost-agent --queue-bytes=1000
expect "queue-bytes=134217728" ghost-agent --queue-bytes=134217728
expect "fast-path=maybe: want on, off or auto" ghost-sim --fast-path=maybe
expect "wakeup-push=1: want on or off" ghost-sim --wakeup-push=1
expect "ring-steal=2: want on or off" ghost-sim --ring-steal=2
expect "ring-depth=2: want idle or all" ghost-sim --ring-depth=2
expect "agent-sleep-us=-1 is out of range (0..1000000)" ghost-sim --agent-sleep-us=-1
expect "agent-sleep-us=1000001 is out of range (0..1000000)" ghost-sim --agent-sleep-us=1000001
expect "ring-size: ring size 3 is not a power of two" ghost-sim --ring-size=3
expect "ring size for node 0 given twice" ghost-sim --ring-size=0:64,0:64
expect "queue-bytes=2048" ghost-sim --queue-bytes=2048
expect "unknown flag --bogus" ghost-run --bogus -- /bin/true
expect "enclave=99 is out of range" ghost-bench --enclave=99
expect "enclave needs --sched-ext" ghost-bench --enclave=0 --nosched-ext
expect "no ghost class is running" ghost-bench --enclave=0 --pin-dir=/no/such/dir
exit $((n_fail > 0))
