#include "userspace/policies/hinted.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "userspace/policies/fifo_centralized.h"

namespace ghost {

absl::StatusOr<std::unique_ptr<Policy>> HintedPolicy::Create(const Options& hinted,
                                                             const PolicyOptions& opts,
                                                             Enclave& enclave) {
  if (opts.fast_path == PolicyOptions::FastPath::kOn) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s places every thread by transaction: --fast-path=on does not apply", hinted.name));
  }
  std::unique_ptr<HintedPolicy> p(new HintedPolicy());
  p->name_ = hinted.name;
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
  // The one agent thread reads the table (HintReader is not thread-safe).
  o.rank = [reader = p->hints_.get(), deadlines = hinted.deadlines](uint32_t pid) {
    ThreadRank r;
    if (reader == nullptr) return r;
    if (std::optional<Hint> h = reader->Find(static_cast<pid_t>(pid)); h.has_value()) {
      r.qos = h->qos.value_or(0);
      if (deadlines) {
        r.deadline_ns = h->deadline_ns.value_or(ThreadRank::kNoDeadline);
        r.relative_deadline_ns = h->relative_deadline_ns.value_or(ThreadRank::kNoDeadline);
      }
    }
    return r;
  };
  absl::StatusOr<std::unique_ptr<Policy>> base = FifoCentralizedPolicy::Create(o, enclave);
  if (!base.ok()) return base.status();
  p->base_ = std::move(*base);
  return std::unique_ptr<Policy>(std::move(p));
}

std::string HintedPolicy::StatsLine() const {
  const auto& sched = static_cast<const FifoCentralizedPolicy&>(*base_).scheduler();
  std::string line = absl::StrFormat("qos_preemptions=%u ", sched.stats().qos_preemptions);
  if (batch_below_ != 0) absl::StrAppendFormat(&line, "batch_below=%u ", batch_below_);
  if (hints_ != nullptr) {
    const HintReaderStats& h = hints_->stats();
    absl::StrAppendFormat(&line, "hint_lookups=%u hint_found=%u hint_torn=%u ", h.lookups,
                          h.found, h.torn);
  }
  return line + base_->StatsLine();
}

}  // namespace ghost
