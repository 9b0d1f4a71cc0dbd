#include "userspace/policy.h"

#include <time.h>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ghost {

absl::StatusOr<PolicyOptions::FastPath> ParseFastPath(absl::string_view text) {
  if (text == "on") return PolicyOptions::FastPath::kOn;
  if (text == "off") return PolicyOptions::FastPath::kOff;
  if (text == "auto") return PolicyOptions::FastPath::kAuto;
  return absl::InvalidArgumentError(
      absl::StrFormat("--fast-path=%s: want on, off or auto", text));
}

// "on" or "off" for flag --`flag`.
static absl::StatusOr<bool> ParseOnOff(absl::string_view flag, absl::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  return absl::InvalidArgumentError(absl::StrFormat("--%s=%s: want on or off", flag, text));
}

absl::StatusOr<bool> ParseWakeupPush(absl::string_view text) {
  return ParseOnOff("wakeup-push", text);
}

absl::StatusOr<bool> ParsePinnedPush(absl::string_view text) {
  return ParseOnOff("pinned-push", text);
}

absl::StatusOr<bool> ParseRingSteal(absl::string_view text) {
  return ParseOnOff("ring-steal", text);
}

absl::StatusOr<bool> ParseRingDepth(absl::string_view text) {
  if (text == "all") return true;
  if (text == "idle") return false;
  return absl::InvalidArgumentError(absl::StrFormat("--ring-depth=%s: want idle or all", text));
}

uint64_t MonotonicNowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace ghost
