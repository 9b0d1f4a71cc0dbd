// The centralized FIFO's fast path in the simulator: the same workloads with
// the rings on and off complete, and the class's and the policy's counters
// agree with each other.
#include <cstdint>
#include <utility>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "userspace/ring.h"
#include "userspace/sim/simulation.h"

namespace ghost {
namespace sim {
namespace {

// The value after " name=" in the policy's stats line ("" if absent).
std::string Field(const std::string& line, const std::string& name) {
  for (absl::string_view kv : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    if (absl::StartsWith(kv, name + "=")) return std::string(kv.substr(name.size() + 1));
  }
  return "";
}
// The number after "name=" (-1 if absent).
int64_t Stat(const std::string& line, const std::string& name) {
  int64_t v = -1;
  return absl::SimpleAtoi(Field(line, name), &v) ? v : -1;
}
// "name=0:5,1:7" -> the value for `key` (-1 if absent).
int64_t StatOf(const std::string& line, const std::string& name, int key) {
  for (absl::string_view item : absl::StrSplit(Field(line, name), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, ':');
    int64_t v = -1;
    if (kv.first == std::to_string(key) && absl::SimpleAtoi(kv.second, &v)) return v;
  }
  return -1;
}

SimOptions Opts(const std::string& workload, const std::string& fast_path) {
  SimOptions o;
  o.machine = "skylake";  // 2 NUMA nodes
  o.workload = workload;
  o.load = 0.6;
  o.duration = absl::Milliseconds(15);
  o.fast_path = fast_path;
  return o;
}

TEST(SimFastPathTest, SameWorkloadOnAndOffCompletes) {
  for (const char* workload : {"dispersive", "pingpong", "antagonist"}) {
    SCOPED_TRACE(workload);
    absl::StatusOr<SimReport> off = RunSimulation(Opts(workload, "off"));
    absl::StatusOr<SimReport> on = RunSimulation(Opts(workload, "on"));
    ASSERT_TRUE(off.ok()) << off.status();
    ASSERT_TRUE(on.ok()) << on.status();
    EXPECT_FALSE(off->fast_path);
    EXPECT_TRUE(on->fast_path);
    EXPECT_GT(off->completed, 0u);
    EXPECT_GT(on->completed, 0u);
    EXPECT_GE(on->completed * 10, off->completed * 9);  // same offered work
    // Off: no ring was touched, every placement a transaction.
    EXPECT_EQ(off->ring_claims, 0u);
    EXPECT_EQ(off->doorbells, 0u);
    EXPECT_GT(off->txn_committed, 0u);
    EXPECT_NE(off->policy_stats.find("fast_path=off"), std::string::npos);
    // On: idle CPUs took the placements from the rings.
    EXPECT_GT(on->ring_runs, 0u);
    EXPECT_EQ(on->fallback_runs, 0u);
  }
}

TEST(SimFastPathTest, CountersAgree) {
  absl::StatusOr<SimReport> r = RunSimulation(Opts("dispersive", "on"));
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string& s = r->policy_stats;
  ASSERT_NE(s.find("fast_path=on"), std::string::npos) << s;
  // Every claim ended as a run or a stale drop.
  EXPECT_EQ(r->ring_claims, r->ring_runs + r->ring_stale);
  // The policy reaped what the class ran (but the last round's outcomes).
  const int64_t ran = Stat(s, "ring_ran");
  EXPECT_LE(ran, static_cast<int64_t>(r->ring_runs));
  EXPECT_GE(ran + 2 * 256, static_cast<int64_t>(r->ring_runs));
  // Both nodes' rings were pushed to and ran on their own CPUs; the agent's
  // CPU (0) ran nothing.
  EXPECT_GT(StatOf(s, "pushes", 0) + StatOf(s, "wakeup_entries", 0), 0);
  EXPECT_GT(StatOf(s, "pushes", 1) + StatOf(s, "wakeup_entries", 1), 0);
  EXPECT_EQ(StatOf(s, "ran_per_cpu", 0), -1);
  // Entries come from the agent and from the class at wake-up; the agent
  // adopted the class's from their messages (all but the last few).
  const int64_t agent_pushes = StatOf(s, "pushes", 0) + StatOf(s, "pushes", 1);
  const int64_t adopted = StatOf(s, "wakeup_entries", 0) + StatOf(s, "wakeup_entries", 1);
  EXPECT_GT(r->wakeup_pushes, 0u);
  EXPECT_LE(adopted, static_cast<int64_t>(r->wakeup_pushes));
  EXPECT_GE(adopted + 2 * 256, static_cast<int64_t>(r->wakeup_pushes));
  const int64_t pushes = agent_pushes + static_cast<int64_t>(r->wakeup_pushes);
  EXPECT_GE(pushes, static_cast<int64_t>(r->ring_claims));
  // Every push is reaped, revoked or still in a ring at the end.
  EXPECT_GE(pushes, ran + Stat(s, "ring_revoked"));
  EXPECT_EQ(Stat(s, "doorbells"), static_cast<int64_t>(r->doorbells));
  EXPECT_EQ(StatOf(s, "ring_bytes", 0), static_cast<int64_t>(sizeof(ghost_ring)));
  EXPECT_EQ(StatOf(s, "ring_size", 1), 256);
}

TEST(SimFastPathTest, PerNodeRingSizes) {
  SimOptions o = Opts("dispersive", "on");
  o.ring_size = "64,1:8";
  absl::StatusOr<SimReport> r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(StatOf(r->policy_stats, "ring_size", 0), 64);
  EXPECT_EQ(StatOf(r->policy_stats, "ring_size", 1), 8);
  EXPECT_GT(r->ring_runs, 0u);
}

TEST(SimFastPathTest, BadOptionsAreRefused) {
  SimOptions o = Opts("dispersive", "maybe");
  EXPECT_FALSE(RunSimulation(o).ok());
  o = Opts("dispersive", "on");
  o.ring_size = "5";
  EXPECT_FALSE(RunSimulation(o).ok());
  o = Opts("dispersive", "on");
  o.queue_bytes = 1000;
  EXPECT_FALSE(RunSimulation(o).ok());
}

}  // namespace
}  // namespace sim
}  // namespace ghost
