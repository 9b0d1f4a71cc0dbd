// The centralized FIFO's fast path in the simulator: the same workloads with
// the rings on and off complete, the class's and the policy's counters agree
// with each other, and a global agent that sleeps lends its CPU to the rings.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"
#include "userspace/ring.h"
#include "userspace/sim/machine.h"
#include "userspace/sim/sim_kernel_side.h"
#include "userspace/sim/simulation.h"
#include "userspace/topology.h"

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
  SimOptions o = Opts("dispersive", "on");
  o.agent_sleep_us = 0;  // the agent spins: its CPU runs nothing (below)
  absl::StatusOr<SimReport> r = RunSimulation(o);
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

// --agent-sleep-us=1000 (the default, as in ghost-agent): with deep rings
// the agent's FIFO stays empty, so it sleeps between messages and its CPU
// runs ring entries meanwhile; 0: it spins and its CPU runs nothing.
TEST(SimFastPathTest, SleepingAgentsCpuRunsRingEntries) {
  SimOptions o = Opts("dispersive", "on");
  o.agent_sleep_us = 1000;
  o.ring_depth = "all";
  absl::StatusOr<SimReport> sleep = RunSimulation(o);
  o.agent_sleep_us = 0;
  absl::StatusOr<SimReport> spin = RunSimulation(o);
  ASSERT_TRUE(sleep.ok()) << sleep.status();
  ASSERT_TRUE(spin.ok()) << spin.status();

  EXPECT_GT(sleep->agent_sleeps, 0u);
  // CPU 0 (the agent's) ran ring entries, and only while its agent slept.
  const int64_t ran_on_agent_cpu = StatOf(sleep->policy_stats, "ran_per_cpu", 0);
  EXPECT_GT(ran_on_agent_cpu, 0) << sleep->policy_stats;
  EXPECT_LE(ran_on_agent_cpu, static_cast<int64_t>(sleep->agent_cpu_runs));
  EXPECT_LT(sleep->share_agent, spin->share_agent);
  EXPECT_EQ(sleep->fallback_runs, 0u);
  EXPECT_GE(sleep->completed * 100, spin->completed * 99);  // the same work done

  EXPECT_EQ(spin->agent_sleeps, 0u);
  EXPECT_EQ(spin->agent_cpu_runs, 0u);
  EXPECT_EQ(StatOf(spin->policy_stats, "ran_per_cpu", 0), -1);
}

// Waves of wake-ups, more threads than worker CPUs, each running one burst
// per wake-up; between waves the machine is idle. Counts what ran.
class Waves : public Workload {
 public:
  static constexpr int kThreads = 12, kWaves = 60;
  static constexpr uint64_t kBurstNs = 20'000, kPeriodNs = 400'000;
  int wakes = 0, missed = 0, done = 0;
  void Start(Machine& m) override {
    for (int w = 0; w < kWaves; w++) m.Schedule((w + 1) * kPeriodNs, Machine::kWorkloadEvent, 0, 0);
  }
  void OnEvent(Machine& m, const Event& e) override {
    for (int t = 0; t < kThreads; t++) {
      // Still busy with the last wave's burst: that one was late or lost.
      if (m.thread(t).state != ThreadState::kBlocked) {
        missed++;
        continue;
      }
      m.SetBurst(t, kBurstNs);
      m.Wake(t, -1);
      wakes++;
    }
  }
  Next OnBurstEnd(Machine& m, int t) override {
    done++;
    return Next::kBlock;
  }
};

