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
  rm -f /tmp/agent.log  # else the wait below may read the previous agent's log
  ghost-agent --stats "$@" >/tmp/agent.log 2>&1 &
  agent=$!
  i=0
  while ! grep -qs 'ghost-agent: \(policy\|class\)' /tmp/agent.log; do
    i=$((i + 1)); [ $i -gt 150 ] && { cat /tmp/agent.log; fail "agent did not start"; }; sleep 0.1
  done
  echo "ghost-agent attached: ops=$(cat /sys/kernel/sched_ext/root/ops)"
}
stop_agent() {  # also appends the class's fallback runs to the last row
  kill -TERM "$agent"; wait "$agent" || { cat /tmp/agent.log; fail "agent exit $?"; }
  sed 's/^/   /' /tmp/agent.log
  agent=""
  fb=$(sed -n 's/.*fallback_runs=\([0-9]*\).*/\1/p' /tmp/agent.log)
  sed -i "\$ s/\$/,${fb:-?}/" "$rows"
}
bench_row() {  # bench_row LABEL [ghost-bench flags]: run mixed, keep its CSV record
  label=$1; shift
  echo "-- $label: $threads threads, mixed workload for $duration"
  ghost-bench --workload=mixed --threads="$threads" --duration="$duration" --label="$label" \
    --format=csv "$@" >/tmp/row.csv || { cat /tmp/row.csv; fail "ghost-bench under $label"; }
  sed -n 2p /tmp/row.csv >>"$rows"
}

# The class alone: SCHED_EXT threads of no enclave run in its BPF FIFO.
start_agent --policy=none
bench_row class-fifo --expect-class
stop_agent
sed -i '$ s/,[^,]*$/,-/' "$rows"  # with no enclave every run is a FIFO run
# The ghOSt policies: the measured threads join the agent's enclave
# (--enclave=0), the wakers stay in the fair class as in the other rows.
# fifo-centralized runs three times: as shipped (the fast path: idle CPUs take
# the agent's threads from its rings in BPF, the class pushes wake-ups there
# itself, the rings hold the backlog and the global agent sleeps when idle, its
# CPU running threads meanwhile), with shallow rings and a spinning agent
# (-spin: --ring-depth=idle --agent-sleep-us=0, the defaults before
# 2026-12-06) and with transactions only (-txn).
for row in ${GHOST_DEMO_POLICIES:-fifo-per-cpu fifo-centralized fifo-centralized-spin fifo-centralized-txn}; do
  case $row in
    fifo-centralized) start_agent --policy=fifo-centralized --fast-path=on ;;
    fifo-centralized-spin)
      start_agent --policy=fifo-centralized --fast-path=on --ring-depth=idle --agent-sleep-us=0 ;;
    fifo-centralized-txn) start_agent --policy=fifo-centralized --fast-path=off ;;
    *) start_agent --policy=$row ;;
  esac
  bench_row "$row" --expect-class --enclave=0
  stop_agent
done
echo "ghost-agent detached: state=$(cat /sys/kernel/sched_ext/state)"
bench_row default-eevdf --nosched-ext
sed -i '$ s/$/,-/' "$rows"

# CSV: workload,label,metric,threads,completions,p50_us,p99_us,... then our fallback count.
awk -F, 'BEGIN {
  printf "\n%-22s %12s %16s %16s %14s\n", "scheduler", "completions", "wakeup p50 (us)", "wakeup p99 (us)", "fallback runs" }
  { printf "%-22s %12d %16.1f %16.1f %14s\n", $2, $5, $6, $7, $NF }' "$rows"
echo "(fallback runs: threads the agent did not place within --watchdog-ms, run by the class's FIFO)"
echo "(TCG: absolute times are meaningless; compare rows, not numbers with real hardware)"
echo "demo: OK"
