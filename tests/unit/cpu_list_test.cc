#include "userspace/cpu_list.h"

#include "gtest/gtest.h"

namespace ghost {
namespace {

TEST(CpuListTest, ParsesRangesAndSingles) {
  absl::StatusOr<CpuList> l = CpuList::Parse("0-3, 8,10-11");
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->ToVector(), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(l->ToString(), "0-3,8,10-11");
  EXPECT_EQ(l->Size(), 7);
}

TEST(CpuListTest, RejectsBadInput) {
  for (const char* bad : {"", "a", "1-", "-1", "3-1", "1,,2", "0-x", "1.5"}) {
    EXPECT_FALSE(CpuList::Parse(bad).ok()) << bad;
  }
  EXPECT_EQ(CpuList::Parse("0-4", 4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(CpuList::Parse("0-3", 4).ok());
  EXPECT_FALSE(CpuList::Parse("256").ok());
}

TEST(CpuListTest, MaskRoundTrip) {
  CpuList l{0, 63, 64, 200, 255};
  __u64 words[GHOST_CPU_MASK_WORDS];
  l.ToMask(words);
  EXPECT_EQ(words[0], (1ULL << 0) | (1ULL << 63));
  EXPECT_EQ(words[1], 1ULL);
  EXPECT_EQ(CpuList::FromMask(words), l);
}

}  // namespace
}  // namespace ghost