TEST(SimFastPathTest, SleepingAgentLosesNoWork) {
  for (int64_t sleep_us : {0, 1000}) {
    SCOPED_TRACE(sleep_us);
    Machine machine(*Topology::Preset("flat4"), 1);
    SimKernelSide ks(machine, CostModel::Paper());
    Waves waves;
    machine.SetWorkload(&waves);
    ks.EnableRings({0, 0, 0, 0});
    std::unique_ptr<Enclave> enclave = *Enclave::Create(ks, {.cpus = CpuList{0, 1, 2, 3}});
    absl::StatusOr<std::unique_ptr<Policy>> policy =
        MakePolicy({.name = "fifo-centralized",
                    .clock = [&ks] { return ks.Clock(); },
                    .fast_path = PolicyOptions::FastPath::kOn,
                    .agent_sleep = absl::Microseconds(sleep_us),
                    .deep_rings = true},
                   *enclave);
    ASSERT_TRUE(policy.ok()) << policy.status();
    for (Agent* a : (*policy)->agents()) {
      ASSERT_TRUE(ks.RegisterAgent({.cpu = a->cpu(),
                                    .global = a->global(),
                                    .queue = a->queue(),
                                    .run_once = [a] { a->RunOnce(); },
                                    .idle_sleep_ns =
                                        [a] {
                                          return static_cast<uint64_t>(
                                              absl::ToInt64Nanoseconds(a->IdleSleep()));
                                        }})
                      .ok());
    }
    ks.SetGlobalAgentIdlePoll(10'000);
    for (int t = 0; t < Waves::kThreads; t++) {
      ASSERT_GE(ks.SpawnThread(enclave->id(), kWorkerThread, t, false, 0), 0);
    }
    machine.RunUntil((Waves::kWaves + 2) * Waves::kPeriodNs);

    // Every wake-up ran its burst, each wave before the next.
    EXPECT_EQ(waves.wakes, Waves::kThreads * Waves::kWaves);
    EXPECT_EQ(waves.missed, 0);
    EXPECT_EQ(waves.done, waves.wakes);
    EXPECT_EQ(ks.stats().fallback_runs, 0u);
    if (sleep_us == 0) {
      EXPECT_EQ(ks.stats().agent_sleeps, 0u);
      EXPECT_EQ(ks.stats().agent_cpu_runs, 0u);
    } else {
      // It slept in every gap, and its CPU ran some of the waves' threads.
      EXPECT_GE(ks.stats().agent_sleeps, static_cast<uint64_t>(Waves::kWaves));
      EXPECT_GT(ks.stats().agent_cpu_runs, 0u);
    }
  }
}

// --ring-steal: off (the default), every entry runs on its ring's node;
// on, idle CPUs whose own ring is empty take entries from the other node's,
// as the class's consumers do when the ring allows it (GHOST_RING_F_STEAL).
TEST(SimFastPathTest, StealingIsThePolicysChoice) {
  for (const char* steal : {"off", "on"}) {
    SCOPED_TRACE(steal);
    SimOptions o = Opts("dispersive", "on");
    o.ring_steal = steal;
    absl::StatusOr<SimReport> r = RunSimulation(o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(Field(r->policy_stats, "ring_steal"), steal);
    EXPECT_EQ(r->ring_claims, r->ring_runs + r->ring_stale);
    EXPECT_GT(r->ring_runs, 0u);
    EXPECT_EQ(r->fallback_runs, 0u);
    // The doorbell, too, kicks another node's CPUs only when they may steal
    // (the policy asks no more kicks than the node's idle CPUs it knows of,
    // so it happens when that view is late: SimKernelSideTest's doorbell test).
    if (std::string(steal) == "on") {
      EXPECT_GT(r->ring_steals, 0u);
    } else {
      EXPECT_EQ(r->ring_steals, 0u);
      EXPECT_EQ(r->doorbell_steal_kicks, 0u);
    }
    std::printf("  --ring-steal=%s: %llu completed, %llu ring runs, %llu steals, %llu doorbell "
                "kicks of the other node\n",
                steal, static_cast<unsigned long long>(r->completed),
                static_cast<unsigned long long>(r->ring_runs),
                static_cast<unsigned long long>(r->ring_steals),
                static_cast<unsigned long long>(r->doorbell_steal_kicks));
  }
  SimOptions bad = Opts("dispersive", "on");
  bad.ring_steal = "sometimes";
  absl::StatusOr<SimReport> r = RunSimulation(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--ring-steal=sometimes: want on or off");
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
  for (int64_t us : {-1, 1'000'001}) {
    o = Opts("dispersive", "on");
    o.agent_sleep_us = us;
    absl::StatusOr<SimReport> r = RunSimulation(o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(),
              absl::StrCat("--agent-sleep-us=", us, " is out of range (0..1000000)"));
  }
}

}  // namespace
}  // namespace sim
}  // namespace ghost
