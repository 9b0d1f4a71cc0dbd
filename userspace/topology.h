// The machine's CPU topology: SMT siblings, last-level caches (an AMD CCX is
// one LLC), NUMA nodes. Read from sysfs on a real machine, or built from a
// named preset / a shape for the simulator. Policies use it to place threads
// near their caches; the simulator uses it as the machine it models.
#ifndef GHOST_SCX_USERSPACE_TOPOLOGY_H_
#define GHOST_SCX_USERSPACE_TOPOLOGY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/cpu_list.h"

namespace ghost {

// One logical CPU. Ids are dense: core ids are unique machine-wide (not
// per package as in sysfs), llc and numa ids count from 0.
struct CpuInfo {
  int core = 0;     // physical core; SMT siblings share it
  int package = 0;  // socket
  int llc = 0;      // last-level cache domain (L3, CCX)
  int numa = 0;     // NUMA node
};

// A regular machine: packages x cores x SMT threads. CPU numbering is Linux's
// on x86: first thread of every core first, then the second threads, so the
// siblings of CPU c are c and c + (packages * cores_per_package).
struct TopologyShape {
  int packages = 1;
  int cores_per_package = 1;
  int threads_per_core = 1;
  int cores_per_llc = 0;      // 0: one LLC per package
  int nodes_per_package = 1;  // NUMA nodes per package (NPS)
};

class Topology {
 public:
  // Parses root/devices/system/cpu/cpu*/topology/{thread_siblings_list,
  // core_id,physical_package_id}, cpu*/cache/index3/shared_cpu_list (absent:
  // one LLC per package) and root/devices/system/node/node*/cpulist (absent:
  // one node). CPUs must be numbered 0..n-1.
  static absl::StatusOr<Topology> FromSysfs(const std::string& root = "/sys");
  // "skylake": 2 x 28 cores, SMT2 (112 CPUs), one LLC and node per socket.
  // "rome": 2 x 64 cores, SMT2 (256 CPUs), 4-core CCXs, one node per socket.
  // "flatN": N independent CPUs (1 <= N <= GHOST_MAX_CPUS), one LLC, one node.
  static absl::StatusOr<Topology> Preset(absl::string_view name);
  static std::vector<std::string> PresetNames();  // for help and errors
  static absl::StatusOr<Topology> FromShape(const TopologyShape& shape);
  // Any machine: cpus[i] describes CPU i. Ids need not be dense.
  static absl::StatusOr<Topology> FromCpus(const std::vector<CpuInfo>& cpus);

  int num_cpus() const { return static_cast<int>(cpus_.size()); }
  CpuList all_cpus() const { return CpuList::FirstN(num_cpus()); }
  const CpuInfo& cpu(int c) const { return cpus_[c]; }
  // SMT siblings of `cpu`, itself included.
  CpuList siblings(int cpu) const;
  int llc(int cpu) const { return cpus_[cpu].llc; }
  CpuList cpus_in_llc(int llc) const;
  int numa_node(int cpu) const { return cpus_[cpu].numa; }
  CpuList cpus_in_node(int node) const;
  int num_llcs() const { return num_llcs_; }
  int num_nodes() const { return num_nodes_; }
  int num_cores() const { return num_cores_; }
  // "112 CPUs, 56 cores, 2 LLCs, 2 nodes"
  std::string ToString() const;

 private:
  std::vector<CpuInfo> cpus_;
  int num_llcs_ = 0, num_nodes_ = 0, num_cores_ = 0;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_TOPOLOGY_H_
