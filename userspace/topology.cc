#include "userspace/topology.h"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace ghost {
namespace {

// Numeric suffixes of entries named PREFIX<N> in `dir`, sorted.
std::vector<int> ListNumbered(const std::string& dir, absl::string_view prefix) {
  std::vector<int> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    absl::string_view name(e->d_name);
    int n;
    if (absl::ConsumePrefix(&name, prefix) && !name.empty() &&
        std::all_of(name.begin(), name.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) &&
        absl::SimpleAtoi(name, &n)) {
      out.push_back(n);
    }
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(ss.str()));
}

absl::StatusOr<int> ReadInt(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  int v;
  if (!absl::SimpleAtoi(*text, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": '", *text, "' is not a number"));
  }
  return v;
}

absl::StatusOr<CpuList> ReadList(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<CpuList> l = CpuList::Parse(*text);
  if (!l.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", l.status().message()));
  return l;
}

int FirstCpu(const CpuList& l) {
  std::vector<int> v = l.ToVector();
  return v.empty() ? -1 : v.front();
}

}  // namespace

absl::StatusOr<Topology> Topology::FromCpus(const std::vector<CpuInfo>& cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("a machine needs at least one CPU");
  if (cpus.size() > GHOST_MAX_CPUS) {
    return absl::InvalidArgumentError(
        absl::StrCat(cpus.size(), " CPUs is more than the ABI's ", GHOST_MAX_CPUS));
  }
  // Renumber every id densely in order of first appearance.
  auto dense = [](std::map<int, int>& m, int id) {
    auto [it, inserted] = m.emplace(id, static_cast<int>(m.size()));
    return it->second;
  };
  std::map<int, int> cores, packages, llcs, nodes;
  Topology t;
  for (const CpuInfo& c : cpus) {
    if (c.core < 0 || c.package < 0 || c.llc < 0 || c.numa < 0) {
      return absl::InvalidArgumentError("negative topology id");
    }
    t.cpus_.push_back({.core = dense(cores, c.core),
                       .package = dense(packages, c.package),
                       .llc = dense(llcs, c.llc),
                       .numa = dense(nodes, c.numa)});
  }
  t.num_cores_ = static_cast<int>(cores.size());
  t.num_llcs_ = static_cast<int>(llcs.size());
  t.num_nodes_ = static_cast<int>(nodes.size());
  return t;
}

absl::StatusOr<Topology> Topology::FromShape(const TopologyShape& s) {
  if (s.packages < 1 || s.cores_per_package < 1 || s.threads_per_core < 1 ||
      s.cores_per_llc < 0 || s.nodes_per_package < 1) {
    return absl::InvalidArgumentError("topology shape: every count must be positive");
  }
  const long n = static_cast<long>(s.packages) * s.cores_per_package * s.threads_per_core;
  if (n > GHOST_MAX_CPUS) {
    return absl::InvalidArgumentError(
        absl::StrCat("topology shape has ", n, " CPUs; the ABI allows ", GHOST_MAX_CPUS));
  }
  const int per_llc = s.cores_per_llc == 0 ? s.cores_per_package : s.cores_per_llc;
  const int per_node = std::max(1, s.cores_per_package / s.nodes_per_package);
  const int total_cores = s.packages * s.cores_per_package;
  std::vector<CpuInfo> cpus;
  for (int th = 0; th < s.threads_per_core; th++) {
    for (int core = 0; core < total_cores; core++) {
      const int pkg = core / s.cores_per_package;
      const int in_pkg = core % s.cores_per_package;
      cpus.push_back({.core = core,
                      .package = pkg,
                      .llc = pkg * s.cores_per_package + in_pkg / per_llc * per_llc,
                      .numa = pkg * s.nodes_per_package +
                              std::min(in_pkg / per_node, s.nodes_per_package - 1)});
    }
  }
  return FromCpus(cpus);
}

std::vector<std::string> Topology::PresetNames() { return {"skylake", "rome", "flatN"}; }

