#include "userspace/sim/simulation.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "userspace/ring_config.h"
#include "absl/strings/strip.h"
#include "userspace/enclave.h"
#include "userspace/hints/hint_table.h"
#include "userspace/policy.h"
#include "userspace/policies/registry.h"
#include "userspace/sim/baseline.h"
#include "userspace/sim/machine.h"
#include "userspace/sim/sim_kernel_side.h"
#include "userspace/sim/trace_writer.h"
#include "userspace/topology.h"

namespace ghost {
namespace sim {
namespace {

// How often an otherwise idle global agent looks again (it spins for real).
constexpr uint64_t kGlobalAgentIdlePollNs = 10'000;

std::vector<std::string> AllPolicyNames() {
  std::vector<std::string> names = PolicyNames();
  for (const std::string& b : BaselineClass::Names()) names.push_back(b);
  return names;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

absl::Status CheckLoad(double load) {
  if (!std::isfinite(load) || load <= 0 || load > 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("load %g is out of range (0, 2]: a fraction of the worker CPUs", load));
  }
  return absl::OkStatus();
}

absl::StatusOr<CpuList> EnclaveCpus(const SimOptions& o, const Topology& topo) {
  if (o.cpus.empty()) return topo.all_cpus();
  absl::StatusOr<CpuList> l = CpuList::Parse(o.cpus, topo.num_cpus());
  if (!l.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cpus: ", l.status().message(), " on machine '", o.machine, "'"));
  }
  return l;
}

ServiceDist MakeService(const SimOptions& o) {
  ServiceDist d;
  const uint64_t mean = static_cast<uint64_t>(std::llround(o.service_us * 1000));
  if (o.service == "exponential") d = {.kind = ServiceDist::kExponential, .mean_ns = mean};
  if (o.service == "fixed") d = {.kind = ServiceDist::kFixed, .mean_ns = mean};
  return d;
}

}  // namespace

absl::Status ValidateSimOptions(const SimOptions& o) {
  if (!Contains(AllPolicyNames(), o.policy)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown policy '", o.policy, "' (known: ",
                                                   absl::StrJoin(AllPolicyNames(), ", "), ")"));
  }
  if (absl::Status s = CheckHintsFor(o.policy, o.hints); !s.ok()) return s;
  if (o.worker_qos < 0 || o.worker_qos > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--worker-qos=%d is not a QoS class (0..%u)", o.worker_qos, UINT32_MAX));
  }
  if (o.worker_qos != 0) {
    if (!o.hints.empty()) {
      return absl::InvalidArgumentError(
          "--worker-qos makes the application's own hint table: not with --hints");
    }
    if (!ReadsHints(o.policy)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--worker-qos makes a hint table for a policy that reads one (not %s)", o.policy));
    }
  }
  if (absl::Status s = CheckBatchBelowFor(o.policy, o.batch_below); !s.ok()) return s;
  if (!std::isfinite(o.deadline_factor) || o.deadline_factor < 0 || o.deadline_factor > 1e6) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--deadline-factor=%g is out of range (0..1000000)", o.deadline_factor));
  }
  if (o.deadline_factor > 0 && o.worker_qos == 0) {
    return absl::InvalidArgumentError(
        "--deadline-factor writes deadlines into the application's hint table: it needs "
        "--worker-qos");
  }
  absl::StatusOr<Topology> topo = Topology::Preset(o.machine);
  if (!topo.ok()) return topo.status();
  if (!Contains(WorkloadNames(), o.workload)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown workload '", o.workload,
                                                   "' (known: ",
                                                   absl::StrJoin(WorkloadNames(), ", "), ")"));
  }
  if (absl::Status s = CheckLoad(o.load); !s.ok()) return s;
  if (o.duration <= absl::ZeroDuration() || o.duration > absl::Seconds(3600)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "duration ", absl::FormatDuration(o.duration), " is out of range (0, 1h]"));
  }
  if (o.warmup != absl::InfiniteDuration() &&
      (o.warmup < absl::ZeroDuration() || o.warmup >= o.duration)) {
    return absl::InvalidArgumentError("warmup must be >= 0 and shorter than the duration");
  }
  if (o.slice_us < 0 || o.slice_us > 10'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("slice ", o.slice_us, " us is out of range [0, 10s]"));
  }
  if (o.service != "dispersive" && o.service != "exponential" && o.service != "fixed") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown service distribution '", o.service, "' (known: dispersive, exponential, fixed)"));
  }
  if (!std::isfinite(o.service_us) || o.service_us <= 0 || o.service_us > 1e7) {
    return absl::InvalidArgumentError("service mean must be in (0, 10s] (microseconds)");
  }
  if (o.workers < 0 || o.batch < -1 || o.pairs < -1 ||
      int64_t{o.workers} + std::max(o.batch, 0) + 2 * int64_t{std::max(o.pairs, 0)} >
          GHOST_MAX_THREADS) {
    return absl::InvalidArgumentError(
        absl::StrCat("thread counts must be >= 0 and total at most ", GHOST_MAX_THREADS));
  }
  if (!std::isfinite(o.cfs_load) || o.cfs_load < 0 || o.cfs_load >= 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CFS load %g is out of range [0, 1)", o.cfs_load));
  }
  if (!std::isfinite(o.cfs_burst_us) || o.cfs_burst_us <= 0 || o.cfs_burst_us > 1e7) {
    return absl::InvalidArgumentError("CFS burst must be in (0, 10s] (microseconds)");
  }
  if (o.costs != "paper" && o.costs != "zero") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown cost model '", o.costs, "' (known: paper, zero)"));
  }
  if (o.watchdog_ms < 1 || o.watchdog_ms > 60'000) {
    return absl::InvalidArgumentError("watchdog must be 1-60000 ms");
  }
  absl::StatusOr<CpuList> cpus = EnclaveCpus(o, *topo);
  if (!cpus.ok()) return cpus.status();
  if (absl::StatusOr<PolicyOptions::FastPath> fp = ParseFastPath(o.fast_path); !fp.ok()) {
    return fp.status();
  }
  if (absl::StatusOr<bool> wp = ParseWakeupPush(o.wakeup_push); !wp.ok()) return wp.status();
  if (absl::StatusOr<bool> rs = ParseRingSteal(o.ring_steal); !rs.ok()) return rs.status();
  if (absl::StatusOr<bool> rd = ParseRingDepth(o.ring_depth); !rd.ok()) return rd.status();
  if (o.agent_sleep_us < 0 || o.agent_sleep_us > 1'000'000) {  // as ghost-agent's
    return absl::InvalidArgumentError(absl::StrFormat(
        "--agent-sleep-us=%d is out of range (0..1000000)", o.agent_sleep_us));
  }
  if (absl::StatusOr<RingSizes> rs = ParseRingSizes(o.ring_size); !rs.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--ring-size: ", rs.status().message()));
  }
  if (absl::Status s = ValidateQueueBytes(o.queue_bytes < 0 ? 0 : o.queue_bytes); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--queue-bytes=", o.queue_bytes, ": ", s.message()));
  }
  if (absl::StatusOr<MigrationCosts> m = ParseMigrationCosts(o.migration_us); !m.ok()) {
    return m.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<MigrationCosts> ParseMigrationCosts(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, ',');
  uint64_t us[3];
  bool ok = parts.size() == 3;
  for (size_t i = 0; ok && i < 3; i++) {
    ok = absl::SimpleAtoi(parts[i], &us[i]) && us[i] <= 1'000'000;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--migration-us=", text, ": want CORE,LLC,NODE, three whole us counts 0..1000000"));
  }
  return MigrationCosts{.core_ns = us[0] * 1000, .llc_ns = us[1] * 1000, .node_ns = us[2] * 1000};
}

