#include "userspace/workloads/latency_recorder.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace ghost {
namespace {

constexpr int kSubBits = 7;                   // 128 buckets per power of two
constexpr int64_t kExact = int64_t{2} << kSubBits;  // 256 values counted exactly
constexpr int kTopBit = 42;                    // log2(kMaxTracked)
constexpr int kBuckets = kExact + (kTopBit - kSubBits - 1) * (1 << kSubBits);

}  // namespace

int LatencyRecorder::BucketOf(int64_t value) {
  if (value < 0) value = 0;
  if (value >= kMaxTracked) return kBuckets - 1;
  if (value < kExact) return static_cast<int>(value);
  int e = std::bit_width(static_cast<uint64_t>(value)) - 1;  // >= kSubBits + 1
  int shift = e - kSubBits;
  // The top kSubBits+1 bits of value, minus the leading 1, pick the sub-bucket.
  int sub = static_cast<int>(value >> shift) - (1 << kSubBits);
  return kExact + (shift - 1) * (1 << kSubBits) + sub;
}

int64_t LatencyRecorder::BucketUpperBound(int bucket) {
  if (bucket < kExact) return bucket;
  int rel = bucket - kExact;
  int shift = rel / (1 << kSubBits) + 1;
  int64_t sub = rel % (1 << kSubBits) + (1 << kSubBits);
  return ((sub + 1) << shift) - 1;
}

void LatencyRecorder::Record(int64_t value) {
  if (value < 0) value = 0;
  if (counts_.empty()) counts_.assign(kBuckets, 0);
  counts_[BucketOf(value)]++;
  min_ = count_ ? std::min(min_, value) : value;
  max_ = count_ ? std::max(max_, value) : value;
  count_++;
  sum_ += value;
}

void LatencyRecorder::Merge(const LatencyRecorder& other) {
  if (other.count_ == 0) return;
  if (counts_.empty()) counts_.assign(kBuckets, 0);
  for (int i = 0; i < kBuckets; i++) counts_[i] += other.counts_[i];
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  max_ = count_ ? std::max(max_, other.max_) : other.max_;
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t LatencyRecorder::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 100.0);
  int64_t rank = static_cast<int64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<int64_t>(rank, 1, count_);
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; i++) {
    seen += counts_[i];
    if (seen >= rank) {
      if (i == kBuckets - 1) return max_;  // the overflow bucket has no upper bound
      return std::clamp(BucketUpperBound(i), min_, max_);
    }
  }
  return max_;
}

int64_t LatencyRecorder::CountAbove(int64_t value) const {
  int64_t n = 0;
  for (int i = 1; i < static_cast<int>(counts_.size()); i++) {
    if (BucketUpperBound(i - 1) >= value) n += counts_[i];  // bucket i starts above value
  }
  return n;
}

}  // namespace ghost
