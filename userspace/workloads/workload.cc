#include "userspace/workloads/workload.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ghost {

absl::Status CheckRange(const char* flag, double value, double lo, double hi) {
  if (std::isfinite(value) && value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("--%s=%g is out of range (%g..%g)", flag, value, lo, hi));
}

absl::Status CheckDuration(const char* flag, absl::Duration d, absl::Duration lo,
                           absl::Duration hi) {
  if (d >= lo && d <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", absl::FormatDuration(d),
                                                 " is out of range (", absl::FormatDuration(lo),
                                                 "..", absl::FormatDuration(hi), ")"));
}

absl::Status ValidateRunOptions(const RunOptions& o) {
  if (o.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--duration=", absl::FormatDuration(o.duration), " must be positive"));
  }
  if (absl::Status s = CheckDuration("duration", o.duration, absl::Nanoseconds(1), absl::Hours(1));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDuration("grace", o.grace, absl::ZeroDuration(), absl::Hours(1));
      !s.ok()) {
    return s;
  }
  if (o.label.empty() || o.label.size() > 32) {
    return absl::InvalidArgumentError("--label must be 1..32 characters");
  }
  for (char c : o.label) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.' && c != '+') {
      return absl::InvalidArgumentError(
          absl::StrCat("--label='", o.label, "' may hold only letters, digits and _ - . +"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ghost