absl::StatusOr<SimReport> RunSimulation(const SimOptions& o) {
  if (absl::Status s = ValidateSimOptions(o); !s.ok()) return s;
  absl::StatusOr<Topology> topo = Topology::Preset(o.machine);
  if (!topo.ok()) return topo.status();
  absl::StatusOr<CpuList> cpus = EnclaveCpus(o, *topo);
  if (!cpus.ok()) return cpus.status();
  const CostModel costs = o.costs == "zero" ? CostModel::Zero() : CostModel::Paper();
  const uint64_t duration_ns = static_cast<uint64_t>(absl::ToInt64Nanoseconds(o.duration));
  const uint64_t warmup_ns = o.warmup == absl::InfiniteDuration()
                                 ? duration_ns / 10
                                 : static_cast<uint64_t>(absl::ToInt64Nanoseconds(o.warmup));

  // Declaration order is teardown order in reverse: policy, enclave, kernel side, machine.
  Machine machine(*topo, o.seed);
  machine.SetMigrationCosts(*ParseMigrationCosts(o.migration_us));  // checked above
  std::unique_ptr<TraceWriter> trace;
  if (!o.trace.empty()) {
    absl::StatusOr<std::unique_ptr<TraceWriter>> t = TraceWriter::Open(o.trace, topo->num_cpus());
    if (!t.ok()) return t.status();
    trace = std::move(*t);
    machine.SetTrace(trace.get());
  }
  std::unique_ptr<SimKernelSide> kernel;
  std::unique_ptr<BaselineClass> baseline;
  std::unique_ptr<Enclave> enclave;
  std::unique_ptr<Policy> policy;
  Spawner spawn;
  CpuList worker_cpus = *cpus;
  // --worker-qos: the RPC application's hint table, made before the policy
  // that reads it.
  std::unique_ptr<HintWriter> app_hints;
  if (o.worker_qos != 0) {
    absl::StatusOr<std::unique_ptr<HintWriter>> h =
        HintWriter::Create({.entries = std::min<uint32_t>(GHOST_HINT_MAX_ENTRIES, GHOST_MAX_THREADS)});
    if (!h.ok()) return h.status();
    app_hints = std::move(*h);
  }
  if (BaselineClass::IsBaseline(o.policy)) {
    absl::StatusOr<std::unique_ptr<BaselineClass>> b =
        BaselineClass::Create(o.policy, machine, *cpus, costs.context_switch_ns);
    if (!b.ok()) return b.status();
    baseline = std::move(*b);
    spawn = [&baseline](uint8_t kind, uint32_t owner, bool runnable, uint64_t burst) {
      return baseline->Spawn(kind, owner, runnable, burst);
    };
  } else {
    kernel = std::make_unique<SimKernelSide>(machine, costs);
    const PolicyOptions::FastPath fast_path = *ParseFastPath(o.fast_path);  // checked above
    if (fast_path != PolicyOptions::FastPath::kOff) {
      std::vector<int> nodes;
      for (int c = 0; c < topo->num_cpus(); c++) nodes.push_back(topo->numa_node(c));
      kernel->EnableRings(std::move(nodes));
    }
    absl::StatusOr<std::unique_ptr<Enclave>> e =
        Enclave::Create(*kernel, {.cpus = *cpus,
                                  .watchdog_ms = static_cast<uint32_t>(o.watchdog_ms),
                                  .queue_bytes = static_cast<size_t>(o.queue_bytes)});
    if (!e.ok()) return e.status();
    enclave = std::move(*e);
    SimKernelSide* ks = kernel.get();
    PolicyOptions po{.name = o.policy,
                     .slice = absl::Microseconds(o.slice_us),
                     .clock = [ks] { return ks->Clock(); }};
    po.fast_path = fast_path;
    po.wakeup_push = *ParseWakeupPush(o.wakeup_push);  // checked above
    po.ring_steal = *ParseRingSteal(o.ring_steal);     // checked above
    po.deep_rings = *ParseRingDepth(o.ring_depth);     // checked above
    po.agent_sleep = absl::Microseconds(o.agent_sleep_us);
    po.ring_sizes = *ParseRingSizes(o.ring_size);  // checked above
    po.hints = app_hints ? app_hints->path() : o.hints;
    po.batch_below = static_cast<uint32_t>(o.batch_below);
    po.topology = std::make_shared<const Topology>(*topo);
    absl::StatusOr<std::unique_ptr<Policy>> p = MakePolicy(po, *enclave);
    if (!p.ok()) return p.status();
    policy = std::move(*p);
    const uint64_t timeout_ns =
        static_cast<uint64_t>(absl::ToInt64Nanoseconds(AgentOptions{}.wait_timeout));
    for (Agent* a : policy->agents()) {
      absl::Status s = kernel->RegisterAgent({.cpu = a->cpu(),
                                              .global = a->global(),
                                              .queue = a->queue(),
                                              .run_once = [a] { a->RunOnce(); },
                                              .wait_timeout_ns = a->global() ? 0 : timeout_ns,
                                              .idle_sleep_ns = [a] {
                                                return static_cast<uint64_t>(
                                                    absl::ToInt64Nanoseconds(a->IdleSleep()));
                                              }});
      if (!s.ok()) return s;
      if (a->global()) worker_cpus.Clear(a->cpu());
    }
    if (o.slice_us > 0) kernel->SetGlobalAgentPollAfterStart(uint64_t(o.slice_us) * 1000);
    kernel->SetGlobalAgentIdlePoll(kGlobalAgentIdlePollNs);
    const EnclaveId eid = enclave->id();
    spawn = [ks, eid](uint8_t kind, uint32_t owner, bool runnable, uint64_t burst) {
      return ks->SpawnThread(eid, kind, owner, runnable, burst);
    };
  }
  absl::Status hint_status;  // the first entry the application could not make
  if (app_hints) {
    // A worker's entry is there as it starts (the agent reads it later in
    // simulated time); kernel tids are thread index + 1000.
    spawn = [inner = std::move(spawn), w = app_hints.get(), &hint_status,
             qos = static_cast<uint32_t>(o.worker_qos)](uint8_t kind, uint32_t owner,
                                                       bool runnable, uint64_t burst) {
      const int t = inner(kind, owner, runnable, burst);
      if (t >= 0 && kind == kWorkerThread) {
        if (absl::StatusOr<uint32_t> e = w->Add(t + 1000, {.qos = qos}); !e.ok()) {
          hint_status.Update(e.status());
        }
      }
      return t;
    };
  }
  const int nworkers = worker_cpus.Size();
  if (nworkers == 0) return absl::InvalidArgumentError("no CPU is left to run threads");
  if (o.cfs_load > 0) {
    machine.SetCfsLoad({.cpus = worker_cpus,
                        .fraction = o.cfs_load,
                        .mean_burst_ns = static_cast<uint64_t>(o.cfs_burst_us * 1000)});
  }
  WorkloadOptions wo;
  wo.name = o.workload;
  wo.workers = o.workers > 0 ? o.workers : 10 * nworkers;
  wo.service = MakeService(o);
  wo.arrival_rate = o.load * nworkers * 1e9 / wo.service.Mean();
  wo.batch_threads =
      o.workload == "antagonist" ? (o.batch >= 0 ? o.batch : std::max(1, nworkers / 2)) : 0;
  wo.pairs = o.pairs >= 0 ? o.pairs : nworkers;
  wo.deadline_factor = o.deadline_factor;
  if (app_hints && o.deadline_factor > 0) {
    wo.set_deadline = [w = app_hints.get(), &hint_status,
                       qos = static_cast<uint32_t>(o.worker_qos)](int t, uint64_t deadline) {
      hint_status.Update(w->Update(t + 1000, {.qos = qos, .deadline_ns = deadline}));
    };
  }
  wo.warmup_ns = warmup_ns;
  if (wo.workers + wo.batch_threads + 2 * wo.pairs > GHOST_MAX_THREADS) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many threads for the ABI (", GHOST_MAX_THREADS, ")"));
  }
  absl::StatusOr<std::unique_ptr<SimWorkload>> w =
      SimWorkload::Create(wo, spawn, o.seed * 0x9e3779b97f4a7c15ULL + 1);
  if (!w.ok()) return w.status();
  machine.SetWorkload(w->get());
  machine.RunUntil(duration_ns);
  machine.Finish();
  if (!hint_status.ok()) return hint_status;
  if (trace) {
    if (absl::Status s = trace->Close(); !s.ok()) return s;
  }

  SimReport r;
  r.policy = o.policy;
  r.machine = o.machine;
  r.workload = o.workload;
  r.load = o.load;
  r.seed = o.seed;
  r.duration_s = absl::ToDoubleSeconds(o.duration);
  r.enclave_cpus = cpus->Size();
  r.worker_cpus = nworkers;
  r.completed = (*w)->completed();
  r.throughput = static_cast<double>(r.completed) / (static_cast<double>(duration_ns - warmup_ns) * 1e-9);
  r.latency = Summarize((*w)->latencies());
  r.wait = Summarize((*w)->waits());
  const double total = static_cast<double>(duration_ns) * topo->num_cpus();
  r.share_thread = static_cast<double>(machine.OccupantNs(kThread)) / total;
  r.share_cfs = static_cast<double>(machine.OccupantNs(kCfs)) / total;
  r.share_agent = static_cast<double>(machine.OccupantNs(kAgent)) / total;
  r.share_idle = static_cast<double>(machine.OccupantNs(kIdle)) / total;
  r.share_batch = static_cast<double>(machine.KindRuntimeNs(kBatchThread)) / total;
  r.deadline_missed =
      r.completed == 0 ? 0 : static_cast<double>((*w)->missed()) / static_cast<double>(r.completed);
  r.events = machine.events_processed();
  r.migrations_core = machine.migrations(kMigratedCore);
  r.migrations_llc = machine.migrations(kMigratedLlc);
  r.migrations_node = machine.migrations(kMigratedNode);
  if (kernel) {
    const SimKernelStats& st = kernel->stats();
    r.agent_utilization = kernel->num_agents() == 0
                              ? 0
                              : static_cast<double>(kernel->agent_busy_ns()) /
                                    (static_cast<double>(duration_ns) * kernel->num_agents());
    r.messages = st.messages;
    r.messages_dropped = st.messages_dropped;
    r.commits = st.commit_calls;
    r.txns = st.txns;
    r.fallback_runs = st.fallback_runs;
    r.slice_renewals = st.slice_renewals;
    r.fast_path = policy->UsesRings();
    r.ring_claims = st.ring_claims;
    r.ring_runs = st.ring_runs;
    r.ring_steals = st.ring_steals;
    r.ring_stale = st.ring_stale;
    r.doorbells = st.doorbells;
    r.doorbell_steal_kicks = st.doorbell_steal_kicks;
    r.wakeup_pushes = st.wakeup_pushes;
    r.agent_sleeps = st.agent_sleeps;
    r.agent_cpu_runs = st.agent_cpu_runs;
    r.policy_stats = policy->StatsLine();
    r.txn_committed = st.txn_results[GHOST_TXN_COMMITTED];
    r.txn_stale = st.txn_results[GHOST_TXN_TARGET_STALE] + st.txn_results[GHOST_TXN_AGENT_STALE];
    for (uint32_t i = GHOST_TXN_COMMITTED + 1; i <= GHOST_TXN_RESULT_LAST; i++) {
      if (i != GHOST_TXN_TARGET_STALE && i != GHOST_TXN_AGENT_STALE) {
        r.txn_other_failures += st.txn_results[i];
      }
    }
  }
  return r;
}

