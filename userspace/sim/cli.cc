#include "userspace/sim/cli.h"

#include <functional>

#include "absl/flags/marshalling.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "userspace/policies/registry.h"

namespace ghost {
namespace sim {
namespace {

struct FlagSpec {
  const char* name;  // with '-'
  const char* help;
  std::function<std::string(const CliOptions&)> show;
  // Parses `text` into the options; false + *err on a bad value.
  std::function<bool(absl::string_view text, CliOptions*, std::string* err)> set;
};

template <typename T>
std::string Show(const T& v) {
  return absl::UnparseFlag(v);
}
std::string Show(absl::Duration d) { return absl::FormatDuration(d); }

template <typename T>
FlagSpec SimFlag(const char* name, const char* help, T SimOptions::*field) {
  return {name, help,
          [field](const CliOptions& o) { return Show(o.sim.*field); },
          [field](absl::string_view text, CliOptions* o, std::string* err) {
            return absl::ParseFlag(text, &(o->sim.*field), err);
          }};
}

FlagSpec CliFlag(const char* name, const char* help, std::string CliOptions::*field) {
  return {name, help, [field](const CliOptions& o) { return o.*field; },
          [field](absl::string_view text, CliOptions* o, std::string* err) {
            o->*field = std::string(text);
            return true;
          }};
}

const std::vector<FlagSpec>& Flags() {
  static const std::vector<FlagSpec>* flags = new std::vector<FlagSpec>{
      SimFlag("policy",
              "fifo-centralized, fifo-per-cpu, shinjuku, edf, sol, search, baseline-fifo or "
              "baseline-fair",
              &SimOptions::policy),
      SimFlag("machine", "skylake, rome or flatN", &SimOptions::machine),
      SimFlag("cpus", "enclave CPUs (e.g. 0-19); empty: all", &SimOptions::cpus),
      SimFlag("workload", "dispersive, antagonist or pingpong", &SimOptions::workload),
      SimFlag("load", "offered load, a fraction of the worker CPUs", &SimOptions::load),
      SimFlag("duration", "simulated time (Abseil duration: 200ms, 1s)", &SimOptions::duration),
      SimFlag("warmup", "not measured at the start; inf: duration/10", &SimOptions::warmup),
      SimFlag("seed", "random seed: the same seed gives the same output", &SimOptions::seed),
      SimFlag("slice-us", "policy time slice in us (default 20000, shinjuku 30, edf and sol 0, as ghost-agent's); 0: run to block",
              &SimOptions::slice_us),
      SimFlag("workers", "RPC worker threads; 0: 10 per worker CPU", &SimOptions::workers),
      SimFlag("service", "dispersive, exponential or fixed", &SimOptions::service),
      SimFlag("service-us", "mean service time of exponential/fixed, us", &SimOptions::service_us),
      SimFlag("batch", "antagonist threads; -1: one per two worker CPUs", &SimOptions::batch),
      SimFlag("pairs", "pingpong pairs; -1: one per worker CPU", &SimOptions::pairs),
      SimFlag("cfs-load", "share of each worker CPU taken by CFS load", &SimOptions::cfs_load),
      SimFlag("cfs-burst-us", "mean CFS burst, us", &SimOptions::cfs_burst_us),
      SimFlag("costs", "paper (ghOSt paper, Table 3) or zero", &SimOptions::costs),
      SimFlag("watchdog-ms", "the fallback runs threads held this long", &SimOptions::watchdog_ms),
      SimFlag("trace", "write a Chrome/Perfetto trace of per-CPU timelines here",
              &SimOptions::trace),
      SimFlag("fast-path", "on, off or auto (= on): per-NUMA-node rings idle CPUs take from (issue 9)",
              &SimOptions::fast_path),
      SimFlag("wakeup-push",
              "on or off: with the fast path, the class pushes threads that wake up into the "
              "rings itself while no older thread waits for them",
              &SimOptions::wakeup_push),
      SimFlag("ring-steal",
              "on or off: with the fast path, an idle CPU whose own node's ring is empty takes "
              "entries from the other nodes' rings",
              &SimOptions::ring_steal),
      SimFlag("ring-depth",
              "all or idle: with the fast path, fill each ring with every waiting thread it may "
              "take, or only to its node's idle CPUs plus one",
              &SimOptions::ring_depth),
      SimFlag("agent-sleep-us",
              "0..1000000: with the fast path, the global agent sleeps on its queue for up to "
              "this long when idle, its CPU running threads from the rings; 0: it spins",
              &SimOptions::agent_sleep_us),
      SimFlag("ring-size",
              "ring entries, a power of two 2..4096: N, NODE:N,... or N,NODE:N (N: nodes "
              "not named)",
              &SimOptions::ring_size),
      SimFlag("queue-bytes", "message queue bytes, a power of two 4096..67108864",
              &SimOptions::queue_bytes),
      SimFlag("hints",
              "shinjuku and edf: a hint table (docs/HINTS.md) for the simulated threads (thread i's "
              "kernel tid is i + 1000); empty: every thread in class 0",
              &SimOptions::hints),
      SimFlag("worker-qos",
              "shinjuku and edf: the RPC application gives its workers this QoS class in a hint table "
              "of its own (batch threads: none, class 0); 0: no table",
              &SimOptions::worker_qos),
      SimFlag("deadline-factor",
              "with --worker-qos: each RPC request is due this many times its service time "
              "after it arrives, written into its worker's hint entry (edf orders by it); "
              "0: no deadlines",
              &SimOptions::deadline_factor),
      SimFlag("batch-below",
              "shinjuku: Shenango-style sharing: QoS classes below this one are batch, taking "
              "idle CPUs in turns of 20 ms and giving them back at once; 0: off",
              &SimOptions::batch_below),
      SimFlag("migration-us",
              "CORE,LLC,NODE: extra compute (us) of a run that starts on another core of the "
              "thread's last LLC, another LLC of its node, another node",
              &SimOptions::migration_us),
      CliFlag("format", "text, csv or json", &CliOptions::format),
      CliFlag("sweep", "comma-separated loads: print a load-vs-latency table", &CliOptions::sweep),
  };
  return *flags;
}

}  // namespace

std::string CliUsage() {
  const CliOptions defaults;
  std::string out = "usage: ghost-sim [--flag=value ...]\n";
  for (const FlagSpec& f : Flags()) {
    absl::StrAppend(&out, absl::StrFormat("  --%-14s %s (default: %s)\n", f.name, f.help,
                                          f.show(defaults)));
  }
  return out;
}

absl::StatusOr<CliOptions> ParseCli(const std::vector<std::string>& args) {
  CliOptions o;
  bool slice_given = false;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    name = absl::StrReplaceAll(name, {{"_", "-"}});
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& f : Flags()) {
      if (name == f.name) spec = &f;
    }
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", arg, "' (try --help)"));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
      value = args[++i];
    }
    slice_given |= name == "slice-us";
    std::string err;
    if (!spec->set(value, &o, &err)) {
      return absl::InvalidArgumentError(absl::StrCat("bad value '", value, "' for --", name,
                                                     err.empty() ? "" : ": ", err));
    }
  }
  // Without --slice-us, the policy's own default (as ghost-agent).
  if (!slice_given) o.sim.slice_us = absl::ToInt64Microseconds(DefaultSlice(o.sim.policy));
  if (o.format != "text" && o.format != "csv" && o.format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown format '", o.format, "' (known: text, csv, json)"));
  }
  if (absl::Status s = ValidateSimOptions(o.sim); !s.ok()) return s;
  if (!o.sweep.empty()) {
    absl::StatusOr<std::vector<double>> loads = ParseLoads(o.sweep);
    if (!loads.ok()) return loads.status();
    if (!o.sim.trace.empty()) {
      return absl::InvalidArgumentError("--trace and --sweep do not go together");
    }
  }
  return o;
}

