#!/usr/bin/env bash
# `make soak`: the long fault runs, not part of `make test` (which runs the
# same scenarios with a few cycles). Each runs in the sched_ext test kernel
# like any VM scenario; ends with one line "soak: N passed, N failed".
#
#   agent_faults.sh 20 20 POLICIES   20 kill -9 and 20 live-upgrade cycles of
#                                    the agent under hackbench and stress-ng,
#                                    for fifo-per-cpu, then with the agents
#                                    taking turns between both policies
#
#   tests/soak.sh [KILLS] [UPGRADES]   (default 20 20)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
cd "$top"
kills=${1:-20}
upgrades=${2:-20}
kernel=$(bash scripts/kernel.sh) || { echo "FAIL: no sched_ext test kernel"; echo "soak: 0 passed, 1 failed"; exit 1; }
export GHOST_KERNEL=$kernel
mkdir -p "$build/vm/logs"
passed=0 failed=0
start=$(date +%s)
for policies in fifo-per-cpu fifo-per-cpu,fifo-centralized; do
  s=tests/vm/scenarios/agent_faults.sh
  log=$build/vm/logs/soak-agent_faults-${policies//,/-}.log
  # The scenario's VM shape, with room for 40 cycles.
  opts=$(sed -n 's/^# vm: //p' "$s" | head -1 | sed 's/--timeout [0-9]*//')
  t0=$(date +%s)
  echo "== agent_faults $kills $upgrades $policies"
  # shellcheck disable=SC2086
  tests/vm/vm.sh --quiet $opts --timeout 3600 --log "$log" "$s" "$kills" "$upgrades" "$policies"
  rc=$?
  sed -n '/GHOST-VM: start/,$p' "$log" | tr -d '\r' | grep -E '^(PASS|FAIL)' | sed 's/^/  /'
  if [ $rc = 0 ]; then
    echo "PASS: soak/agent_faults $kills $upgrades $policies ($(($(date +%s) - t0))s)"
    passed=$((passed + 1))
  else
    echo "FAIL: soak/agent_faults $kills $upgrades $policies (exit $rc, $(($(date +%s) - t0))s; log: $log)"
    sed -n '/GHOST-VM: start/,$p' "$log" | tr -d '\r' | tail -n 60 | sed 's/^/  guest: /'
    failed=$((failed + 1))
  fi
done
echo "== $(($(date +%s) - start))s"
echo "soak: $passed passed, $failed failed"
[ "$failed" = 0 ]
