# Harness self-test: a passing scenario passes, and the guest has what the
# runner promises (CPUs, SMT siblings, NUMA nodes, bpffs, our binaries).
set -u
[ "$(nproc)" = "$1" ] || { echo "FAIL: nproc=$(nproc), want $1"; exit 1; }
sib=$(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list)
[ "$sib" = "$2" ] || { echo "FAIL: cpu0 siblings '$sib', want '$2'"; exit 1; }
nodes=$(ls -d /sys/devices/system/node/node* | wc -l)
[ "$nodes" = "$3" ] || { echo "FAIL: $nodes NUMA nodes, want $3"; exit 1; }
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || { echo "FAIL: no bpffs"; exit 1; }
[ -x /bin/ghost-agent ] || { echo "FAIL: ghost-agent missing"; exit 1; }
echo "PASS: $(nproc) cpus, siblings $sib, $nodes nodes"
