// --ring-size and --queue-bytes parsing (userspace/ring_config.h).
#include "userspace/ring_config.h"

#include "gtest/gtest.h"

namespace ghost {
namespace {

TEST(RingConfigTest, OneSizeForEveryNode) {
  absl::StatusOr<RingSizes> r = ParseRingSizes("1024");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->For(0), 1024u);
  EXPECT_EQ(r->For(7), 1024u);
}

TEST(RingConfigTest, PerNodeWithDefaultForTheRest) {
  absl::StatusOr<RingSizes> r = ParseRingSizes("0:1024,1:256");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->For(0), 1024u);
  EXPECT_EQ(r->For(1), 256u);
  EXPECT_EQ(r->For(2), kDefaultRingSize);
  r = ParseRingSizes("64, 3:2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->For(3), 2u);
  EXPECT_EQ(r->For(0), 64u);
  EXPECT_EQ(r->ToString(), "64,3:2");
}

TEST(RingConfigTest, BadSpecsAreOneLineErrors) {
  for (const char* bad : {"", "0", "1", "3", "8192", "-4", "abc", "0:", ":64", "8:64", "-1:64",
                          "0:64,0:128", "64,128", "0:100", "0:64;1:64"}) {
    absl::StatusOr<RingSizes> r = ParseRingSizes(bad);
    EXPECT_FALSE(r.ok()) << "'" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
    }
  }
}

TEST(RingConfigTest, QueueBytes) {
  EXPECT_TRUE(ValidateQueueBytes(4096).ok());
  EXPECT_TRUE(ValidateQueueBytes(kMaxQueueBytes).ok());
  EXPECT_FALSE(ValidateQueueBytes(0).ok());
  EXPECT_FALSE(ValidateQueueBytes(2048).ok());
  EXPECT_FALSE(ValidateQueueBytes(5000).ok());
  EXPECT_FALSE(ValidateQueueBytes(kMaxQueueBytes * 2).ok());
}

}  // namespace
}  // namespace ghost
