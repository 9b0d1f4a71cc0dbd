#include "userspace/class_pins.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ghost {

std::string ClassPins::Map(absl::string_view map_name) const {
  return absl::StrCat(MapsDir(), "/", PinName(map_name));
}

std::string PinName(absl::string_view map_name) {
  size_t dot = map_name.rfind('.');
  if (dot == absl::string_view::npos) return std::string(map_name);
  return std::string(map_name.substr(dot + 1));
}

ClassFound Classify(const ClassProbe& probe) {
  if (!probe.link_pinned) return ClassFound::kNone;
  // The link pin alone proves nothing: the kernel may have ejected the class
  // (its link then stays pinned), or a clean exit may have been cut short.
  if (probe.link_live && probe.state == "enabled" && probe.ops == "ghost") {
    return ClassFound::kPinned;
  }
  return ClassFound::kStale;
}

absl::Status CheckClassAbi(uint32_t class_version, uint32_t agent_version) {
  if (class_version == agent_version) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "ABI mismatch: the loaded ghost class speaks ABI version %u, this agent ABI version %u",
      class_version, agent_version));
}

}  // namespace ghost
