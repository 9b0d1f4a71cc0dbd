// Drives a policy's agents against the fake kernel side.
#ifndef GHOST_SCX_TESTS_UNIT_POLICY_TEST_UTIL_H_
#define GHOST_SCX_TESTS_UNIT_POLICY_TEST_UTIL_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/fake_kernel_side.h"
#include "userspace/enclave.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"

namespace ghost::testing {

struct PolicyRig {
  explicit PolicyRig(int ncpus) : kernel(ncpus) {}

  // Creates the enclave over `cpus` and the policy; false on failure.
  ::testing::AssertionResult Start(const CpuList& cpus, PolicyOptions opts) {
    auto e = Enclave::Create(kernel, {.cpus = cpus});
    if (!e.ok()) return ::testing::AssertionFailure() << e.status();
    enclave = std::move(*e);
    opts.clock = [this] { return kernel.NowNs(); };
    auto p = MakePolicy(opts, *enclave);
    if (!p.ok()) return ::testing::AssertionFailure() << p.status();
    policy = std::move(*p);
    return ::testing::AssertionSuccess();
  }

  // Every agent runs rounds until a whole pass handles no message.
  void Settle() {
    for (int pass = 0; pass < 100; ++pass) {
      size_t n = 0;
      for (Agent* a : policy->agents()) n += a->RunOnce();
      if (n == 0) {
        // One more quiet pass lets retries (associations, stale) go through.
        for (Agent* a : policy->agents()) a->RunOnce();
        return;
      }
    }
    ADD_FAILURE() << "agents never settled";
  }

  FakeKernelSide kernel;
  std::unique_ptr<Enclave> enclave;
  std::unique_ptr<Policy> policy;
};

}  // namespace ghost::testing

#endif  // GHOST_SCX_TESTS_UNIT_POLICY_TEST_UTIL_H_