namespace {

std::string Us(uint64_t ns) { return absl::StrFormat("%.3f", static_cast<double>(ns) / 1000); }
std::string Us(double ns) { return absl::StrFormat("%.3f", ns / 1000); }
std::string F(double x) { return absl::StrFormat("%.4f", x); }

// (key, value, quoted) in output order.
std::vector<std::tuple<std::string, std::string, bool>> Fields(const SimReport& r) {
  return {
      {"policy", r.policy, true},
      {"machine", r.machine, true},
      {"workload", r.workload, true},
      {"load", F(r.load), false},
      {"seed", absl::StrCat(r.seed), false},
      {"duration_s", F(r.duration_s), false},
      {"enclave_cpus", absl::StrCat(r.enclave_cpus), false},
      {"worker_cpus", absl::StrCat(r.worker_cpus), false},
      {"completed", absl::StrCat(r.completed), false},
      {"throughput_per_s", absl::StrFormat("%.1f", r.throughput), false},
      {"latency_p50_us", Us(r.latency.p50_ns), false},
      {"latency_p99_us", Us(r.latency.p99_ns), false},
      {"latency_p999_us", Us(r.latency.p999_ns), false},
      {"latency_max_us", Us(r.latency.max_ns), false},
      {"latency_mean_us", Us(r.latency.mean_ns), false},
      {"wait_mean_us", Us(r.wait.mean_ns), false},
      {"wait_p99_us", Us(r.wait.p99_ns), false},
      {"share_threads", F(r.share_thread), false},
      {"share_cfs", F(r.share_cfs), false},
      {"share_agents", F(r.share_agent), false},
      {"share_idle", F(r.share_idle), false},
      {"share_batch", F(r.share_batch), false},
      {"agent_utilization", F(r.agent_utilization), false},
      {"events", absl::StrCat(r.events), false},
      {"messages", absl::StrCat(r.messages), false},
      {"messages_dropped", absl::StrCat(r.messages_dropped), false},
      {"commit_calls", absl::StrCat(r.commits), false},
      {"txns", absl::StrCat(r.txns), false},
      {"txn_committed", absl::StrCat(r.txn_committed), false},
      {"txn_stale", absl::StrCat(r.txn_stale), false},
      {"txn_other_failures", absl::StrCat(r.txn_other_failures), false},
      {"fallback_runs", absl::StrCat(r.fallback_runs), false},
      {"slice_renewals", absl::StrCat(r.slice_renewals), false},
      {"fast_path", r.fast_path ? "on" : "off", true},
      {"ring_claims", absl::StrCat(r.ring_claims), false},
      {"ring_runs", absl::StrCat(r.ring_runs), false},
      {"ring_steals", absl::StrCat(r.ring_steals), false},
      {"ring_stale", absl::StrCat(r.ring_stale), false},
      {"doorbells", absl::StrCat(r.doorbells), false},
      {"doorbell_steal_kicks", absl::StrCat(r.doorbell_steal_kicks), false},
      {"wakeup_pushes", absl::StrCat(r.wakeup_pushes), false},
      {"agent_sleeps", absl::StrCat(r.agent_sleeps), false},
      {"agent_cpu_runs", absl::StrCat(r.agent_cpu_runs), false},
      {"deadline_missed", F(r.deadline_missed), false},
      {"migrations_core", absl::StrCat(r.migrations_core), false},
      {"migrations_llc", absl::StrCat(r.migrations_llc), false},
      {"migrations_node", absl::StrCat(r.migrations_node), false},
  };
}

absl::Status CheckFormat(const std::string& f) {
  if (f == "text" || f == "csv" || f == "json") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format '", f, "' (known: text, csv, json)"));
}

}  // namespace

