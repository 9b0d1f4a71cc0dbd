// The fast path's CPU -> NUMA node table the class is loaded with
// (ReadNodeTable, bpf_class.h): dense nodes from sysfs, folded beyond
// GHOST_RING_MAX_NODES, one node when the topology cannot be read.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/bpf_class.h"

namespace ghost {
namespace {

namespace fs = std::filesystem;

class FakeNodes {
 public:
  // `ncpus` CPUs without SMT in one package; CPU c on node c / per_node.
  FakeNodes(int ncpus, int per_node) {
    char tmpl[] = "/tmp/node_table_test.XXXXXX";
    root_ = mkdtemp(tmpl);
    for (int c = 0; c < ncpus; c++) {
      const std::string b = absl::StrCat("devices/system/cpu/cpu", c, "/topology/");
      Write(b + "thread_siblings_list", std::to_string(c));
      Write(b + "core_id", std::to_string(c));
      Write(b + "physical_package_id", "0");
    }
    for (int n = 0; per_node > 0 && n * per_node < ncpus; n++) {
      Write(absl::StrCat("devices/system/node/node", n, "/cpulist"),
            absl::StrCat(n * per_node, "-", n * per_node + per_node - 1));
    }
  }
  ~FakeNodes() { fs::remove_all(root_); }
  const std::string& root() const { return root_; }

 private:
  void Write(const std::string& rel, const std::string& text) {
    fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text << "\n";
  }
  std::string root_;
};

TEST(NodeTableTest, TwoNodes) {
  FakeNodes s(4, 2);
  NodeTable t = ReadNodeTable(s.root());
  EXPECT_EQ(t.nr_nodes, 2u);
  EXPECT_EQ(t.cpu_node[0], 0);
  EXPECT_EQ(t.cpu_node[1], 0);
  EXPECT_EQ(t.cpu_node[2], 1);
  EXPECT_EQ(t.cpu_node[3], 1);
}

TEST(NodeTableTest, NodesBeyondTheRingsAreFolded) {
  // 10 nodes of one CPU each: rings 0..7; node 8 shares ring 0, node 9 ring 1.
  FakeNodes s(10, 1);
  NodeTable t = ReadNodeTable(s.root());
  EXPECT_EQ(t.nr_nodes, static_cast<uint32_t>(GHOST_RING_MAX_NODES));
  for (int c = 0; c < 10; c++) EXPECT_EQ(t.cpu_node[c], c % GHOST_RING_MAX_NODES) << c;
  for (int c = 0; c < GHOST_MAX_CPUS; c++) EXPECT_LT(t.cpu_node[c], t.nr_nodes);
}

TEST(NodeTableTest, UnreadableTopologyIsOneNode) {
  NodeTable t = ReadNodeTable("/nonexistent/sysfs");
  EXPECT_EQ(t.nr_nodes, 1u);
  for (int c = 0; c < GHOST_MAX_CPUS; c++) EXPECT_EQ(t.cpu_node[c], 0);
}

}  // namespace
}  // namespace ghost
