#include "userspace/status_word.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ghost {
namespace {

// The kernel side writes concurrently: every field is read atomically (no torn
// words, no data race), the lock with acquire so the copy is not hoisted.
template <typename T>
T Load(const T& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

absl::StatusOr<StatusWordSnapshot> ReadStatusWord(const ghost_status_word& sw) {
  for (int i = 0; i < kStatusWordMaxRetries; ++i) {
    const uint32_t before = __atomic_load_n(&sw.lock, __ATOMIC_ACQUIRE);
    if (before & 1) {  // a writer is inside
      CpuRelax();
      continue;
    }
    StatusWordSnapshot s;
    s.flags = Load(sw.flags);
    s.tid = Load(sw.tid);
    s.seqnum = Load(sw.seqnum);
    s.runtime_ns = Load(sw.runtime_ns);
    s.cpu = static_cast<int>(Load(sw.cpu));
    s.enclave = Load(sw.enclave);
    s.queue = Load(sw.queue);
    s.pid = Load(sw.pid);
    s.switch_time_ns = Load(sw.switch_time_ns);
    // Order the copy before the second look at the lock.
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&sw.lock, __ATOMIC_RELAXED) == before) return s;
    CpuRelax();
  }
  return absl::UnavailableError(absl::StrFormat(
      "status word never settled (lock=%u after %d tries)",
      __atomic_load_n(&sw.lock, __ATOMIC_RELAXED), kStatusWordMaxRetries));
}

}  // namespace ghost