absl::StatusOr<std::string> FormatReport(const SimReport& r, const std::string& format) {
  if (absl::Status s = CheckFormat(format); !s.ok()) return s;
  const auto fields = Fields(r);
  std::string out;
  if (format == "text") {
    for (const auto& [k, v, q] : fields) absl::StrAppend(&out, absl::StrFormat("%-20s %s\n", k, v));
  } else if (format == "csv") {
    std::vector<std::string> keys, vals;
    for (const auto& [k, v, q] : fields) {
      keys.push_back(k);
      vals.push_back(v);
    }
    absl::StrAppend(&out, absl::StrJoin(keys, ","), "\n", absl::StrJoin(vals, ","), "\n");
  } else {
    std::vector<std::string> kv;
    for (const auto& [k, v, q] : fields) {
      kv.push_back(absl::StrCat("\"", k, "\": ", q ? absl::StrCat("\"", v, "\"") : v));
    }
    absl::StrAppend(&out, "{", absl::StrJoin(kv, ", "), "}\n");
  }
  return out;
}

absl::StatusOr<std::string> FormatSweep(const std::vector<SimReport>& rows,
                                        const std::string& format) {
  if (absl::Status s = CheckFormat(format); !s.ok()) return s;
  std::string out;
  if (format == "text") {
    absl::StrAppend(&out, absl::StrFormat("%-6s %12s %10s %10s %10s %12s %8s\n", "load",
                                          "throughput", "p50_us", "p99_us", "p99.9_us",
                                          "max_us", "agent"));
    for (const SimReport& r : rows) {
      absl::StrAppend(&out, absl::StrFormat("%-6.3f %12.1f %10s %10s %10s %12s %8.4f\n", r.load,
                                            r.throughput, Us(r.latency.p50_ns),
                                            Us(r.latency.p99_ns), Us(r.latency.p999_ns),
                                            Us(r.latency.max_ns), r.agent_utilization));
    }
    return out;
  }
  if (format == "csv") {
    for (size_t i = 0; i < rows.size(); i++) {
      absl::StatusOr<std::string> one = FormatReport(rows[i], "csv");
      if (!one.ok()) return one.status();
      std::vector<std::string> lines = absl::StrSplit(*one, '\n', absl::SkipEmpty());
      if (i == 0) absl::StrAppend(&out, lines[0], "\n");
      absl::StrAppend(&out, lines[1], "\n");
    }
    return out;
  }
  std::vector<std::string> objs;
  for (const SimReport& r : rows) {
    absl::StatusOr<std::string> one = FormatReport(r, "json");
    if (!one.ok()) return one.status();
    objs.push_back(std::string(absl::StripTrailingAsciiWhitespace(*one)));
  }
  return absl::StrCat("[", absl::StrJoin(objs, ",\n "), "]\n");
}

absl::StatusOr<std::vector<double>> ParseLoads(const std::string& text) {
  std::vector<double> out;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    double x;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(piece), &x)) {
      return absl::InvalidArgumentError(absl::StrCat("bad load '", piece, "' in '", text, "'"));
    }
    if (absl::Status s = CheckLoad(x); !s.ok()) return s;
    out.push_back(x);
  }
  return out;
}

}  // namespace sim
}  // namespace ghost
