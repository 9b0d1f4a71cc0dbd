#!/usr/bin/env bash
# `make demo`: runs tests/vm/demo/demo.sh. On a host whose kernel has sched_ext
# (and as root) it runs right here; anywhere else it boots the sched_ext test
# kernel under qemu (scripts/kernel.sh fetches one; GHOST_KERNEL overrides).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
cpus=${GHOST_DEMO_CPUS:-4}
if [ -r /sys/kernel/sched_ext/state ] && [ "$(id -u)" = 0 ] && [ -z "${GHOST_DEMO_VM:-}" ]; then
  echo "demo: this kernel has sched_ext: running on the host"
  PATH="$build:$build/vm:$PATH" exec sh "$top/tests/vm/demo/demo.sh" "$@"
fi
echo "demo: no sched_ext on this host: booting the test kernel in qemu ($cpus vCPUs, TCG)"
log="$build/vm/logs/demo.log"
mkdir -p "$(dirname "$log")"
set +e
"$top/tests/vm/vm.sh" --quiet --cpus "$cpus" --timeout 600 --log "$log" "$top/tests/vm/demo/demo.sh" "$@"
rc=$?
set -e
# The guest's own output, without firmware noise and kernel log lines.
sed -n '/GHOST-VM: start/,/^GHOST-VM-EXIT/p' "$log" | grep -v 'GHOST-VM' | grep -v '^\[ *[0-9.]*\] ' || true
echo "demo: guest log: $log"
exit $rc
