#include "userspace/workloads/bench_report.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace ghost {
namespace {

BenchResult Sample() {
  BenchResult r{.workload = "mixed", .label = "ghost", .metric = "wakeup", .threads = 4,
                .completions = 100, .throughput = 50};
  for (int i = 1; i <= 100; i++) r.latency.Record(i * 1000);  // 1..100 us
  r.extras = {{"wakeups", 100}};
  return r;
}

TEST(BenchReportTest, ParsesFormats) {
  EXPECT_EQ(*ParseReportFormat("table"), ReportFormat::kTable);
  EXPECT_EQ(*ParseReportFormat("csv"), ReportFormat::kCsv);
  EXPECT_EQ(*ParseReportFormat("json"), ReportFormat::kJson);
  EXPECT_FALSE(ParseReportFormat("xml").ok());
  EXPECT_FALSE(ParseReportFormat("").ok());
}

TEST(BenchReportTest, CsvHasOneRecordPerRunWithFixedColumns) {
  BenchResult bad = Sample();
  bad.workload = "pingpong";
  bad.unfinished_threads = 2;
  std::string out = FormatResults({Sample(), bad}, ReportFormat::kCsv);
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  std::vector<std::string> header = absl::StrSplit(lines[0], ',');
  EXPECT_EQ(header[0], "workload");
  EXPECT_EQ(header[5], "p50_us");
  EXPECT_EQ(header.back(), "ok");
  for (int i = 1; i <= 2; i++) {
    EXPECT_EQ(std::vector<std::string>(absl::StrSplit(lines[i], ',')).size(), header.size());
  }
  const LatencyRecorder& l = Sample().latency;
  EXPECT_EQ(lines[1], absl::StrFormat("mixed,ghost,wakeup,4,100,%.3f,%.3f,%.3f,100.000,50.000,0,0,1",
                                      l.Percentile(50) / 1e3, l.Percentile(99) / 1e3,
                                      l.Percentile(99.9) / 1e3));
  EXPECT_TRUE(absl::EndsWith(lines[2], ",2,0,0")) << lines[2];
}

TEST(BenchReportTest, JsonLineCarriesExtrasAndVerdict) {
  BenchResult r = Sample();
  r.lost = 3;
  r.error = "say \"hi\"";
  std::string out = FormatResults({r}, ReportFormat::kJson);
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
  for (const char* want : {"\"workload\":\"mixed\"", "\"label\":\"ghost\"", "\"threads\":4",
                           "\"completions\":100", "\"max_us\":100.000",
                           "\"lost\":3", "\"ok\":false", "\"wakeups\":100.000",
                           "\"error\":\"say \\\"hi\\\"\""}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " in " << out;
  }
}

TEST(BenchReportTest, TableNamesFailures) {
  BenchResult r = Sample();
  EXPECT_NE(FormatResults({r}, ReportFormat::kTable).find(" ok\n"), std::string::npos);
  r.unfinished_threads = 5;
  std::string out = FormatResults({r}, ReportFormat::kTable);
  EXPECT_NE(out.find("FAILED unfinished=5"), std::string::npos) << out;
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace ghost
