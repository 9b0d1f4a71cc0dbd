// Where a running ghost class lives in bpffs, so that it outlives the agent
// that loaded it (DESIGN.md: "the class is pinned and outlives its agent") and
// a later agent can re-attach to it (ghOSt's agent restart / live upgrade).
//
//   PIN_DIR/link          the struct_ops link: while pinned, the class stays attached
//   PIN_DIR/maps/NAME     every map of the class (global data too: bss, data, rodata)
//   PIN_DIR/enroll        the enroll map again, where ghost-run looks for it
//
// This file is the pure part: paths, names and the decisions; BpfClass pins.
#ifndef GHOST_SCX_USERSPACE_CLASS_PINS_H_
#define GHOST_SCX_USERSPACE_CLASS_PINS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ghost {

struct ClassPins {
  std::string dir;  // a bpffs directory, e.g. kDefaultPinDir

  std::string Link() const { return dir + "/link"; }
  std::string MapsDir() const { return dir + "/maps"; }
  // `map_name` as libbpf names it ("status_words", "ghost_bp.bss").
  std::string Map(absl::string_view map_name) const;
  std::string Enroll() const { return dir + "/enroll"; }
};

// The file name a map is pinned under: libbpf's global-data maps are named
// "<object prefix>.bss"; the prefix is dropped ("bss") so pins do not depend
// on the object's file name.
std::string PinName(absl::string_view map_name);

// What an agent finds when it starts.
struct ClassProbe {
  bool link_pinned = false;  // PIN_DIR/link exists
  bool link_live = false;    // ... and its link still holds the class's ops
  std::string state;         // /sys/kernel/sched_ext/state
  std::string ops;           // /sys/kernel/sched_ext/root/ops ("" if none)
};

enum class ClassFound {
  kNone,      // nothing pinned: load the class
  kPinned,    // a pinned ghost class runs: re-attach, never load a second one
  kStale,     // pins of a class that is gone (detached or ejected): remove them, then load
};

ClassFound Classify(const ClassProbe& probe);

// OK if an agent built for ABI `agent_version` may drive a class publishing
// `class_version`; else FailedPrecondition naming both versions, in one line.
absl::Status CheckClassAbi(uint32_t class_version, uint32_t agent_version);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_CLASS_PINS_H_
