#include "userspace/ring_config.h"

#include <linux/types.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/ring.h"

namespace ghost {

std::string RingSizes::ToString() const {
  std::vector<std::string> parts = {absl::StrCat(default_size)};
  for (const auto& [node, size] : per_node) parts.push_back(absl::StrCat(node, ":", size));
  return absl::StrJoin(parts, ",");
}

absl::StatusOr<RingSizes> ParseRingSizes(absl::string_view spec) {
  RingSizes out;
  bool default_named = false;
  if (absl::StripAsciiWhitespace(spec).empty()) {
    return absl::InvalidArgumentError("ring size is empty (want N or NODE:N,...)");
  }
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    part = absl::StripAsciiWhitespace(part);
    absl::string_view node_text, size_text = part;
    const size_t colon = part.find(':');
    if (colon != absl::string_view::npos) {
      node_text = part.substr(0, colon);
      size_text = part.substr(colon + 1);
    }
    uint64_t size = 0;
    if (!absl::SimpleAtoi(size_text, &size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ring size '", part, "' is not N or NODE:N"));
    }
    if (absl::Status s = ValidateRingSize(size); !s.ok()) return s;
    if (colon == absl::string_view::npos) {
      if (default_named) {
        return absl::InvalidArgumentError(
            absl::StrCat("ring size '", spec, "' names the default size twice"));
      }
      default_named = true;
      out.default_size = static_cast<uint32_t>(size);
      continue;
    }
    int node = -1;
    if (!absl::SimpleAtoi(node_text, &node) || node < 0 || node >= GHOST_RING_MAX_NODES) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ring size '", part, "': node must be 0..", GHOST_RING_MAX_NODES - 1));
    }
    if (!out.per_node.emplace(node, static_cast<uint32_t>(size)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("ring size for node ", node, " given twice"));
    }
  }
  return out;
}

absl::Status ValidateQueueBytes(uint64_t bytes) {
  if (bytes < 4096 || bytes > kMaxQueueBytes || (bytes & (bytes - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queue size ", bytes, " is not a power of two between 4096 and ", kMaxQueueBytes));
  }
  return absl::OkStatus();
}

}  // namespace ghost