absl::StatusOr<Topology> Topology::Preset(absl::string_view name) {
  if (name == "skylake") {
    return FromShape({.packages = 2, .cores_per_package = 28, .threads_per_core = 2});
  }
  if (name == "rome") {
    return FromShape({.packages = 2, .cores_per_package = 64, .threads_per_core = 2,
                      .cores_per_llc = 4});
  }
  absl::string_view rest = name;
  int n;
  if (absl::ConsumePrefix(&rest, "flat") && absl::SimpleAtoi(rest, &n) && !rest.empty() &&
      rest[0] != '+' && rest[0] != '-') {
    if (n < 1 || n > GHOST_MAX_CPUS) {
      return absl::InvalidArgumentError(
          absl::StrCat("machine '", name, "': CPU count must be 1-", GHOST_MAX_CPUS));
    }
    return FromShape({.packages = 1, .cores_per_package = n});
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown machine '", name, "' (known: ", absl::StrJoin(PresetNames(), ", "), ")"));
}

absl::StatusOr<Topology> Topology::FromSysfs(const std::string& root) {
  const std::string cpu_dir = root + "/devices/system/cpu";
  std::vector<int> ids = ListNumbered(cpu_dir, "cpu");
  if (ids.empty()) return absl::NotFoundError(absl::StrCat("no CPUs under ", cpu_dir));
  for (size_t i = 0; i < ids.size(); i++) {
    if (ids[i] != static_cast<int>(i)) {
      return absl::InvalidArgumentError(
          absl::StrCat(cpu_dir, ": CPUs are not numbered 0..n-1 (cpu", i, " missing)"));
    }
  }
  if (ids.size() > GHOST_MAX_CPUS) {
    return absl::InvalidArgumentError(absl::StrCat(ids.size(), " CPUs is more than the ABI's ",
                                                   GHOST_MAX_CPUS));
  }
  std::vector<int> numa(ids.size(), 0);
  for (int node : ListNumbered(root + "/devices/system/node", "node")) {
    absl::StatusOr<CpuList> l =
        ReadList(absl::StrCat(root, "/devices/system/node/node", node, "/cpulist"));
    if (!l.ok()) return l.status();
    for (int c : l->ToVector()) {
      if (c < static_cast<int>(numa.size())) numa[c] = node;
    }
  }
  std::vector<CpuInfo> cpus;
  for (int c : ids) {
    const std::string base = absl::StrCat(cpu_dir, "/cpu", c);
    absl::StatusOr<CpuList> sib = ReadList(base + "/topology/thread_siblings_list");
    if (!sib.ok()) return sib.status();
    if (!sib->IsSet(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(base, "/topology/thread_siblings_list does not contain cpu", c));
    }
    absl::StatusOr<int> core_id = ReadInt(base + "/topology/core_id");
    if (!core_id.ok()) return core_id.status();
    absl::StatusOr<int> pkg = ReadInt(base + "/topology/physical_package_id");
    if (!pkg.ok()) return pkg.status();
    // No L3 information (VMs often lack it): one LLC per package.
    int llc = static_cast<int>(ids.size()) + *pkg;
    const std::string l3 = base + "/cache/index3/shared_cpu_list";
    if (std::ifstream(l3).good()) {
      absl::StatusOr<CpuList> shared = ReadList(l3);
      if (!shared.ok()) return shared.status();
      llc = FirstCpu(*shared);
    }
    // core_id is per package in sysfs; the siblings' first CPU names the core.
    cpus.push_back({.core = FirstCpu(*sib), .package = *pkg, .llc = llc, .numa = numa[c]});
  }
  return FromCpus(cpus);
}

CpuList Topology::siblings(int cpu) const {
  CpuList out;
  if (cpu < 0 || cpu >= num_cpus()) return out;
  for (int c = 0; c < num_cpus(); c++) {
    if (cpus_[c].core == cpus_[cpu].core) out.Set(c);
  }
  return out;
}

CpuList Topology::cpus_in_llc(int llc) const {
  CpuList out;
  for (int c = 0; c < num_cpus(); c++) {
    if (cpus_[c].llc == llc) out.Set(c);
  }
  return out;
}

CpuList Topology::cpus_in_node(int node) const {
  CpuList out;
  for (int c = 0; c < num_cpus(); c++) {
    if (cpus_[c].numa == node) out.Set(c);
  }
  return out;
}

std::string Topology::ToString() const {
  return absl::StrCat(num_cpus(), " CPUs, ", num_cores_, " cores, ", num_llcs_, " LLCs, ",
                      num_nodes_, " NUMA nodes");
}

}  // namespace ghost
