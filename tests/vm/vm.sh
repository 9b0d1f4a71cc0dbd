#!/usr/bin/env bash
# Runs one scenario inside the sched_ext test kernel under qemu and exits with
# the scenario's own exit status.
#
#   tests/vm/vm.sh [options] SCENARIO [ARGS...]
#     --cpus N        vCPUs (default 2)
#     --smt           SMT siblings: -smp N,threads=2 (N must be even)
#     --numa          two NUMA nodes, CPUs and memory split evenly (N even)
#     --mem MB        guest memory (default 1024)
#     --timeout S     hard limit for boot + scenario + poweroff (default 300)
#     --log FILE      guest console log (default build/vm/logs/NAME.log)
#     --quiet         don't echo the guest console; print only the verdict
#     --prog NAME     put the host's program NAME (from PATH, e.g. one of Debian's
#                     rt-tests or stress-ng) into the guest's /usr/bin with every
#                     shared library it needs, at the host's paths; repeatable
#     --file PATH     put the host file PATH (relative paths: from the current
#                     directory, else from the repository's top) into the
#                     guest's /bin, e.g. a shell library scenarios source; repeatable
#
# SCENARIO is a shell script (run by busybox sh as /scenario.sh with ARGS).
# The initramfs holds busybox, every build/ghost-* binary and every build/vm/*
# test binary in /bin, and files listed in $GHOST_VM_FILES (space-separated).
#
# Exit status: the scenario's own, or
#   124  the guest hung (no result before --timeout)
#   125  the guest kernel panicked or oopsed (even if the scenario passed)
#   126  the guest stopped without reporting a result, or the harness failed
# TOOLCHAIN.md: single-threaded TCG and tsc=unstable are both required, or
# boots crash at random.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$top/build}
cpus=2 smt=0 numa=0 mem=1024 timeout_s=300 log="" quiet=0
progs=()
files=()

die() { echo "vm: $*" >&2; exit 126; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cpus) cpus=${2:?}; shift 2 ;;
    --smt) smt=1; shift ;;
    --numa) numa=1; shift ;;
    --mem) mem=${2:?}; shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --log) log=${2:?}; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --prog) progs+=("${2:?}"); shift 2 ;;
    --file) files+=("${2:?}"); shift 2 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see the top of tests/vm/vm.sh)" ;;
    *) break ;;
  esac
