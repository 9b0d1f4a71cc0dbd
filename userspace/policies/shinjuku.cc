#include "userspace/policies/shinjuku.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "userspace/policies/fifo_centralized.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> ShinjukuPolicy::Create(const PolicyOptions& opts,
                                                               Enclave& enclave) {
  if (opts.fast_path == PolicyOptions::FastPath::kOn) {
    return absl::InvalidArgumentError(
        "shinjuku places every thread by transaction: --fast-path=on does not apply");
  }
  std::unique_ptr<ShinjukuPolicy> p(new ShinjukuPolicy());
  if (!opts.hints.empty()) {
    absl::StatusOr<std::unique_ptr<HintReader>> r = HintReader::Open(opts.hints);
    if (!r.ok()) {
      return absl::InvalidArgumentError(r.status().message());  // names the table
    }
    p->hints_ = std::move(*r);
  }
  p->batch_below_ = opts.batch_below;
  PolicyOptions o = opts;
  o.fast_path = PolicyOptions::FastPath::kOff;
  o.batch_slice = std::max(kBatchSlice, opts.slice);
  // The one agent thread reads the table (HintReader is not thread-safe).
  o.qos = [reader = p->hints_.get()](uint32_t pid) -> uint32_t {
    if (reader == nullptr) return 0;
    std::optional<Hint> h = reader->Find(static_cast<pid_t>(pid));
    return h.has_value() ? h->qos.value_or(0) : 0;
  };
  absl::StatusOr<std::unique_ptr<Policy>> base = FifoCentralizedPolicy::Create(o, enclave);
  if (!base.ok()) return base.status();
  p->base_ = std::move(*base);
  return std::unique_ptr<Policy>(std::move(p));
}

std::string ShinjukuPolicy::StatsLine() const {
  const auto& sched = static_cast<const FifoCentralizedPolicy&>(*base_).scheduler();
  std::string line = absl::StrFormat("qos_preemptions=%u batch_below=%u ",
                                     sched.stats().qos_preemptions, batch_below_);
  if (hints_ != nullptr) {
    const HintReaderStats& h = hints_->stats();
    absl::StrAppendFormat(&line, "hint_lookups=%u hint_found=%u hint_torn=%u ", h.lookups,
                          h.found, h.torn);
  }
  return line + base_->StatsLine();
}

}  // namespace ghost
