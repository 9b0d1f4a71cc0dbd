#!/usr/bin/env bash
# The unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer
# (`make sanitize`, or `make test` through tests/run.sh). Prints one line
# "PASS: ..." or "FAIL: ... -> why", as tests/run.sh counts them; on a failure
# the sanitizer's report and the failed tests follow, indented.
#
#   BUILD_SAN=DIR   where the sanitized build is (default: build-san)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${BUILD_SAN:-$top/build-san}/unit_tests
name="unit_tests under ASan+UBSan"
if [ ! -x "$bin" ]; then
  echo "FAIL: $name -> $bin is not built (make sanitize builds and runs it)"
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Any finding ends the run with a report: ASan stops at its first error,
# UBSan (built with -fno-sanitize-recover) too, LeakSanitizer at exit. Ours
# come last, so options from the environment cannot turn these off.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1" \
  "$bin" --gtest_brief=1 >"$out" 2>&1
rc=$?
total=$(sed -n 's/^\[==========\] \([0-9]*\) tests\? from .* ran.*/\1/p' "$out" | tail -1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
if [ "$rc" = 0 ] && [ -n "$total" ] && ! grep -q '^\[  FAILED  \]' "$out" &&
   ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer)|runtime error:' "$out"; then
  echo "PASS: $name ($total tests${skipped:+, $skipped skipped})"
  exit 0
fi
if grep -qE 'Sanitizer|runtime error:' "$out"; then
  why="sanitizer report"
elif [ -z "$total" ]; then
  why="did not run to the end (exit $rc)"
else
  why="$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1) test(s) failed"
fi
echo "FAIL: $name -> $why"
tail -n 150 "$out" | sed 's/^/  /'
exit 1
