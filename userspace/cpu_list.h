// A set of CPU numbers below GHOST_MAX_CPUS, with the kernel's list syntax
// ("0-3,8,10-11") for flags and sysfs files.
#ifndef GHOST_SCX_USERSPACE_CPU_LIST_H_
#define GHOST_SCX_USERSPACE_CPU_LIST_H_

#include <linux/types.h>

#include <bitset>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernel/ghost_abi.h"

namespace ghost {

class CpuList {
 public:
  CpuList() = default;
  CpuList(std::initializer_list<int> cpus);

  // Parses "0-3,8". Errors name the offending piece; `max_cpus` bounds every
  // CPU (defaults to the ABI limit).
  static absl::StatusOr<CpuList> Parse(absl::string_view text,
                                       int max_cpus = GHOST_MAX_CPUS);
  // CPUs [0, n).
  static CpuList FirstN(int n);

  void Set(int cpu);
  void Clear(int cpu);
  bool IsSet(int cpu) const;
  int Size() const { return static_cast<int>(bits_.count()); }
  bool Empty() const { return bits_.none(); }
  std::vector<int> ToVector() const;
  std::string ToString() const;  // canonical "0-3,8"
  // The ABI's bitmap form (ghost_commit_args.cpus, ghost_enclave_word.cpus).
  void ToMask(__u64 (&words)[GHOST_CPU_MASK_WORDS]) const;
  static CpuList FromMask(const __u64 (&words)[GHOST_CPU_MASK_WORDS]);

  CpuList& operator|=(const CpuList& o) { bits_ |= o.bits_; return *this; }
  CpuList& operator&=(const CpuList& o) { bits_ &= o.bits_; return *this; }
  friend CpuList operator|(CpuList a, const CpuList& b) { return a |= b; }
  friend CpuList operator&(CpuList a, const CpuList& b) { return a &= b; }
  friend bool operator==(const CpuList& a, const CpuList& b) { return a.bits_ == b.bits_; }
  friend bool operator!=(const CpuList& a, const CpuList& b) { return !(a == b); }

 private:
  std::bitset<GHOST_MAX_CPUS> bits_;
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_CPU_LIST_H_
