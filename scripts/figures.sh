#!/bin/bash
# `make figures`: the ghOSt paper's figures from the simulator, each as its raw
# CSV (one ghost-sim row per run) and a PNG that gnuplot renders from it, in
# docs/figures/ (FIGURES_DIR to write elsewhere):
#   fig6a   load vs p99 latency of the dispersive RPC workload (RocksDB's mix:
#           99.5 % 4 us GETs, 0.5 % 10 ms range scans) on the paper's 20 CPUs
#           (flat21: 20 worker CPUs and the agent's), for Shinjuku, the
#           centralized FIFO and the CFS-like baseline; the median of 3 seeds;
#   fig5    SOL's placements per second against the number of CPUs (ping-pong
#           pairs, every wake-up a placement), up to Rome's 256;
#   search  the search policy against the others on two nodes of Rome, with
#           cache refills charged (docs/POLICIES.md, "Search");
# and docs/figures/summary.txt: the highest load each policy holds at a p99 of
# 10x the mean service time, and Shinjuku's ratios to the others (the issue's
# aim: 1.2x the centralized FIFO, 1.3x the default scheduler). About 10
# minutes on a 2-core host. Needs gnuplot: installed when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
sim=build/ghost-sim
out=${FIGURES_DIR:-docs/figures}
die() { echo "figures: $*" >&2; exit 2; }
[ -x "$sim" ] || die "$sim is missing (make all)"
if ! command -v gnuplot >/dev/null; then
  [ "$(id -u)" = 0 ] || die "needs gnuplot (apt-get install gnuplot-nox)"
  echo "figures: installing gnuplot-nox"
  apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; } ||
    die "could not install gnuplot-nox"
fi
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# col FILE NAME...: the named columns of a ghost-sim CSV (header first), spaces apart.
col() {
  local f=$1
  shift
  awk -F, -v names="$*" 'NR == 1 { n = split(names, want, " ");
      for (i = 1; i <= NF; i++) idx[$i] = i; next }
    { line = ""; for (k = 1; k <= n; k++) line = line (k > 1 ? " " : "") $idx[want[k]]; print line }' "$f"
}
# runs LABEL FILE ARGS...: one or more ghost-sim rows appended to FILE (one header).
runs() {
  local label=$1 file=$2
  shift 2
  echo "figures: $label"
  "$sim" "$@" --format=csv >"$tmp/one.csv" || die "ghost-sim $* failed"
  if [ -s "$file" ]; then tail -n +2 "$tmp/one.csv" >>"$file"; else cp "$tmp/one.csv" "$file"; fi
}

# --- Fig. 6a ------------------------------------------------------------------
loads=0.5,0.55,0.6,0.62,0.64,0.66,0.68,0.7,0.72,0.74,0.76,0.78,0.8,0.85,0.9,0.95,0.97,0.99
policies="shinjuku fifo-centralized baseline-fair"
rm -f "$out/fig6a.csv"
n=0
for p in $policies; do
  for seed in 1 2 3; do
    n=$((n + 1))
    runs "fig6a: $p, seed $seed ($n of 9)" "$out/fig6a.csv" \
      --policy="$p" --seed="$seed" --sweep="$loads" --duration=500ms
  done
done
# Median p99 over the seeds, per policy and load: "load p99(policy 1) p99(policy 2) ...".
col "$out/fig6a.csv" policy load latency_p99_us | sort -k1,1 -k2,2n -k3,3n | awk '
  { key = $1 " " $2; v[key, ++c[key]] = $3; if (!(key in seen)) { seen[key] = 1; keys[++nk] = key } }
  END { for (i = 1; i <= nk; i++) { k = keys[i]; print k, v[k, int((c[k] + 1) / 2)] } }' >"$tmp/median"