done
scenario=${1:-}; [ -n "$scenario" ] || die "usage: vm.sh [options] SCENARIO [ARGS...]"
shift
[ -r "$scenario" ] || die "no such scenario: $scenario"
[[ "$cpus" =~ ^[0-9]+$ ]] && [ "$cpus" -ge 1 ] && [ "$cpus" -le 64 ] || die "--cpus must be 1-64, not '$cpus'"
[[ "$timeout_s" =~ ^[0-9]+$ ]] && [ "$timeout_s" -ge 1 ] || die "--timeout must be a positive number of seconds"
[[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -ge 256 ] || die "--mem must be at least 256 (MB)"
if [ $smt = 1 ] || [ $numa = 1 ]; then
  [ $((cpus % 2)) = 0 ] || die "--smt and --numa need an even --cpus"
fi

name=$(basename "$scenario" .sh)
mkdir -p "$build/vm/logs"
[ -n "$log" ] || log="$build/vm/logs/$name.log"
kernel=$(bash "$top/scripts/kernel.sh") || die "no test kernel (scripts/kernel.sh failed)"
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || die "busybox not found: run 'make deps'"
file "$busybox" 2>/dev/null | grep -q 'statically linked' || die "$busybox is not static: install busybox-static ('make deps')"

work=$(mktemp -d "${TMPDIR:-/tmp}/ghost-vm.XXXXXX")
trap '[ -z "${watcher:-}" ] || kill "$watcher" 2>/dev/null || true; rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,etc}
cp "$busybox" "$root/bin/busybox"
for b in "$build"/ghost-* "$build"/vm/*; do
  [ -f "$b" ] && [ -x "$b" ] && cp "$b" "$root/bin/"
done
for f in ${GHOST_VM_FILES:-}; do cp "$f" "$root/bin/"; done
for f in "${files[@]}"; do
  [ -r "$f" ] || [ "${f#/}" != "$f" ] || f=$top/$f
  [ -r "$f" ] || die "--file $f: no such file"
  cp "$f" "$root/bin/"
done
# Dynamically linked programs keep the host's paths for themselves, their
# libraries and the loader; `ldd` names all three.
for p in "${progs[@]}"; do
  path=$(command -v "$p") || die "--prog $p: not installed on the host ('make deps' installs rt-tests and stress-ng)"
  mkdir -p "$root/usr/bin"
  cp "$path" "$root/usr/bin/"
  for lib in $(ldd "$path" 2>/dev/null | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    [ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
  done
done
cp "$scenario" "$root/scenario.sh"
: >"$root/args"
for a in "$@"; do printf '%s\n' "$a" >>"$root/args"; done
cat >"$root/init" <<'EOI'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ulimit -l unlimited
set --
while IFS= read -r a; do set -- "$@" "$a"; done </args
echo "GHOST-VM: start $(uname -r) cpus=$(nproc)"
sh /scenario.sh "$@"
rc=$?
echo "GHOST-VM-EXIT: $rc"
poweroff -f
EOI
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initrd.cpio"

smp="$cpus"
[ $smt = 1 ] && smp="$cpus,sockets=1,cores=$((cpus / 2)),threads=2"
numa_args=()
if [ $numa = 1 ]; then
  half=$((cpus / 2)) m=$((mem / 2))
  numa_args=(-object "memory-backend-ram,id=m0,size=${m}M" -object "memory-backend-ram,id=m1,size=$((mem - m))M"
             -numa "node,nodeid=0,cpus=0-$((half - 1)),memdev=m0" -numa "node,nodeid=1,cpus=$half-$((cpus - 1)),memdev=m1")
fi

# The guest's clock follows the host's: a host that stands still for seconds
# is a jump for the guest, and its watchdogs fire at once. Such stalls are
# noted in the log, to tell that failure from the scheduler's.
host_watch() {
  local prev=${EPOCHREALTIME/./} now
  while sleep 0.5 && kill -0 $$ 2>/dev/null; do
    now=${EPOCHREALTIME/./}
    if [ $((now - prev)) -gt 2500000 ]; then
      echo "vm: the host stood still for $(((now - prev - 500000) / 1000)) ms (until $(date +%T))" >>"$work/host_stalls"
    fi
    prev=$now
  done
}
host_watch &
watcher=$!
set +e
if [ $quiet = 1 ]; then
  timeout -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=single -cpu max -m "${mem}M" -smp "$smp" \
    "${numa_args[@]}" -nographic -no-reboot -kernel "$kernel" -initrd "$work/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 tsc=unstable oops=panic" </dev/null >"$log" 2>&1
  qrc=$?
else
  timeout -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg,thread=single -cpu max -m "${mem}M" -smp "$smp" \
    "${numa_args[@]}" -nographic -no-reboot -kernel "$kernel" -initrd "$work/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 tsc=unstable oops=panic" </dev/null 2>&1 | tee "$log"
  qrc=${PIPESTATUS[0]}
fi
set -e
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
watcher=

tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"
[ -s "$work/host_stalls" ] && cat "$work/host_stalls" >>"$log"
if grep -qE 'Kernel panic|Oops:|BUG: |general protection fault' "$log"; then
  echo "vm: $name: guest kernel panicked or oopsed (log: $log):" >&2
  grep -m3 -E 'Kernel panic|Oops:|BUG: |general protection fault' "$log" | sed 's/^/vm:   /' >&2
  exit 125
fi
rc=$(sed -n 's/^GHOST-VM-EXIT: \([0-9]*\)$/\1/p' "$log" | tail -1)
if [ -n "$rc" ]; then
  if [ "$rc" != 0 ]; then
    echo "vm: $name: scenario failed with exit status $rc (log: $log)" >&2
    [ -s "$work/host_stalls" ] && sed "s/^vm: /vm: $name: /" "$work/host_stalls" >&2
  fi
  exit "$rc"
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "vm: $name: guest hung: no result within ${timeout_s}s (log: $log)" >&2
  exit 124
fi
echo "vm: $name: guest stopped without a result (qemu exit $qrc; log: $log)" >&2
exit 126
