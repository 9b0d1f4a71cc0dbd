#!/usr/bin/env bash
# Proves the VM harness propagates failure: a failing scenario, a guest panic
# and a hung guest each fail the run with their own status, and the topology
# options really shape the guest. Prints one PASS/FAIL line per case.
set -u
here=$(cd "$(dirname "$0")" && pwd)
vm="$here/vm.sh"
logs=${BUILD:-$here/../../build}/vm/logs
failed=0
expect() {  # expect WANT_RC LABEL -- vm.sh args...
  local want=$1 label=$2; shift 3
  "$vm" --quiet "$@" >/dev/null 2>"$logs/selftest-$label.err"
  local rc=$?
  if [ "$rc" = "$want" ]; then
    echo "PASS: harness: $label -> exit $rc ($(head -1 "$logs/selftest-$label.err"))"
  else
    echo "FAIL: harness: $label -> exit $rc, want $want"; sed 's/^/  /' "$logs/selftest-$label.err"
    failed=1
  fi
}
mkdir -p "$logs"
expect 3 failing-scenario -- --log "$logs/selftest-fails.log" "$here/selftest/fails.sh"
expect 125 guest-panic -- --timeout 120 --log "$logs/selftest-panics.log" "$here/selftest/panics.sh"
expect 124 guest-hang -- --timeout 25 --log "$logs/selftest-hangs.log" "$here/selftest/hangs.sh"
expect 0 topology-flat -- --cpus 2 --log "$logs/selftest-flat.log" "$here/selftest/passes.sh" 2 0 1
expect 0 topology-smt-numa -- --cpus 4 --smt --numa --log "$logs/selftest-smt.log" "$here/selftest/passes.sh" 4 0-1 2
expect 1 topology-mismatch -- --cpus 2 --log "$logs/selftest-mismatch.log" "$here/selftest/passes.sh" 2 0-1 1
exit $failed