# The dispersive mix's mean service time: 0.995 x 4 us + 0.005 x 10 ms.
mean_us=53.98
target=$(awk -v m=$mean_us 'BEGIN { print 10 * m }')
{
  echo "# Fig. 6a (simulator): load vs p99 latency, median of 3 seeds; p99 target 10 x $mean_us us"
  awk -v t="$target" '{ p[$1] = 1; if (!($1 in broken)) { if ($3 <= t) held[$1] = $2; else broken[$1] = 1 } }
    END { for (x in p) printf "holds %s %s\n", x, (x in held) ? held[x] : "none" }' "$tmp/median" | sort
} >"$tmp/holds"
held() { awk -v p="$1" '$2 == p { print $3 }' "$tmp/holds"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "none" || a == "none") print "n/a"; else printf "%.2f", a / b }'; }
{
  echo "Fig. 6a, simulator (flat21, dispersive RPC, 500 ms per point, median p99 of seeds 1-3)"
  echo "p99 target: 10 x the mean service time ($mean_us us) = $target us"
  for p in $policies; do echo "  $p holds the target up to load $(held "$p")"; done
  echo "  shinjuku / fifo-centralized: $(ratio "$(held shinjuku)" "$(held fifo-centralized)")x (aim 1.2x)"
  echo "  shinjuku / baseline-fair:    $(ratio "$(held shinjuku)" "$(held baseline-fair)")x (aim 1.3x)"
  echo "  (the grid stops at 0.99: a policy that holds there may hold more)"
} >"$out/summary.txt"
for p in $policies; do awk -v p="$p" '$1 == p { print $2, $3 }' "$tmp/median" >"$tmp/$p.dat"; done
gnuplot <<EOF
set terminal png size 900,600
set output "$out/fig6a.png"
set title "Fig. 6a (simulator): dispersive RPC on 20 CPUs, p99 latency (median of 3 seeds)"
set xlabel "offered load (fraction of the 20 worker CPUs)"
set ylabel "p99 latency (us)"
set logscale y
set key top left
set grid
plot "$tmp/shinjuku.dat" with linespoints title "shinjuku (30 us slices)", \
     "$tmp/fifo-centralized.dat" with linespoints title "fifo-centralized", \
     "$tmp/baseline-fair.dat" with linespoints title "baseline-fair (CFS-like)", \
     $target with lines dashtype 2 title "10 x mean service time"
EOF

# --- Fig. 5 -------------------------------------------------------------------
rm -f "$out/fig5.csv"
for m in flat3 flat5 flat9 flat17 flat33 flat65 flat129 rome; do
  runs "fig5: sol on $m" "$out/fig5.csv" --policy=sol --workload=pingpong --machine="$m" --duration=50ms
done
col "$out/fig5.csv" enclave_cpus txn_committed duration_s agent_utilization |
  awk '{ printf "%d %.0f %s\n", $1, $2 / $3, $4 }' >"$tmp/fig5.dat"
gnuplot <<EOF
set terminal png size 900,600
set output "$out/fig5.png"
set title "Fig. 5 (simulator): one global agent's placements per second (SOL, ping-pong)"
set xlabel "CPUs in the enclave"
set ylabel "threads scheduled per second"
set y2label "agent busy (fraction)"
set logscale x 2
set y2range [0:1.05]
set ytics nomirror
set y2tics
set key bottom right
set grid
plot "$tmp/fig5.dat" using 1:2 with linespoints title "scheduled/s", \
     "$tmp/fig5.dat" using 1:3 axes x1y2 with linespoints dashtype 2 title "agent busy"
EOF

# --- Search ---------------------------------------------------------------------
rm -f "$out/search.csv"
for p in search fifo-centralized sol baseline-fair; do
  runs "search: $p on rome, cache refills charged" "$out/search.csv" --policy="$p" \
    --machine=rome --cpus=0-15,64-79 --service=exponential --service-us=200 --load=0.6 \
    --migration-us=5,50,150 --duration=500ms
done
col "$out/search.csv" policy latency_p50_us latency_p99_us completed migrations_llc migrations_node |
  awk '{ printf "%s %s %s %.1f %.1f\n", $1, $2, $3, 1000 * $5 / $4, 1000 * $6 / $4 }' >"$tmp/search.dat"
gnuplot <<EOF
set terminal png size 1000,500
set output "$out/search.png"
set multiplot layout 1,2 title "Search (simulator): rome, 2 nodes x 4 CCXs, load 0.6, refills 5/50/150 us"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key above
set xtics rotate by -20
set grid ytics
set ylabel "latency (us)"
plot "$tmp/search.dat" using 2:xtic(1) title "p50", "" using 3 title "p99"
set ylabel "runs per 1000 requests"
plot "$tmp/search.dat" using 4:xtic(1) title "another CCX of its node", "" using 5 title "another node"
unset multiplot
EOF
cat "$out/summary.txt"
echo "figures: wrote $out/{fig6a,fig5,search}.{csv,png} and $out/summary.txt"
