# The demo run by `make demo` (in the VM, or on a sched_ext host as root):
# the demo's mixed workload (ghost-bench --workload=mixed: sleeping workers
# woken at a rate that loads the CPUs, short and long compute bursts) under
# each scheduler, then one table of completions and wake-up latency.
# Adding a scheduler (e.g. a ghOSt policy) = one more `bench_row` call.
#   demo.sh [THREADS] [DURATION]     defaults: 16 threads, 3s
set -u
fail() { echo "demo: FAILED: $*"; exit 1; }
threads=${1:-16}
duration=${2:-3s}
rows=/tmp/demo.rows
: >"$rows"
echo "== ghost-scx demo: kernel $(uname -r), $(nproc) CPUs"
[ "$(cat /sys/kernel/sched_ext/state)" = disabled ] || fail "another sched_ext class is loaded"

agent=""
start_agent() {  # start_agent [ghost-agent flags]: attach the class, wait for 'enabled'
  ghost-agent --stats "$@" >/tmp/agent.log 2>&1 &
  agent=$!
  i=0
  while [ "$(cat /sys/kernel/sched_ext/state)" != enabled ]; do
    i=$((i + 1)); [ $i -gt 100 ] && { cat /tmp/agent.log; fail "class not enabled"; }; sleep 0.1
  done
  echo "ghost-agent attached: ops=$(cat /sys/kernel/sched_ext/root/ops)"
}
stop_agent() {
  kill -TERM "$agent"; wait "$agent" || { cat /tmp/agent.log; fail "agent exit $?"; }
  sed 's/^/   /' /tmp/agent.log
  agent=""
}
bench_row() {  # bench_row LABEL [ghost-bench flags]: run mixed, keep its CSV record
  label=$1; shift
  echo "-- $label: $threads threads, mixed workload for $duration"
  ghost-bench --workload=mixed --threads="$threads" --duration="$duration" --label="$label" \
    --format=csv "$@" >/tmp/row.csv || { cat /tmp/row.csv; fail "ghost-bench under $label"; }
  sed -n 2p /tmp/row.csv >>"$rows"
}

start_agent
bench_row ghost-fifo --expect-class
stop_agent
echo "ghost-agent detached: state=$(cat /sys/kernel/sched_ext/state)"
bench_row default-eevdf --nosched-ext

# CSV: workload,label,metric,threads,completions,p50_us,p99_us,...
awk -F, 'BEGIN {
  printf "\n%-16s %12s %18s %18s\n", "scheduler", "completions", "wakeup p50 (us)", "wakeup p99 (us)" }
  { printf "%-16s %12d %18.1f %18.1f\n", $2, $5, $6, $7 }' "$rows"
echo "(TCG: absolute times are meaningless; compare rows, not numbers with real hardware)"
echo "demo: OK"
