// The centralized scheduler (userspace/policies/fifo_centralized.h) ranking
// threads by an application's hint table (docs/HINTS.md): what Shinjuku and
// EDF share. It opens the table, supplies PolicyOptions::rank from it (the
// entry's QoS class, and its deadline when the policy orders by deadlines),
// turns the rings off (they run entries in push order, which a rank that
// jumps the queue would break) and adds the table's counters to --stats.
// A thread with no entry, or no table, ranks {class 0, no deadline}.
#ifndef GHOST_SCX_USERSPACE_POLICIES_HINTED_H_
#define GHOST_SCX_USERSPACE_POLICIES_HINTED_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/enclave.h"
#include "userspace/hints/hint_table.h"
#include "userspace/policy.h"

namespace ghost {

class HintedPolicy : public Policy {
 public:
  struct Options {
    const char* name = "";   // the policy's, for messages and name()
    bool deadlines = false;  // rank by the entries' deadlines within a class
  };
  // A table that cannot be opened, or --fast-path=on: InvalidArgument, one line.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(const Options& hinted,
                                                        const PolicyOptions& opts,
                                                        Enclave& enclave);

  std::vector<Agent*> agents() override { return base_->agents(); }
  const char* name() const override { return name_; }
  std::string StatsLine() const override;
  std::string DescribeThread(Tid tid) const override { return base_->DescribeThread(tid); }

 private:
  HintedPolicy() = default;
  const char* name_ = "";
  std::unique_ptr<HintReader> hints_;  // null: no table
  std::unique_ptr<Policy> base_;       // the centralized scheduler, deciding by rank
  uint32_t batch_below_ = 0;           // PolicyOptions::batch_below (0: no sharing)
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_HINTED_H_
