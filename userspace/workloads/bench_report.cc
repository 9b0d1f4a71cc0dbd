#include "userspace/workloads/bench_report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ghost {
namespace {

double Us(int64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.3f", v);
}

// CSV fields never hold commas, quotes or newlines in practice (labels are
// validated), but quote defensively.
std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n") == absl::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

absl::StatusOr<ReportFormat> ParseReportFormat(absl::string_view name) {
  if (name == "table") return ReportFormat::kTable;
  if (name == "csv") return ReportFormat::kCsv;
  if (name == "json") return ReportFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", name, "' (table, csv or json)"));
}

std::string FormatResults(const std::vector<BenchResult>& results, ReportFormat format) {
  std::string out;
  switch (format) {
    case ReportFormat::kCsv:
      out = "workload,label,metric,threads,completions,p50_us,p99_us,p999_us,max_us,throughput,"
            "unfinished_threads,lost,ok\n";
      for (const BenchResult& r : results) {
        absl::StrAppendFormat(&out, "%s,%s,%s,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%d,%d,%d\n",
                              CsvField(r.workload), CsvField(r.label), CsvField(r.metric),
                              r.threads, r.completions, Us(r.latency.Percentile(50)),
                              Us(r.latency.Percentile(99)), Us(r.latency.Percentile(99.9)),
                              Us(r.latency.Max()), r.throughput, r.unfinished_threads, r.lost,
                              r.ok() ? 1 : 0);
      }
      return out;
    case ReportFormat::kJson:
      for (const BenchResult& r : results) {
        absl::StrAppend(
            &out, "{\"workload\":", JsonString(r.workload), ",\"label\":", JsonString(r.label),
            ",\"metric\":", JsonString(r.metric), ",\"threads\":", r.threads,
            ",\"completions\":", r.completions, ",\"samples\":", r.latency.Count(),
            ",\"p50_us\":", JsonNumber(Us(r.latency.Percentile(50))),
            ",\"p99_us\":", JsonNumber(Us(r.latency.Percentile(99))),
            ",\"p999_us\":", JsonNumber(Us(r.latency.Percentile(99.9))),
            ",\"max_us\":", JsonNumber(Us(r.latency.Max())),
            ",\"throughput\":", JsonNumber(r.throughput),
            ",\"unfinished_threads\":", r.unfinished_threads, ",\"lost\":", r.lost,
            ",\"ok\":", r.ok() ? "true" : "false", ",\"error\":", JsonString(r.error));
        for (const auto& [k, v] : r.extras) {
          absl::StrAppend(&out, ",", JsonString(k), ":", JsonNumber(v));
        }
        out += "}\n";
      }
      return out;
    case ReportFormat::kTable:
      out = absl::StrFormat("%-11s %-10s %-10s %7s %11s %10s %10s %10s %10s %12s %s\n", "workload",
                            "scheduler", "metric", "threads", "completions", "p50(us)", "p99(us)",
                            "p99.9(us)", "max(us)", "throughput", "result");
      for (const BenchResult& r : results) {
        std::string verdict = "ok";
        if (!r.ok()) {
          verdict = "FAILED";
          if (r.unfinished_threads) absl::StrAppend(&verdict, " unfinished=", r.unfinished_threads);
          if (r.lost) absl::StrAppend(&verdict, " lost=", r.lost);
          if (!r.error.empty()) absl::StrAppend(&verdict, " (", r.error, ")");
        }
        absl::StrAppendFormat(&out, "%-11s %-10s %-10s %7d %11d %10.1f %10.1f %10.1f %10.1f %12.1f %s\n",
                              r.workload, r.label, r.metric, r.threads, r.completions,
                              Us(r.latency.Percentile(50)), Us(r.latency.Percentile(99)),
                              Us(r.latency.Percentile(99.9)), Us(r.latency.Max()), r.throughput,
                              verdict);
        if (!r.extras.empty()) {
          std::string line = "  ";
          for (const auto& [k, v] : r.extras) absl::StrAppendFormat(&line, " %s=%.6g", k, v);
          out += line + "\n";
        }
      }
      return out;
  }
  return out;
}

}  // namespace ghost
