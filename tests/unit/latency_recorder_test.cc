#include "userspace/workloads/latency_recorder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ghost {
namespace {

// The exact nearest-rank percentile of `v` (sorted).
int64_t Exact(const std::vector<int64_t>& v, double q) {
  int64_t rank = static_cast<int64_t>(std::ceil(q / 100.0 * v.size()));
  rank = std::clamp<int64_t>(rank, 1, v.size());
  return v[rank - 1];
}

// The recorder reports the upper bound of the true sample's bucket: never
// below it, at most 1/128 above it.
void ExpectClose(const LatencyRecorder& r, const std::vector<int64_t>& sorted, double q) {
  int64_t want = Exact(sorted, q), got = r.Percentile(q);
  EXPECT_GE(got, want) << "q=" << q;
  EXPECT_LE(got, want + want / 128) << "q=" << q;
}

TEST(LatencyRecorderTest, EmptyIsZero) {
  LatencyRecorder r;
  EXPECT_EQ(r.Count(), 0);
  EXPECT_EQ(r.Percentile(50), 0);
  EXPECT_EQ(r.Max(), 0);
  EXPECT_EQ(r.Min(), 0);
}

TEST(LatencyRecorderTest, SmallValuesAreExact) {
  LatencyRecorder r;
  for (int v = 100; v >= 1; v--) r.Record(v);
  EXPECT_EQ(r.Count(), 100);
  EXPECT_EQ(r.Min(), 1);
  EXPECT_EQ(r.Max(), 100);
  EXPECT_EQ(r.Percentile(0), 1);
  EXPECT_EQ(r.Percentile(50), 50);
  EXPECT_EQ(r.Percentile(99), 99);
  EXPECT_EQ(r.Percentile(99.9), 100);
  EXPECT_EQ(r.Percentile(100), 100);
  EXPECT_DOUBLE_EQ(r.Mean(), 50.5);
}

TEST(LatencyRecorderTest, UniformMillionWithinBucketPrecision) {
  LatencyRecorder r;
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= 1000000; i++) {
    r.Record(i * 1000);  // 1 us .. 1 s in ns
    v.push_back(i * 1000);
  }
  for (double q : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) ExpectClose(r, v, q);
  EXPECT_EQ(r.Max(), 1000000000);
  EXPECT_EQ(r.Percentile(100), 1000000000);
}

TEST(LatencyRecorderTest, SkewedDistributionsMatchSortedSamples) {
  std::mt19937_64 rng(42);
  // Exponential (mean 50 us) and a bimodal 99.5 % 4 us / 0.5 % 10 ms mix.
  std::exponential_distribution<double> expo(1.0 / 50000);
  std::bernoulli_distribution rare(0.005);
  std::normal_distribution<double> jitter(0, 200);
  for (int dist = 0; dist < 2; dist++) {
    LatencyRecorder r;
    std::vector<int64_t> v;
    for (int i = 0; i < 200000; i++) {
      int64_t x = dist == 0 ? static_cast<int64_t>(expo(rng))
                            : (rare(rng) ? 10000000 : 4000) + static_cast<int64_t>(jitter(rng));
      r.Record(x);
      v.push_back(std::max<int64_t>(x, 0));
    }
    std::sort(v.begin(), v.end());
    for (double q : {50.0, 90.0, 99.0, 99.5, 99.6, 99.9, 100.0}) ExpectClose(r, v, q);
    EXPECT_EQ(r.Max(), v.back());
    EXPECT_EQ(r.Min(), v.front());
  }
}

TEST(LatencyRecorderTest, BucketsCoverValuesWithBoundedError) {
  for (int64_t v = 0; v < (int64_t{1} << 41); v = v < 1000 ? v + 1 : v + v / 37 + 1) {
    int b = LatencyRecorder::BucketOf(v);
    int64_t hi = LatencyRecorder::BucketUpperBound(b);
    ASSERT_GE(hi, v) << v;
    ASSERT_LE(hi - v, std::max<int64_t>(v / 128, 0)) << v;
    ASSERT_EQ(LatencyRecorder::BucketOf(hi), b) << v;
    if (b > 0) {
      ASSERT_LT(LatencyRecorder::BucketUpperBound(b - 1), v) << v;
    }
  }
}

TEST(LatencyRecorderTest, MergeEqualsRecordingEverything) {
  LatencyRecorder a, b, all;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> d(0, 50000000);
  for (int i = 0; i < 10000; i++) {
    int64_t x = d(rng);
    (i % 3 ? a : b).Record(x);
    all.Record(x);
  }
  LatencyRecorder empty;
  a.Merge(empty);
  a.Merge(b);
  empty.Merge(a);
  for (const LatencyRecorder* r : {&a, &empty}) {
    EXPECT_EQ(r->Count(), all.Count());
    EXPECT_EQ(r->Min(), all.Min());
    EXPECT_EQ(r->Max(), all.Max());
    EXPECT_DOUBLE_EQ(r->Mean(), all.Mean());
    for (double q : {1.0, 50.0, 99.0, 99.9}) EXPECT_EQ(r->Percentile(q), all.Percentile(q));
  }
}

TEST(LatencyRecorderTest, OutOfRangeValues) {
  LatencyRecorder r;
  r.Record(-5);
  r.Record(LatencyRecorder::kMaxTracked * 4);
  EXPECT_EQ(r.Min(), 0);
  EXPECT_EQ(r.Percentile(50), 0);
  EXPECT_EQ(r.Max(), LatencyRecorder::kMaxTracked * 4);
  EXPECT_EQ(r.Percentile(100), LatencyRecorder::kMaxTracked * 4);
}

TEST(LatencyRecorderTest, CountAboveCountsWholeBucketsAboveTheValue) {
  LatencyRecorder r;
  EXPECT_EQ(r.CountAbove(0), 0);
  for (int64_t v = 1; v <= 200; v++) r.Record(v);  // exact buckets
  EXPECT_EQ(r.CountAbove(150), 50);
  EXPECT_EQ(r.CountAbove(0), 200);
  r.Record(1'000);
  r.Record(100'000);
  EXPECT_EQ(r.CountAbove(5'000), 1);
  EXPECT_EQ(r.CountAbove(200), 2);
  // A bucket holding the value itself is not counted.
  EXPECT_EQ(r.CountAbove(99'999), 0);
}

}  // namespace
}  // namespace ghost