int RunCli(const std::vector<std::string>& args, std::string* out, std::string* err) {
  auto fail = [err](const absl::Status& s) {
    // One line, whatever the message holds.
    *err = absl::StrCat("ghost-sim: ", absl::StrReplaceAll(s.message(), {{"\n", " "}}), "\n");
    return 2;
  };
  absl::StatusOr<CliOptions> o = ParseCli(args);
  if (!o.ok()) return fail(o.status());
  if (o->help) {
    *out = CliUsage();
    return 0;
  }
  if (!o->sweep.empty()) {
    absl::StatusOr<std::vector<double>> loads = ParseLoads(o->sweep);
    if (!loads.ok()) return fail(loads.status());
    std::vector<SimReport> rows;
    SimOptions sim = o->sim;
    for (double load : *loads) {
      sim.load = load;
      absl::StatusOr<SimReport> r = RunSimulation(sim);
      if (!r.ok()) return fail(r.status());
      rows.push_back(*r);
    }
    absl::StatusOr<std::string> text = FormatSweep(rows, o->format);
    if (!text.ok()) return fail(text.status());
    *out = *text;
    return 0;
  }
  absl::StatusOr<SimReport> r = RunSimulation(o->sim);
  if (!r.ok()) return fail(r.status());
  absl::StatusOr<std::string> text = FormatReport(*r, o->format);
  if (!text.ok()) return fail(text.status());
  *out = *text;
  return 0;
}

}  // namespace sim
}  // namespace ghost
