#!/usr/bin/env bash
# make mutants: proves that the checks that matter have tests. Each mutant in
# tests/mutants/mutants.txt is a deliberate break of one check (an exact text
# replacement in one file); this script applies it to a scratch copy of the
# tree, rebuilds, runs the VM scenarios the mutant names (and unit tests, named
# "unit:GTEST_FILTER"), and reports whether they caught it (some scenario or
# test failed) or missed it (all passed).
#
#   scripts/mutants.sh [NAME...]      (default: every mutant)
#   MUTANTS_DIR=/tmp/ghost-mutants    scratch tree and its build
#
# The scenarios a mutant names must pass on the unbroken tree first (checked
# once per run); a mutant whose text is not found exactly once is reported as
# "stale" (the code moved: update the mutant), never silently skipped.
# Not part of `make test`: run it before a change to the class is done and
# copy the summary into tests/mutants/README.md.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
list=tests/mutants/mutants.txt
scratch=${MUTANTS_DIR:-/tmp/ghost-mutants}
want=("$@")

# Mutants: "== name", "file: F", "scenarios: a b", then "- old" / "+ new" lines.
declare -a names files scens
declare -A olds news
n=-1
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    "== "*) n=$((n + 1)); names[$n]=${line#== }; olds[$n]=""; news[$n]="" ;;
    "file: "*) files[$n]=${line#file: } ;;
    "scenarios: "*) scens[$n]=${line#scenarios: } ;;
    "- "*) olds[$n]+="${line#- }"$'\n' ;;
    "-") olds[$n]+=$'\n' ;;
    "+ "*) news[$n]+="${line#+ }"$'\n' ;;
    "+") news[$n]+=$'\n' ;;
  esac
done <"$list"
selected=()
for i in $(seq 0 "$n"); do
  if [ ${#want[@]} = 0 ] || printf '%s\n' "${want[@]}" | grep -qx "${names[$i]}"; then selected+=("$i"); fi
done
[ ${#selected[@]} -gt 0 ] || { echo "mutants: no mutant matches: ${want[*]}" >&2; exit 2; }

echo "== scratch tree $scratch/src"
rm -rf "$scratch/src"
mkdir -p "$scratch/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch/src"
export BUILD=$scratch/build
export GHOST_KERNEL=${GHOST_KERNEL:-$(bash scripts/kernel.sh)}
build() {
  make -C "$scratch/src" --no-print-directory -j"$(nproc)" all "$BUILD/unit_tests" >"$scratch/build.log" 2>&1
}
# run NAME...: VM scenarios, and unit tests named unit:FILTER; fails if any fails.
run() {
  local vm=() s rc=0
  : >"$scratch/run.log"
  for s in "$@"; do
    case "$s" in
      unit:*)
        if "$BUILD/unit_tests" --gtest_brief=1 --gtest_filter="${s#unit:}" >>"$scratch/run.log" 2>&1; then
          echo "PASS: unit/${s#unit:}" >>"$scratch/run.log"
        else
          echo "FAIL: unit/${s#unit:} (exit $?)" >>"$scratch/run.log"
          rc=1
        fi ;;
      *) vm+=("$s") ;;
    esac
  done
  if [ ${#vm[@]} -gt 0 ]; then
    (cd "$scratch/src" && GHOST_VM_JOBS=${GHOST_VM_JOBS:-2} bash tests/run.sh --vm-only "${vm[@]}") \
      >>"$scratch/run.log" 2>&1 || rc=1
  fi
  return $rc
}

all_scen=$(for i in "${selected[@]}"; do echo ${scens[$i]}; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "== baseline: building and running $all_scen on the unbroken tree"
build || { tail -20 "$scratch/build.log"; echo "mutants: the unbroken tree does not build" >&2; exit 1; }
# shellcheck disable=SC2086
run $all_scen || { grep -E '^(PASS|FAIL)' "$scratch/run.log"; echo "mutants: the scenarios fail on the unbroken tree" >&2; exit 1; }

caught=0 missed=0 stale=0
summary=()
for i in "${selected[@]}"; do
  name=${names[$i]} file=${files[$i]}
  cp "$scratch/src/$file" "$scratch/orig"
  count=$(OLD=${olds[$i]} perl -0777 -ne '$c = () = /\Q$ENV{OLD}\E/g; print $c' "$scratch/src/$file")
  if [ "$count" != 1 ]; then
    summary+=("stale   $name: its text is in $file $count times (want 1)")
    stale=$((stale + 1))
    continue
  fi
  OLD=${olds[$i]} NEW=${news[$i]} perl -0777 -pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$scratch/src/$file"
  echo "== $name ($file): ${scens[$i]}"
  if ! build; then
    summary+=("broken  $name: the mutant does not build (see $scratch/build.log)")
    stale=$((stale + 1))
  # shellcheck disable=SC2086
  elif run ${scens[$i]}; then
    summary+=("MISSED  $name: ${scens[$i]} all passed")
    missed=$((missed + 1))
  else
    summary+=("caught  $name: $(grep -E '^FAIL: (vm|unit)/' "$scratch/run.log" | sed 's/ (exit.*//; s/^FAIL: //' | tr '\n' ' ')")
    caught=$((caught + 1))
  fi
  cp "$scratch/orig" "$scratch/src/$file"
done
build >/dev/null 2>&1
echo "== mutants ($(date -u +%Y-%m-%d))"
printf '%s\n' "${summary[@]}"
echo "mutants: $caught caught, $missed missed, $stale stale"
[ "$missed" = 0 ] && [ "$stale" = 0 ]
