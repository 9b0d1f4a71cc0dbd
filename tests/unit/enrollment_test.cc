#include "userspace/enrollment.h"

#include <sched.h>

#include <thread>

#include "gtest/gtest.h"

namespace ghost {
namespace {

CpuList Affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  CpuList cpus;
  for (int c = 0; c < CPU_SETSIZE && c < GHOST_MAX_CPUS; c++) {
    if (CPU_ISSET(c, &set)) cpus.Set(c);
  }
  return cpus;
}

// ghost-run keeps an enclave's threads on the enclave's CPUs: the thread's own
// affinity, narrowed; one the enclave shares no CPU with keeps its own.
TEST(EnrollmentTest, ConfinesToTheEnclavesCpus) {
  std::thread([] {
    const CpuList before = Affinity();
    ASSERT_FALSE(before.Empty());
    const int first = before.ToVector().front();
    ConfineToCpus(0, CpuList{first, GHOST_MAX_CPUS - 1});
    EXPECT_EQ(Affinity().ToVector(), std::vector<int>{first});
    ConfineToCpus(0, CpuList{GHOST_MAX_CPUS - 1});  // nothing in common: left alone
    EXPECT_EQ(Affinity().ToVector(), std::vector<int>{first});
  }).join();
}

}  // namespace
}  // namespace ghost
