#!/usr/bin/env bash
# The test runner behind `make test`: host unit tests (GoogleTest), the same
# tests built with ASan+UBSan (tests/sanitize.sh; BUILD_SAN, default
# build-san/), the command-line tools' bad-input checks (tests/cli_test.sh),
# `make install` and the deployment files (tests/install_test.sh), the VM harness
# self-tests, then every VM scenario in tests/vm/scenarios/ inside the
# sched_ext test kernel. Ends with one summary line "test: N passed, N failed".
#
#   tests/run.sh [--vm-only | --host-only] [SCENARIO_NAME...]
#   GHOST_VM_JOBS=N   VMs run in parallel (default: number of CPUs, max 2)
#
# A scenario may set its VM shape on a comment line of its own:
#   # vm: --cpus 4 --smt --timeout 600
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
cd "$top"
host=1 vm=1
names=()
for a in "$@"; do
  case "$a" in
    --vm-only) host=0 ;;
    --host-only) vm=0 ;;
    *) names+=("$a") ;;
  esac
done
passed=0 failed=0
failures=()
start=$(date +%s)

# Echoes PASS:/FAIL: lines from stdin and counts them (a failure under the
# name before its " -> ...").
tally() {
  local line
  while IFS= read -r line; do
    echo "$line"
    case "$line" in
      PASS:*) passed=$((passed + 1)) ;;
      FAIL:*) failed=$((failed + 1)); line=${line#FAIL: }; failures+=("${line%% -> *}") ;;
    esac
  done
}

if [ $host = 1 ]; then
  echo "== host unit tests"
  out=$(mktemp)
  "$build/unit_tests" --gtest_brief=1 2>&1 | tee "$out"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
  total=$(sed -n 's/^\[==========\] \([0-9]*\) tests\? from .* ran.*/\1/p' "$out" | tail -1)
  if [ -z "$total" ]; then
    echo "FAIL: unit_tests did not run to the end"; failed=$((failed + 1)); failures+=(unit_tests)
  else
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    [ "${f:-0}" = 0 ] || failures+=("unit_tests ($f)")
  fi
  rm -f "$out"
  echo "== host unit tests under ASan+UBSan"
  tally < <(BUILD_SAN="${BUILD_SAN:-$top/build-san}" bash tests/sanitize.sh)
  echo "== host command-line checks"
  tally < <(BUILD="$build" bash tests/cli_test.sh)
  echo "== host install checks"
  tally < <(BUILD="$build" bash tests/install_test.sh)
fi

if [ $vm = 1 ]; then
  kernel=$(bash scripts/kernel.sh) || { echo "FAIL: no sched_ext test kernel"; echo "test: $passed passed, $((failed + 1)) failed"; exit 1; }
  echo "== VM tests (kernel: $kernel)"
  export GHOST_KERNEL=$kernel
  mkdir -p "$build/vm/logs"
  jobs=${GHOST_VM_JOBS:-$(nproc)}; [ "$jobs" -gt 2 ] && jobs=2
  results=$(mktemp -d)

  if [ ${#names[@]} = 0 ]; then
    bash tests/vm/harness_test.sh >"$results/harness.out" 2>&1 &
    scen=(tests/vm/scenarios/*.sh)
  else
    scen=()
    for n in "${names[@]}"; do scen+=("tests/vm/scenarios/${n%.sh}.sh"); done
  fi
  run_one() {
    local s=$1 name opts
    name=$(basename "$s" .sh)
    opts=$(sed -n 's/^# vm: //p' "$s" | head -1)
    local t0=$(date +%s)
    # shellcheck disable=SC2086
    tests/vm/vm.sh --quiet $opts --log "$build/vm/logs/$name.log" "$s" >"$results/$name.err" 2>&1
    echo "$? $(( $(date +%s) - t0 ))" >"$results/$name.rc"
  }
  running=0
  for s in "${scen[@]}"; do
    [ -r "$s" ] || { echo "FAIL: no scenario $s"; failed=$((failed + 1)); continue; }
    run_one "$s" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
  for s in "${scen[@]}"; do
    name=$(basename "$s" .sh)
    [ -r "$results/$name.rc" ] || continue
    read -r rc secs <"$results/$name.rc"
    if [ "$rc" = 0 ]; then
      echo "PASS: vm/$name (${secs}s)"; passed=$((passed + 1))
    else
      echo "FAIL: vm/$name (exit $rc, ${secs}s; log: $build/vm/logs/$name.log)"
      sed 's/^/  /' "$results/$name.err"
      # The guest's own output (what the scenario and the kernel printed
      # after boot), so that a CI log alone can be diagnosed.
      sed -n '/GHOST-VM: start/,$p' "$build/vm/logs/$name.log" | tr -d '\r' |
        tail -n 120 | sed 's/^/  guest: /'
      failed=$((failed + 1)); failures+=("vm/$name")
    fi
  done
  [ -r "$results/harness.out" ] && tally <"$results/harness.out"
  rm -rf "$results"
fi

echo "== $(( $(date +%s) - start ))s"
[ ${#failures[@]} = 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "test: $passed passed, $failed failed"
[ "$failed" = 0 ]
