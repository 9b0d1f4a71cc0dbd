// The simulator's random numbers: xoshiro256** seeded through splitmix64, and
// the few distributions the workloads need, implemented here so that a seed
// gives the same stream on every build (std:: and absl distributions are not
// specified bit-for-bit).
#ifndef GHOST_SCX_USERSPACE_SIM_RANDOM_H_
#define GHOST_SCX_USERSPACE_SIM_RANDOM_H_

#include <cmath>
#include <cstdint>

namespace ghost {
namespace sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Exponential with the given mean, in ns (at least 1 when mean >= 1).
  uint64_t ExponentialNs(double mean_ns) {
    const double x = -mean_ns * std::log1p(-Uniform());
    return x < 1.0 ? 1 : static_cast<uint64_t>(x + 0.5);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_RANDOM_H_
