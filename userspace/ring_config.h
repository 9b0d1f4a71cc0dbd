// Sizes the user picks for the fast path's rings and the agents' message
// queues (ghost-agent and ghost-sim: --ring-size, --queue-bytes; issue 9,
// docs/FAST_PATH.md). Parsing and range checks live here so that both
// binaries accept and refuse exactly the same values.
#ifndef GHOST_SCX_USERSPACE_RING_CONFIG_H_
#define GHOST_SCX_USERSPACE_RING_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ghost {

// Entries per ring when --ring-size names no size (docs/FAST_PATH.md, "Defaults").
inline constexpr uint32_t kDefaultRingSize = 256;

// Message queue bytes: a power of two from one page to this maximum.
inline constexpr uint64_t kDefaultQueueBytes = 256 * 1024;
inline constexpr uint64_t kMaxQueueBytes = 64ull << 20;  // 64 MiB

struct RingSizes {
  uint32_t default_size = kDefaultRingSize;  // nodes not named in per_node
  std::map<int, uint32_t> per_node;          // node -> entries
  uint32_t For(int node) const {
    auto it = per_node.find(node);
    return it == per_node.end() ? default_size : it->second;
  }
  std::string ToString() const;
};

// "N" (every node), "0:1024,1:256" (per node; other nodes: the default) or
// both ("512,1:64": 512 for every node but 1). Each size passes
// ValidateRingSize; nodes are < GHOST_RING_MAX_NODES, each named once.
// Errors are one line naming the bad part.
absl::StatusOr<RingSizes> ParseRingSizes(absl::string_view spec);

// A power of two, at least one page (4096), at most kMaxQueueBytes.
absl::Status ValidateQueueBytes(uint64_t bytes);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_RING_CONFIG_H_
