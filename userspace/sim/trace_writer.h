// Per-CPU timelines in the Chrome trace-event JSON format, which
// ui.perfetto.dev and chrome://tracing open: one track per CPU ("CPU 3"),
// one complete ("X") event per stretch a thread, CFS or an agent held it.
#ifndef GHOST_SCX_USERSPACE_SIM_TRACE_WRITER_H_
#define GHOST_SCX_USERSPACE_SIM_TRACE_WRITER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "userspace/sim/machine.h"

namespace ghost {
namespace sim {

class TraceWriter {
 public:
  // Opens `path` for writing; names `num_cpus` tracks.
  static absl::StatusOr<std::unique_ptr<TraceWriter>> Open(const std::string& path,
                                                           int num_cpus);
  ~TraceWriter();
  void Slice(int cpu, Occupant occ, int thread, uint64_t start_ns, uint64_t end_ns);
  // Writes the closing bracket; errors (disk full) surface here.
  absl::Status Close();

 private:
  explicit TraceWriter(FILE* f) : f_(f) {}
  FILE* f_;
  bool first_ = true;
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_TRACE_WRITER_H_
