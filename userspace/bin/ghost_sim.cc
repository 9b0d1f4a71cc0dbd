// ghost-sim: run a policy against a simulated machine and workload.
//
//   ghost-sim                      the dispersive load under fifo-centralized
//   ghost-sim --policy=fifo-per-cpu --machine=rome --load=0.8 --duration=1s
//   ghost-sim --sweep=0.1,0.3,0.5,0.7,0.9      load-vs-latency table
//   ghost-sim --trace=out.json                 per-CPU timelines for ui.perfetto.dev
//
// Bad input (unknown flag, policy, machine or workload, an absurd value):
// one line on stderr, exit 2.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "userspace/sim/simulation.h"

namespace {
const ghost::sim::SimOptions kDefaults;
}

ABSL_FLAG(std::string, policy, kDefaults.policy,
          "fifo-centralized, fifo-per-cpu, baseline-fifo or baseline-fair");
ABSL_FLAG(std::string, machine, kDefaults.machine, "skylake, rome or flatN");
ABSL_FLAG(std::string, cpus, kDefaults.cpus, "enclave CPUs (e.g. 0-19); empty: all");
ABSL_FLAG(std::string, workload, kDefaults.workload, "dispersive, antagonist or pingpong");
ABSL_FLAG(double, load, kDefaults.load, "offered load as a fraction of the worker CPUs");
ABSL_FLAG(absl::Duration, duration, kDefaults.duration, "simulated time (e.g. 200ms, 1s)");
ABSL_FLAG(absl::Duration, warmup, kDefaults.warmup, "not measured at the start; default 1/10");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "random seed: the same seed gives the same output");
ABSL_FLAG(int64_t, slice_us, kDefaults.slice_us, "policy time slice in us; 0: run to block");
ABSL_FLAG(int, workers, kDefaults.workers, "RPC worker threads; 0: 10 per worker CPU");
ABSL_FLAG(std::string, service, kDefaults.service, "dispersive, exponential or fixed");
ABSL_FLAG(double, service_us, kDefaults.service_us, "mean service time of exponential/fixed");
ABSL_FLAG(int, batch, kDefaults.batch, "antagonist threads; -1: one per two worker CPUs");
ABSL_FLAG(int, pairs, kDefaults.pairs, "pingpong pairs; -1: one per worker CPU");
ABSL_FLAG(double, cfs_load, kDefaults.cfs_load, "share of each worker CPU taken by CFS load");
ABSL_FLAG(double, cfs_burst_us, kDefaults.cfs_burst_us, "mean CFS burst in us");
ABSL_FLAG(std::string, costs, kDefaults.costs, "paper (Table 3 of the ghOSt paper) or zero");
ABSL_FLAG(int, watchdog_ms, kDefaults.watchdog_ms, "fallback runs threads held this long");
ABSL_FLAG(std::string, trace, kDefaults.trace, "write a Chrome/Perfetto trace here");
ABSL_FLAG(std::string, format, "text", "text, csv or json");
ABSL_FLAG(std::string, sweep, "", "comma-separated loads: print a load-vs-latency table");

namespace {

constexpr const char* kFlags[] = {
    "policy", "machine", "cpus", "workload", "load", "duration", "warmup", "seed",
    "slice_us", "workers", "service", "service_us", "batch", "pairs", "cfs_load",
    "cfs_burst_us", "costs", "watchdog_ms", "trace", "format", "sweep"};

[[noreturn]] void Fail(const std::string& msg) {
  absl::FPrintF(stderr, "ghost-sim: %s\n", msg);
  exit(2);
}

void Usage() {
  absl::PrintF("usage: ghost-sim [--flag=value ...]\n");
  for (const char* name : kFlags) {
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(name);
    absl::PrintF("  --%-14s %s (default: %s)\n", absl::StrReplaceAll(name, {{"_", "-"}}),
                 f->Help(), f->DefaultValue());
  }
}

// Our own parser: every error is one line and exit 2 (absl's exits 1).
// --slice-us and --slice_us are the same flag.
void ParseFlags(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--helpfull") {
      Usage();
      exit(0);
    }
    if (!absl::StartsWith(arg, "--")) Fail(absl::StrCat("unexpected argument '", arg, "'"));
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    name = absl::StrReplaceAll(name, {{"-", "_"}});
    bool known = false;
    for (const char* k : kFlags) known |= name == k;
    absl::CommandLineFlag* f = known ? absl::FindCommandLineFlag(name) : nullptr;
    if (f == nullptr) Fail(absl::StrCat("unknown flag '", arg, "' (try --help)"));
    if (!has_value) {
      if (i + 1 >= argc) Fail(absl::StrCat("flag --", name, " needs a value"));
      value = argv[++i];
    }
    std::string err;
    if (!f->ParseFrom(value, &err)) {
      Fail(absl::StrCat("bad value '", value, "' for --", name, ": ", err));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ParseFlags(argc, argv);
  ghost::sim::SimOptions o;
  o.policy = absl::GetFlag(FLAGS_policy);
  o.machine = absl::GetFlag(FLAGS_machine);
  o.cpus = absl::GetFlag(FLAGS_cpus);
  o.workload = absl::GetFlag(FLAGS_workload);
  o.load = absl::GetFlag(FLAGS_load);
  o.duration = absl::GetFlag(FLAGS_duration);
  o.warmup = absl::GetFlag(FLAGS_warmup);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.slice_us = absl::GetFlag(FLAGS_slice_us);
  o.workers = absl::GetFlag(FLAGS_workers);
  o.service = absl::GetFlag(FLAGS_service);
  o.service_us = absl::GetFlag(FLAGS_service_us);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.pairs = absl::GetFlag(FLAGS_pairs);
  o.cfs_load = absl::GetFlag(FLAGS_cfs_load);
  o.cfs_burst_us = absl::GetFlag(FLAGS_cfs_burst_us);
  o.costs = absl::GetFlag(FLAGS_costs);
  o.watchdog_ms = absl::GetFlag(FLAGS_watchdog_ms);
  o.trace = absl::GetFlag(FLAGS_trace);
  const std::string format = absl::GetFlag(FLAGS_format);
  const std::string sweep = absl::GetFlag(FLAGS_sweep);

  if (format != "text" && format != "csv" && format != "json") {
    Fail(absl::StrCat("unknown format '", format, "' (known: text, csv, json)"));
  }
  if (absl::Status s = ghost::sim::ValidateSimOptions(o); !s.ok()) Fail(std::string(s.message()));

  if (!sweep.empty()) {
    absl::StatusOr<std::vector<double>> loads = ghost::sim::ParseLoads(sweep);
    if (!loads.ok()) Fail(std::string(loads.status().message()));
    if (!o.trace.empty()) Fail("--trace and --sweep do not go together");
    std::vector<ghost::sim::SimReport> rows;
    for (double load : *loads) {
      o.load = load;
      absl::StatusOr<ghost::sim::SimReport> r = ghost::sim::RunSimulation(o);
      if (!r.ok()) Fail(std::string(r.status().message()));
      rows.push_back(*r);
    }
    absl::StatusOr<std::string> out = ghost::sim::FormatSweep(rows, format);
    if (!out.ok()) Fail(std::string(out.status().message()));
    fputs(out->c_str(), stdout);
    return 0;
  }
  absl::StatusOr<ghost::sim::SimReport> r = ghost::sim::RunSimulation(o);
  if (!r.ok()) Fail(std::string(r.status().message()));
  absl::StatusOr<std::string> out = ghost::sim::FormatReport(*r, format);
  if (!out.ok()) Fail(std::string(out.status().message()));
  fputs(out->c_str(), stdout);
  return 0;
}
