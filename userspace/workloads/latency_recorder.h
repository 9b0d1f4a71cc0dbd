// Bounded-memory latency distribution: a log-linear histogram (HDR style).
// Values below 256 are counted exactly; above, each power of two is split into
// 128 buckets, so a reported percentile is within 1/128 (0.8 %) of a true
// sample value whatever the run length. Max and min are exact.
// Not thread-safe: give each thread its own recorder and Merge() them.
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_LATENCY_RECORDER_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_LATENCY_RECORDER_H_

#include <cstdint>
#include <vector>

namespace ghost {

class LatencyRecorder {
 public:
  // Values at or above this are counted in the last bucket (max stays exact).
  static constexpr int64_t kMaxTracked = int64_t{1} << 42;  // ~73 min in ns

  // Negative values are counted as 0 (a clock step cannot make latency negative).
  void Record(int64_t value);
  void Merge(const LatencyRecorder& other);

  int64_t Count() const { return count_; }
  int64_t Min() const { return count_ ? min_ : 0; }
  int64_t Max() const { return count_ ? max_ : 0; }
  double Mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // Nearest-rank percentile, q in [0, 100]: the smallest recorded value v with
  // at least ceil(q/100 * Count()) samples <= v, reported as the upper bound of
  // v's bucket (clamped to [Min(), Max()]). 0 when empty.
  int64_t Percentile(double q) const;
  // Samples certainly above `value`: those in buckets whose smallest value is
  // above it (a bucket holding `value` itself is left out: an undercount of
  // at most that bucket's samples).
  int64_t CountAbove(int64_t value) const;

  // Exposed for tests: the bucket of a value and the largest value in a bucket.
  static int BucketOf(int64_t value);
  static int64_t BucketUpperBound(int bucket);

 private:
  std::vector<int64_t> counts_;  // allocated on first Record/Merge
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_LATENCY_RECORDER_H_
