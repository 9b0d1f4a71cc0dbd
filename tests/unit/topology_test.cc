#include "userspace/topology.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ghost {
namespace {

namespace fs = std::filesystem;

// A fake sysfs tree in a fresh temp dir, removed at the end of the test.
class FakeSysfs {
 public:
  FakeSysfs() {
    char tmpl[] = "/tmp/topology_test.XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~FakeSysfs() { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  void Cpu(int cpu, const std::string& siblings, int core_id, int pkg, const std::string& l3) {
    const std::string b = absl::StrCat("devices/system/cpu/cpu", cpu);
    Write(b + "/topology/thread_siblings_list", siblings);
    Write(b + "/topology/core_id", std::to_string(core_id));
    Write(b + "/topology/physical_package_id", std::to_string(pkg));
    if (!l3.empty()) Write(b + "/cache/index3/shared_cpu_list", l3);
  }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

TEST(TopologyTest, ParsesTwoSocketSmt) {
  // 2 sockets x 2 cores x SMT2, Linux numbering: siblings are c and c+4.
  FakeSysfs s;
  for (int c = 0; c < 8; c++) {
    const int core = c % 4, pkg = core / 2;
    s.Cpu(c, absl::StrCat(core, ",", core + 4), core % 2, pkg, pkg == 0 ? "0-1,4-5" : "2-3,6-7");
  }
  s.Write("devices/system/cpu/online", "0-7");  // not a cpuN entry: ignored
  s.Write("devices/system/node/node0/cpulist", "0-1,4-5");
  s.Write("devices/system/node/node1/cpulist", "2-3,6-7");
  absl::StatusOr<Topology> t = Topology::FromSysfs(s.root());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_cpus(), 8);
  EXPECT_EQ(t->num_cores(), 4);
  EXPECT_EQ(t->siblings(1), (CpuList{1, 5}));
  EXPECT_EQ(t->siblings(6), (CpuList{2, 6}));
  EXPECT_EQ(t->num_llcs(), 2);
  EXPECT_EQ(t->llc(0), t->llc(5));
  EXPECT_NE(t->llc(0), t->llc(2));
  EXPECT_EQ(t->numa_node(6), 1);
  EXPECT_EQ(t->numa_node(4), 0);
  EXPECT_EQ(t->cpus_in_node(1), (CpuList{2, 3, 6, 7}));
}

TEST(TopologyTest, ParsesAmdCcx) {
  // One socket, 8 cores without SMT, two 4-core CCXs, no NUMA directory.
  FakeSysfs s;
  for (int c = 0; c < 8; c++) s.Cpu(c, std::to_string(c), c, 0, c < 4 ? "0-3" : "4-7");
  absl::StatusOr<Topology> t = Topology::FromSysfs(s.root());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_llcs(), 2);
  EXPECT_EQ(t->cpus_in_llc(t->llc(5)), (CpuList{4, 5, 6, 7}));
  EXPECT_EQ(t->siblings(3), (CpuList{3}));
  EXPECT_EQ(t->num_nodes(), 1);
}

TEST(TopologyTest, NoL3MeansOneLlcPerPackage) {
  FakeSysfs s;
  for (int c = 0; c < 4; c++) s.Cpu(c, std::to_string(c), c % 2, c / 2, "");
  absl::StatusOr<Topology> t = Topology::FromSysfs(s.root());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_llcs(), 2);
  EXPECT_EQ(t->llc(0), t->llc(1));
  EXPECT_NE(t->llc(1), t->llc(2));
}

TEST(TopologyTest, RejectsBrokenSysfs) {
  FakeSysfs missing;
  EXPECT_FALSE(Topology::FromSysfs(missing.root()).ok());
  FakeSysfs hole;
  hole.Cpu(0, "0", 0, 0, "0");
  hole.Cpu(2, "2", 2, 0, "0");
  EXPECT_FALSE(Topology::FromSysfs(hole.root()).ok());
  FakeSysfs garbage;
  garbage.Cpu(0, "zero", 0, 0, "0");
  EXPECT_FALSE(Topology::FromSysfs(garbage.root()).ok());
  FakeSysfs notself;
  notself.Cpu(0, "1", 0, 0, "0");
  EXPECT_FALSE(Topology::FromSysfs(notself.root()).ok());
}

TEST(TopologyTest, Presets) {
  absl::StatusOr<Topology> sky = Topology::Preset("skylake");
  ASSERT_TRUE(sky.ok());
  EXPECT_EQ(sky->num_cpus(), 112);
  EXPECT_EQ(sky->num_cores(), 56);
  EXPECT_EQ(sky->siblings(3), (CpuList{3, 59}));
  EXPECT_EQ(sky->num_nodes(), 2);
  EXPECT_EQ(sky->numa_node(28), 1);
  EXPECT_EQ(sky->numa_node(59), 0);

  absl::StatusOr<Topology> rome = Topology::Preset("rome");
  ASSERT_TRUE(rome.ok());
  EXPECT_EQ(rome->num_cpus(), 256);
  EXPECT_EQ(rome->num_llcs(), 32);
  EXPECT_EQ(rome->cpus_in_llc(rome->llc(5)), (CpuList{4, 5, 6, 7, 132, 133, 134, 135}));
  EXPECT_EQ(rome->cpus_in_node(1).Size(), 128);

  absl::StatusOr<Topology> flat = Topology::Preset("flat20");
  ASSERT_TRUE(flat.ok());
  EXPECT_EQ(flat->num_cpus(), 20);
  EXPECT_EQ(flat->siblings(7), (CpuList{7}));

  for (const char* bad : {"flat0", "flat257", "flat", "flat-3", "flatx", "epyc", ""}) {
    EXPECT_FALSE(Topology::Preset(bad).ok()) << bad;
  }
}

TEST(TopologyTest, CustomShapes) {
  absl::StatusOr<Topology> t = Topology::FromShape(
      {.packages = 1, .cores_per_package = 8, .threads_per_core = 2, .cores_per_llc = 2,
       .nodes_per_package = 2});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_cpus(), 16);
  EXPECT_EQ(t->num_llcs(), 4);
  EXPECT_EQ(t->cpus_in_node(1), (CpuList{4, 5, 6, 7, 12, 13, 14, 15}));
  EXPECT_FALSE(Topology::FromShape({.packages = 0}).ok());
  EXPECT_FALSE(Topology::FromShape({.packages = 4, .cores_per_package = 64,
                                    .threads_per_core = 2}).ok());
  EXPECT_FALSE(Topology::FromCpus({}).ok());
}

}  // namespace
}  // namespace ghost
