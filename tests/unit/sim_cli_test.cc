// ghost-sim's command line (userspace/sim/cli.cc, which the binary only wraps):
// bad input is one line and exit code 2; good input runs.
#include "userspace/sim/cli.h"

#include "gtest/gtest.h"

namespace ghost {
namespace sim {
namespace {

TEST(SimCliTest, BadInputIsOneLineAndExitTwo) {
  const std::vector<std::vector<std::string>> bad = {
      {"--machine=vax"},          {"--machine=flat0"},     {"--workload=bogus"},
      {"--policy=lottery"},       {"--load=-0.5"},         {"--load=1e9"},
      {"--load=abc"},             {"--duration=5"},        {"--duration=-1ms"},
      {"--bogus=1"},              {"stray"},               {"--seed"},
      {"--format=xml"},           {"--sweep=0.5,x"},       {"--cpus=0-300"},
      {"--hints=/tmp/t"},         {"--policy=shinjuku", "--hints=/no/such/table"},
      {"--slice-us=-1"},          {"--cfs-load=1"},        {"--sweep=0.5", "--trace=/tmp/x"},
      {"--agent-sleep-us=-1"},    {"--agent-sleep-us=1000001"},
  };
  for (const auto& args : bad) {
    std::string out, err;
    EXPECT_EQ(RunCli(args, &out, &err), 2) << args[0];
    EXPECT_TRUE(out.empty()) << args[0];
    ASSERT_FALSE(err.empty()) << args[0];
    EXPECT_EQ(err.find('\n'), err.size() - 1) << err;  // exactly one line
    EXPECT_EQ(err.rfind("ghost-sim: ", 0), 0u) << err;
  }
}

TEST(SimCliTest, SliceDefaultsToThePolicysOwn) {
  auto slice = [](std::vector<std::string> args) {
    absl::StatusOr<CliOptions> o = ParseCli(args);
    EXPECT_TRUE(o.ok()) << o.status();
    return o.ok() ? o->sim.slice_us : -1;
  };
  EXPECT_EQ(slice({}), 20000);
  EXPECT_EQ(slice({"--policy=fifo-per-cpu"}), 20000);
  EXPECT_EQ(slice({"--policy=shinjuku"}), 30);
  EXPECT_EQ(slice({"--policy=shinjuku", "--slice-us=20000"}), 20000);
  EXPECT_EQ(slice({"--slice_us=0", "--policy=shinjuku"}), 0);
}

TEST(SimCliTest, DefaultsRunAndSpellingsAgree) {
  absl::StatusOr<CliOptions> a = ParseCli({"--slice-us=30", "--duration", "20ms", "--seed=4"});
  absl::StatusOr<CliOptions> b = ParseCli({"--slice_us=30", "--duration=20ms", "--seed", "4"});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->sim.slice_us, 30);
  EXPECT_EQ(a->sim.duration, absl::Milliseconds(20));
  EXPECT_EQ(b->sim.seed, 4u);
  EXPECT_EQ(a->sim.policy, "fifo-centralized");
  EXPECT_EQ(a->sim.workload, "dispersive");

  std::string out, err;
  EXPECT_EQ(RunCli({"--duration=10ms", "--format=csv"}, &out, &err), 0) << err;
  EXPECT_EQ(out.rfind("policy,machine,workload,load", 0), 0u) << out;
  EXPECT_EQ(RunCli({"--duration=5ms", "--sweep=0.2,0.4"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("0.200"), std::string::npos);
  EXPECT_NE(out.find("0.400"), std::string::npos);
  EXPECT_EQ(RunCli({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("--slice-us"), std::string::npos);
  EXPECT_NE(out.find("--agent-sleep-us"), std::string::npos);
  absl::StatusOr<CliOptions> sleep = ParseCli({"--agent-sleep-us=0"});
  ASSERT_TRUE(sleep.ok()) << sleep.status();
  EXPECT_EQ(sleep->sim.agent_sleep_us, 0);
  EXPECT_EQ(a->sim.agent_sleep_us, 1000);  // ghost-agent's defaults: it sleeps up to 1 ms,
  EXPECT_EQ(a->sim.ring_depth, "all");     // the rings hold the backlog
}

}  // namespace
}  // namespace sim
}  // namespace ghost
