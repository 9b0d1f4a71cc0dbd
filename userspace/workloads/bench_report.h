// One ghost-bench result per workload run, and its three output forms: a human
// table, CSV (fixed columns, header once) and JSON lines (fixed fields plus the
// workload's own extras).
#ifndef GHOST_SCX_USERSPACE_WORKLOADS_BENCH_REPORT_H_
#define GHOST_SCX_USERSPACE_WORKLOADS_BENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/workloads/latency_recorder.h"

namespace ghost {

struct BenchResult {
  std::string workload;
  std::string label;      // scheduler label ("ghost", "default", ...)
  std::string metric;     // what `latency` holds: "wakeup", "request", "cpu_time", "round_trip"
  int threads = 0;
  int64_t completions = 0;
  LatencyRecorder latency;  // nanoseconds
  double throughput = 0;    // completions per second (antagonist: CPUs' worth of CPU time)
  // Failure accounting: the run is good only if both are 0 and `error` is empty.
  int unfinished_threads = 0;
  int64_t lost = 0;  // work that was handed out but never done
  std::string error;
  std::vector<std::pair<std::string, double>> extras;  // workload-specific numbers

  bool ok() const { return unfinished_threads == 0 && lost == 0 && error.empty(); }
};

enum class ReportFormat { kTable, kCsv, kJson };
absl::StatusOr<ReportFormat> ParseReportFormat(absl::string_view name);

// Everything printed for `results`, in `format` (CSV and table with a header).
std::string FormatResults(const std::vector<BenchResult>& results, ReportFormat format);

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_WORKLOADS_BENCH_REPORT_H_
