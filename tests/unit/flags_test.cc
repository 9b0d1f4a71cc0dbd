#include "userspace/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, flags_test_count, 1, "test flag");
ABSL_FLAG(bool, flags_test_switch, false, "test flag");
ABSL_FLAG(std::string, flags_test_name, "x", "test flag");

namespace ghost {
namespace {

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data());
}

TEST(FlagsTest, DashesAndUnderscoresBothWork) {
  ASSERT_TRUE(Parse({"--flags-test-count=5", "--flags_test_name", "abc", "--flags-test-switch"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_count), 5);
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_name), "abc");
  EXPECT_TRUE(absl::GetFlag(FLAGS_flags_test_switch));
  ASSERT_TRUE(Parse({"--noflags-test-switch"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_flags_test_switch));
}

TEST(FlagsTest, PositionalsEndFlags) {
  absl::StatusOr<ParsedArgs> a = Parse({"--flags-test-count=2", "ls", "-l", "--flags-test-count=9"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->positional, (std::vector<std::string>{"ls", "-l", "--flags-test-count=9"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_flags_test_count), 2);
  a = Parse({"--", "--flags-test-count=3"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->positional, (std::vector<std::string>{"--flags-test-count=3"}));
}

TEST(FlagsTest, GivenNamesTheFlagsTheCommandLineSet) {
  absl::StatusOr<ParsedArgs> a = Parse({"--flags-test-count=1", "--noflags_test_switch", "x"});
  ASSERT_TRUE(a.ok());
  // Given even when set to its default value; one after the positionals is not a flag.
  EXPECT_EQ(a->given, (std::set<std::string>{"flags_test_count", "flags_test_switch"}));
  a = Parse({});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->given.empty());
}

TEST(FlagsTest, BadInputIsOneLineError) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--no-such-flag"}, {"--flags-test-count=abc"}, {"--flags-test-count"},
           {"--flags-test-switch=maybe"}, {"--noflags-test-count"}}) {
    absl::StatusOr<ParsedArgs> a = Parse(args);
    ASSERT_FALSE(a.ok()) << args[0];
    EXPECT_EQ(std::string(a.status().message()).find('\n'), std::string::npos);
  }
  EXPECT_TRUE(Parse({"--help"})->help);
}

}  // namespace
}  // namespace ghost
