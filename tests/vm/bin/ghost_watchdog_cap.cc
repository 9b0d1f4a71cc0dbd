// ghost_watchdog_cap: no enclave watchdog can outlast sched_ext's stall
// timeout. The class is loaded with a 2 s kernel timeout, so it honours
// watchdogs up to 1 s:
//  - the library refuses a longer one with a clear error;
//  - an agent that writes a huge watchdog straight into its (shared) enclave
//    word and then never commits still cannot get the class ejected: the
//    class caps the watchdog, its fallback runs every thread, and the class
//    is still attached after several kernel timeouts.
// Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <bpf/bpf.h>

#include "tests/vm/test_agent.h"
#include "userspace/ghost_skel.h"

using namespace ghost_test;

int main() {
  Failures f;
  if (!HaveCpus(2)) return 1;
  BecomeAgent(0);
  auto setup = Setup::Create(
      {.cpus = ghost::CpuList({1}), .watchdog_ms = 100, .kernel_timeout = absl::Seconds(2)});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  const ghost_class_info& ci = ks.ClassInfo();
  f.Check(ci.kernel_timeout_ms == 2000 && ci.max_watchdog_ms == 1000,
          absl::StrFormat("the class publishes its stall timeout (%u ms) and watchdog cap (%u ms)",
                          ci.kernel_timeout_ms, ci.max_watchdog_ms));

  // Through the library: a clear refusal, and nothing created.
  ks.DestroyEnclave(setup->enclave).IgnoreError();
  auto too_long = ks.CreateEnclave({.cpus = ghost::CpuList({1}), .watchdog_ms = 1001});
  f.Check(!too_long.ok() && too_long.status().code() == absl::StatusCode::kInvalidArgument,
          absl::StrFormat("a 1001 ms watchdog is refused: %s",
                          too_long.ok() ? "accepted" : too_long.status().message()));
  auto at_cap = ks.CreateEnclave({.cpus = ghost::CpuList({1}), .watchdog_ms = 1000});
  f.Check(at_cap.ok(), "a 1000 ms watchdog (the cap) is accepted");
  if (!at_cap.ok()) return 1;
  auto queue = ks.CreateQueue({.enclave = *at_cap, .wake_agent = false});
  if (!queue.ok() || !ks.SetDefaultQueue(*at_cap, *queue).ok()) {
    std::printf("FAIL: queue\n");
    return 1;
  }

  // Around the library: the agent owns its enclave word and may write
  // anything into it. A watchdog of 49 days, then silence.
  const int words_fd = bpf_map__fd(ks.bpf_class().skel()->maps.enclave_words);
  const uint32_t key = *at_cap;
  ghost_enclave_word word;
  bool wrote = bpf_map_lookup_elem(words_fd, &key, &word) == 0;
  word.watchdog_ms = UINT32_MAX;
  wrote = wrote && bpf_map_update_elem(words_fd, &key, &word, BPF_EXIST) == 0;
  f.Check(wrote, "the agent wrote watchdog_ms = UINT32_MAX into its enclave word");

  constexpr int kThreads = 3;
  std::vector<std::unique_ptr<SpinningWorker>> w;
  for (int i = 0; i < kThreads; i++) {
    w.push_back(std::make_unique<SpinningWorker>());
    w[i]->Start(CpuSet({1}));
    if (auto s = w[i]->Enroll(ks, *at_cap); !s.ok()) f.Fail(std::string(s.message()));
  }
  // No agent places them: only the fallback can. With the old, fixed 10 s
  // cap they would wait past the 2 s kernel timeout and the class would go.
  const bool all_ran = WaitUntil(
      [&] {
        for (auto& t : w) {
          if (!t->entered() || t->spins() == 0) return false;
        }
        return true;
      },
      absl::Seconds(20));
  f.Check(all_ran, "the fallback ran every thread the silent agent held");
  f.Check(ci.fallback_runs > 0,
          absl::StrFormat("runs came from the fallback (%u)", ci.fallback_runs));
  // Several kernel timeouts of an agent that never commits: still attached.
  // (A negative check needs a window: the kernel's watchdog only acts at
  // its own period.)
  const bool ejected = WaitUntil([&] { return !ks.Health().ok(); }, absl::Seconds(6));
  f.Check(!ejected, "no ejection during 3 kernel timeouts of silence");
  for (auto& t : w) t->Join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
