// The agent library's policies running unchanged on the simulator, plus the
// simulator's whole-run properties: determinism, the M/M/c check against
// Erlang C, bad options.
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "userspace/enclave.h"
#include "userspace/hints/hint_table.h"
#include "userspace/policy.h"
#include "userspace/policies/fifo_centralized.h"
#include "userspace/policies/registry.h"
#include "userspace/policies/search.h"
#include "userspace/sim/machine.h"
#include "userspace/sim/sim_kernel_side.h"
#include "userspace/sim/simulation.h"
#include "userspace/topology.h"

namespace ghost {
namespace sim {
namespace {

// Threads that run `burst` once per wake-up, woken at given times.
class WakeScript : public Workload {
 public:
  std::vector<std::pair<uint64_t, int>> wakes;  // (time, thread)
  std::vector<int> first_runs;
  std::vector<bool> ran;
  void Start(Machine& m) override {
    for (size_t i = 0; i < wakes.size(); i++) {
      m.Schedule(wakes[i].first, Machine::kWorkloadEvent, static_cast<uint32_t>(i), 0);
    }
  }
  void OnEvent(Machine& m, const Event& e) override { m.Wake(wakes[e.a].second, -1); }
  Next OnBurstEnd(Machine& m, int t) override {
    m.SetBurst(t, 10'000);
    return Next::kBlock;
  }
  void OnRun(Machine& m, int t) override {
    if (ran.size() <= static_cast<size_t>(t)) ran.resize(t + 1, false);
    if (!ran[t]) first_runs.push_back(t);
    ran[t] = true;
  }
};

struct PolicyRig {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<SimKernelSide> ks;
  std::unique_ptr<Enclave> enclave;
  std::unique_ptr<Policy> policy;
};

PolicyRig MakeRig(const std::string& policy, const Topology& topo, Workload* w,
                  absl::Duration slice = absl::ZeroDuration(), const std::string& hints = "",
                  uint32_t batch_below = 0) {
  PolicyRig r;
  r.machine = std::make_unique<Machine>(topo, 1);
  r.ks = std::make_unique<SimKernelSide>(*r.machine, CostModel::Paper());
  r.machine->SetWorkload(w);
  r.enclave = *Enclave::Create(*r.ks, {.cpus = r.machine->topology().all_cpus()});
  SimKernelSide* ks = r.ks.get();
  PolicyOptions o{.name = policy, .slice = slice, .clock = [ks] { return ks->Clock(); }};
  o.hints = hints;
  o.batch_below = batch_below;
  o.topology = std::make_shared<const Topology>(r.machine->topology());
  r.policy = *MakePolicy(o, *r.enclave);
  for (Agent* a : r.policy->agents()) {
    EXPECT_TRUE(r.ks->RegisterAgent({.cpu = a->cpu(), .global = a->global(), .queue = a->queue(),
                                     .run_once = [a] { a->RunOnce(); },
                                     .wait_timeout_ns = a->global() ? 0u : 1000000u})
                    .ok());
  }
  return r;
}

PolicyRig MakeRig(const std::string& policy, const std::string& preset, Workload* w,
                  absl::Duration slice = absl::ZeroDuration(), const std::string& hints = "",
                  uint32_t batch_below = 0) {
  return MakeRig(policy, *Topology::Preset(preset), w, slice, hints, batch_below);
}

TEST(SimPolicyTest, CentralizedFifoRunsThreadsInWakeOrder) {
  WakeScript w;
  PolicyRig r = MakeRig("fifo-centralized", "flat2", &w);  // agent on 0, threads on 1
  std::vector<int> ts;
  for (int i = 0; i < 6; i++) ts.push_back(r.ks->SpawnThread(r.enclave->id(), 0, i, false, 10'000));
  // Wake in a scrambled thread order while CPU 1 is busy with the first one.
  const int order[] = {3, 0, 5, 1, 4, 2};
  for (int i = 0; i < 6; i++) w.wakes.push_back({10'000 + 1'000 * i, ts[order[i]]});
  r.machine->RunUntil(1'000'000);
  ASSERT_EQ(w.first_runs.size(), 6u);
  for (int i = 0; i < 6; i++) EXPECT_EQ(w.first_runs[i], ts[order[i]]) << i;
  EXPECT_EQ(r.ks->stats().fallback_runs, 0u);  // the agent placed everything
}

TEST(SimPolicyTest, CentralizedFifoGroupCommitsToAllIdleCpus) {
  WakeScript w;
  PolicyRig r = MakeRig("fifo-centralized", "flat5", &w);
  for (int i = 0; i < 4; i++) {
    const int t = r.ks->SpawnThread(r.enclave->id(), 0, i, false, 10'000);
    w.wakes.push_back({5'000, t});  // all at once
  }
  r.machine->RunUntil(12'000);  // agent side 4 x 668 ns, target side 1064 ns
  // One agent pass saw all four wake-ups and placed them in one commit call.
  EXPECT_EQ(r.ks->stats().txns, 4u);
  EXPECT_EQ(r.ks->stats().commit_calls, 1u);
  int running = 0;
  for (int c = 1; c < 5; c++) running += r.machine->cpu(c).thread >= 0;
  EXPECT_EQ(running, 4);
  EXPECT_EQ(r.ks->stats().txn_results[GHOST_TXN_COMMITTED], 4u);
}

TEST(SimPolicyTest, PerCpuFifoRunsEveryThreadOnSequentialWakeups) {
  WakeScript w;
  PolicyRig r = MakeRig("fifo-per-cpu", "flat2", &w);
  std::vector<int> ts;
  for (int i = 0; i < 6; i++) ts.push_back(r.ks->SpawnThread(r.enclave->id(), 0, i, false, 10'000));
  for (int i = 0; i < 6; i++) w.wakes.push_back({2'000'000 + 100'000 * i, ts[i]});
  r.machine->RunUntil(5'000'000);
  ASSERT_EQ(w.first_runs.size(), 6u);
  EXPECT_EQ(w.first_runs, ts);
  EXPECT_EQ(r.ks->stats().fallback_runs, 0u);
  // Per-CPU agents commit locally: their CPUs were occupied by agents.
  EXPECT_GT(r.machine->OccupantNs(kAgent), 0u);
}

TEST(SimPolicyTest, CfsLoadReachesThePolicyAsCpuBusy) {
  SimOptions o;
  o.machine = "flat5";
  o.duration = absl::Milliseconds(50);
  o.service = "fixed";
  o.service_us = 10;
  absl::StatusOr<SimReport> quiet = RunSimulation(o);
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  o.cfs_load = 0.3;
  absl::StatusOr<SimReport> r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->share_cfs, 0.15);
  EXPECT_EQ(quiet->share_cfs, 0);
  // 4 x 0.7 CPUs left for 2 CPUs of work: requests still complete, because
  // the agent stops using CPUs CFS took (CPU_BUSY) and resumes on AVAILABLE.
  EXPECT_GT(r->completed, quiet->completed * 95 / 100);
  EXPECT_EQ(r->fallback_runs, 0u);
}

TEST(SimPolicyTest, PerCpuThreadPreemptedByItsOwnAgentRunsAgain) {
  // A 3 ms burst outlives the agent's 1 ms WaitQueue timeout: the agent's
  // wake-ups set it aside (it resumes after each, without a message, as on
  // the class) before the agent has read the COMMITTED result that started
  // it. The thread must still be run to completion.
  WakeScript w;
  PolicyRig r = MakeRig("fifo-per-cpu", "flat1", &w);
  const int t = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 3'000'000);
  w.wakes.push_back({100'000, t});
  r.machine->RunUntil(10'000'000);
  EXPECT_EQ(r.machine->thread(t).state, ThreadState::kBlocked);
  EXPECT_GE(r.machine->thread(t).runtime_ns, 3'000'000u);
  EXPECT_EQ(r.ks->stats().fallback_runs, 0u);
}

// Threads that each run one burst, then block for good; OnRun notes when
// each first ran.
class Hogs : public Workload {
 public:
  std::map<int, uint64_t> first_run_ns;
  void Start(Machine& m) override {}
  void OnEvent(Machine& m, const Event& e) override {}
  Next OnBurstEnd(Machine& m, int t) override { return Next::kBlock; }
  void OnRun(Machine& m, int t) override { first_run_ns.emplace(t, m.now()); }
};

TEST(SimPolicyTest, PerCpuSliceEndsOnlyWhenAnotherWaits) {
  // One CPU, a 5 ms slice. Alone, a 40 ms hog keeps the CPU: its slice is
  // renewed in place, and its agent's wake-ups (every 1 ms) set it aside
  // without a turn's end. With a second one waiting, that one runs at the
  // next slice's end, not after 40 ms.
  Hogs w;
  PolicyRig r = MakeRig("fifo-per-cpu", "flat1", &w, absl::Milliseconds(5));
  const int a = r.ks->SpawnThread(r.enclave->id(), 0, 0, true, 40'000'000);
  r.machine->RunUntil(30'000'000);
  EXPECT_GE(r.ks->stats().slice_renewals, 4u);
  EXPECT_LE(r.ks->stats().txns, 2u) << "committed again at its agent's wake-ups";
  const int b = r.ks->SpawnThread(r.enclave->id(), 0, 0, true, 40'000'000);
  r.machine->RunUntil(100'000'000);
  ASSERT_TRUE(w.first_run_ns.count(b));
  EXPECT_LT(w.first_run_ns[b], 37'000'000u) << "waited for a to block";
  EXPECT_EQ(r.machine->thread(a).state, ThreadState::kBlocked);
  EXPECT_EQ(r.machine->thread(b).state, ThreadState::kBlocked);
  EXPECT_EQ(r.ks->stats().fallback_runs, 0u);
}

// Shinjuku: QoS classes from a hint table. The simulator's thread t has the
// kernel thread id (TASK_NEW's pid) t + 1000.
struct QosRig {
  std::unique_ptr<HintWriter> hints = *HintWriter::Create({});
  Hogs w;
  PolicyRig r;
  QosRig(const std::string& preset, absl::Duration slice, uint32_t batch_below = 0,
         const std::string& policy = "shinjuku") {
    r = MakeRig(policy, preset, &w, slice, hints->path(), batch_below);
    // As RunSimulation does: the global agent looks when a slice ends.
    r.ks->SetGlobalAgentPollAfterStart(absl::ToInt64Nanoseconds(slice));
  }
  // A thread of `qos` (nullopt: no entry) that runs `burst_ns` once; with
  // `deadline_ns`, its entry has that deadline (the simulator's clock).
  int Spawn(std::optional<uint32_t> qos, uint64_t burst_ns, bool runnable = true,
            std::optional<uint64_t> deadline_ns = std::nullopt) {
    const int t = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, burst_ns);
    if (qos.has_value()) {
      EXPECT_TRUE(hints->Add(t + 1000, {.qos = *qos, .deadline_ns = deadline_ns}).ok());
    }
    if (runnable) r.machine->Wake(t, -1);
    return t;
  }
  // Each ran its burst to the end, and the class's watchdog ran nothing.
  void ExpectAllDone(std::initializer_list<int> ts) {
    for (int t : ts) EXPECT_EQ(r.machine->thread(t).state, ThreadState::kBlocked) << t;
    EXPECT_EQ(r.ks->stats().fallback_runs, 0u);
  }
  uint64_t FirstRun(int t) {
    EXPECT_TRUE(w.first_run_ns.count(t)) << "thread " << t << " never ran";
    return w.first_run_ns.count(t) ? w.first_run_ns[t] : ~0ULL;
  }
};

TEST(SimPolicyTest, ShinjukuHigherClassPreemptsAtOnce) {
  // Two CPUs busy with class-1 hogs; a class-5 thread takes one of them at
  // once, long before the 10 ms slice would end, and the hog it displaced
  // runs again afterwards.
  QosRig q("flat3", absl::Milliseconds(10));
  const int lo1 = q.Spawn(1, 30'000'000), lo2 = q.Spawn(1, 30'000'000);
  q.r.machine->RunUntil(1'000'000);
  const int hi = q.Spawn(5, 2'000'000);
  q.r.machine->RunUntil(100'000'000);
  EXPECT_LT(q.FirstRun(hi), 1'100'000u) << "waited for a slice's end";
  EXPECT_NE(q.r.policy->StatsLine().find("qos_preemptions=1 "), std::string::npos)
      << q.r.policy->StatsLine();
  q.ExpectAllDone({hi, lo1, lo2});
}

TEST(SimPolicyTest, ShinjukuSliceEndsOnlyForItsClassOrAHigherOne) {
  // One CPU, 100 us slices. A class-1 thread waiting ends no slice of a
  // class-5 thread: it runs once that one is done, and a thread with no entry
  // (class 0) after it. Later two class-5 threads take turns at the slice.
  QosRig q("flat2", absl::Microseconds(100));
  const int h1 = q.Spawn(5, 2'000'000);
  q.r.machine->RunUntil(20'000);
  const int none = q.Spawn(std::nullopt, 10'000);
  const int lo = q.Spawn(1, 10'000);
  q.r.machine->RunUntil(5'000'000);
  EXPECT_GT(q.FirstRun(lo), 2'000'000u) << "class 1 ended a class-5 slice";
  EXPECT_GT(q.FirstRun(none), q.FirstRun(lo));
  const int h2 = q.Spawn(5, 2'000'000);
  q.r.machine->RunUntil(5'020'000);
  const int h3 = q.Spawn(5, 2'000'000);
  q.r.machine->RunUntil(100'000'000);
  EXPECT_LT(q.FirstRun(h3), 5'400'000u) << "the class-5 threads did not take turns";
  q.ExpectAllDone({h1, h2, h3, lo, none});
}

TEST(SimPolicyTest, ShinjukuSeesAClassChangedWhileWaiting) {
  // One CPU busy with a class-1 hog; a thread with no entry waits (class 0).
  // Its entry comes while it waits: within about a millisecond it is class 5
  // and takes the CPU, long before the hog's 10 ms slice ends.
  QosRig q("flat2", absl::Milliseconds(10));
  const int lo = q.Spawn(1, 30'000'000);
  q.r.machine->RunUntil(1'000'000);
  const int late = q.Spawn(std::nullopt, 1'000'000);
  q.r.machine->RunUntil(3'000'000);
  ASSERT_FALSE(q.w.first_run_ns.count(late)) << "class 0 ran before class 1";
  ASSERT_TRUE(q.hints->Add(late + 1000, {.qos = 5}).ok());
  // A message makes the agent look (a real one spins).
  const int other = q.Spawn(std::nullopt, 10'000);
  q.r.machine->RunUntil(100'000'000);
  EXPECT_LT(q.FirstRun(late), 4'500'000u) << "the new class was not seen while it waited";
  q.ExpectAllDone({lo, late, other});
}

TEST(SimPolicyTest, ShinjukuSharingBatchYieldsAtOnceAndTakesLongTurns) {
  // One CPU, 100 us slices, classes below 1 are batch. Two 30 ms batch
  // threads (no entry: class 0): the second waits for the batch slice (20 ms),
  // not the 100 us one; a class-1 thread takes the CPU from the batch thread
  // at once. Without sharing, the batch threads take turns at 100 us.
  for (uint32_t batch_below : {1u, 0u}) {
    SCOPED_TRACE(batch_below);
    QosRig q("flat2", absl::Microseconds(100), batch_below);
    const int b1 = q.Spawn(std::nullopt, 30'000'000);
    q.r.machine->RunUntil(20'000);
    const int b2 = q.Spawn(std::nullopt, 30'000'000);
    q.r.machine->RunUntil(5'000'000);
    const int lc = q.Spawn(1, 50'000);
    q.r.machine->RunUntil(200'000'000);
    EXPECT_LT(q.FirstRun(lc), 5'100'000u) << "the batch thread kept the CPU";
    if (batch_below != 0) {
      EXPECT_GT(q.FirstRun(b2), 19'000'000u) << "batch threads took turns at the short slice";
    } else {
      EXPECT_LT(q.FirstRun(b2), 1'000'000u) << "without sharing they take turns at the slice";
    }
    q.ExpectAllDone({b1, b2, lc});
  }
}

TEST(SimPolicyTest, ShinjukuSharingGivesBatchTheIdleCpusAndKeepsTheTail) {
  // The paper's Shinjuku + Shenango-style sharing, on the RPC workload at 30 %
  // load (flat21): alone, its workers leave about 70 % of the CPU time idle.
  // With 20 always-runnable batch threads under sharing (the workers in class
  // 1 of the application's table, the batch threads in none), the batch
  // threads get nearly all of that idle time and the workers' p99 stays
  // within 15 % of theirs alone (seed 1: 5 %; with the classes but batch
  // turns at the 30 us slice, 27 %: the agent is busy turning batch threads
  // over). In one class (no table) the batch threads take turns with the
  // workers and the tail grows several times over.
  SimOptions o;
  o.policy = "shinjuku";
  o.slice_us = 30;  // its default in the binaries (SimOptions' is the FIFOs')
  o.load = 0.3;
  absl::StatusOr<SimReport> alone = RunSimulation(o);
  o.workload = "antagonist";
  o.batch = 20;
  o.worker_qos = 1;
  o.batch_below = 1;
  absl::StatusOr<SimReport> shared = RunSimulation(o);
  o.worker_qos = 0;
  o.batch_below = 0;
  absl::StatusOr<SimReport> one_class = RunSimulation(o);
  ASSERT_TRUE(alone.ok() && shared.ok() && one_class.ok());
  EXPECT_GT(alone->share_idle, 0.6);
  EXPECT_GT(shared->share_batch, 0.95 * alone->share_idle);
  EXPECT_LT(shared->latency.p99_ns, 1.15 * alone->latency.p99_ns);
  EXPECT_GT(one_class->latency.p99_ns, 3 * alone->latency.p99_ns);
}

TEST(SimPolicyTest, EdfRunsEarliestDeadlineFirstWithinAClass) {
  // One CPU, no slice (edf's default). A class-1 hog with the latest deadline
  // holds it; four class-1 threads wake with deadlines in the reverse of
  // their wake order, one with none, and one class-2 thread with no
  // deadline. An earlier deadline takes nothing; the class-2 thread takes
  // the CPU at once; from then on the class-1 threads run earliest deadline
  // first (the displaced hog too, by its late one), the one with none last.
  QosRig q("flat2", absl::ZeroDuration(), 0, "edf");
  const int hog = q.Spawn(1, 5'000'000, true, 900'000'000);
  q.r.machine->RunUntil(100'000);
  std::vector<int> due;  // wake order; deadlines 400, 300, 200, 100 ms
  const int none = q.Spawn(1, 100'000);
  for (uint64_t d : {400, 300, 200, 100}) due.push_back(q.Spawn(1, 100'000, true, d * 1'000'000));
  q.r.machine->RunUntil(1'000'000);
  EXPECT_FALSE(q.w.first_run_ns.count(due[3])) << "an earlier deadline preempted";
  const int hi = q.Spawn(2, 100'000);
  q.r.machine->RunUntil(100'000'000);
  EXPECT_LT(q.FirstRun(hi), 1'200'000u) << "a higher class waited";
  for (size_t i = 0; i + 1 < due.size(); i++) {
    EXPECT_GT(q.FirstRun(due[i]), q.FirstRun(due[i + 1])) << "deadline order, " << i;
  }
  EXPECT_GT(q.FirstRun(none), q.FirstRun(due[0])) << "no deadline ran before a deadline";
  due.push_back(hog);
  due.push_back(none);
  due.push_back(hi);
  for (int t : due) EXPECT_EQ(q.r.machine->thread(t).state, ThreadState::kBlocked) << t;
  EXPECT_EQ(q.r.ks->stats().fallback_runs, 0u);
}

TEST(SimPolicyTest, EdfCountsAClassRelativeDeadlineFromTheWakeUp) {
  // Hint class 1 is due 50 ms after a wake-up, class 2 after 1 ms. While a
  // hog holds the one CPU, a thread of class 1 wakes at 1 ms (due at 51 ms),
  // one of class 2 at 2 ms (due at 3 ms): the later one runs first. An
  // absolute deadline in the entry wins over its class's relative one.
  QosRig q("flat2", absl::ZeroDuration(), 0, "edf");
  ASSERT_TRUE(q.hints->SetClass(1, {.relative_deadline_ns = 50'000'000}).ok());
  ASSERT_TRUE(q.hints->SetClass(2, {.relative_deadline_ns = 1'000'000}).ok());
  const int hog = q.Spawn(1, 10'000'000);
  q.r.machine->RunUntil(1'000'000);
  auto spawn = [&](Hint h) {
    const int t = q.r.ks->SpawnThread(q.r.enclave->id(), 0, 0, false, 100'000);
    EXPECT_TRUE(q.hints->Add(t + 1000, h).ok());
    q.r.machine->Wake(t, -1);
    return t;
  };
  const int loose = spawn({.qos = 1, .class_id = 1});
  q.r.machine->RunUntil(2'000'000);
  const int tight = spawn({.qos = 1, .class_id = 2});
  const int absolute = spawn({.qos = 1, .deadline_ns = 60'000'000, .class_id = 2});
  q.r.machine->RunUntil(100'000'000);
  EXPECT_LT(q.FirstRun(tight), q.FirstRun(loose)) << "the relative deadline was not counted";
  EXPECT_GT(q.FirstRun(absolute), q.FirstRun(loose)) << "the entry's own deadline lost";
  q.ExpectAllDone({hog, loose, tight, absolute});
}

TEST(SimPolicyTest, EdfOrdersTheRpcWorkloadByItsRequestsDeadlines) {
  // The dispersive RPC workload at 70 % load, each request due 10x its
  // service time after it arrives, written into its worker's entry before the
  // worker wakes (--worker-qos=1 --deadline-factor=10). With no slice, the
  // same agent in arrival order (shinjuku, one class) lets short requests
  // queue behind long ones; EDF serves the tight deadlines first: a tail
  // less than half as long, fewer deadlines missed. With 30 us slices too,
  // EDF's tail is still the shorter.
  SimOptions o;
  o.worker_qos = 1;
  o.deadline_factor = 10;
  o.load = 0.7;
  o.slice_us = 0;
  o.policy = "shinjuku";
  absl::StatusOr<SimReport> fifo = RunSimulation(o);
  o.policy = "edf";
  absl::StatusOr<SimReport> edf = RunSimulation(o);
  o.slice_us = 30;
  absl::StatusOr<SimReport> edf_sliced = RunSimulation(o);
  o.policy = "shinjuku";
  absl::StatusOr<SimReport> shinjuku = RunSimulation(o);
  ASSERT_TRUE(fifo.ok() && edf.ok() && edf_sliced.ok() && shinjuku.ok());
  EXPECT_GT(fifo->deadline_missed, 0.01);
  EXPECT_LT(edf->deadline_missed, fifo->deadline_missed);
  EXPECT_LT(edf->latency.p99_ns, fifo->latency.p99_ns / 2);
  EXPECT_LT(edf_sliced->latency.p99_ns, shinjuku->latency.p99_ns);
}

TEST(SimPolicyTest, SolPlacesOnTheLastCpuThenItsSmtSibling) {
  // 3 cores x SMT2: CPUs c and c + 3 share a core; the agent has CPU 0. A
  // runs on CPU 1 and blocks; a hog with no last CPU takes CPU 1 (the lowest
  // idle one); when A wakes again it goes to CPU 4, CPU 1's sibling, not to
  // CPU 2 (the lowest idle one, where the centralized FIFO puts it), and the
  // next time it stays there.
  for (const std::string policy : {"sol", "fifo-centralized"}) {
    SCOPED_TRACE(policy);
    WakeScript w;
    const Topology topo =
        *Topology::FromShape({.packages = 1, .cores_per_package = 3, .threads_per_core = 2});
    PolicyRig r = MakeRig(policy, topo, &w);
    const int a = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 10'000);
    const int hog = r.ks->SpawnThread(r.enclave->id(), 0, 1, false, 50'000'000);
    w.wakes = {{0, a}, {1'000'000, hog}, {2'000'000, a}, {3'000'000, a}};
    std::vector<int> cpus;  // where A ran, at each wake-up
    for (uint64_t at : {500'000u, 1'500'000u, 2'500'000u, 3'500'000u}) {
      r.machine->RunUntil(at);
      if (at == 1'500'000u) {
        EXPECT_EQ(r.machine->thread(hog).cpu, 1);
      } else {
        cpus.push_back(r.machine->thread(a).cpu);
      }
    }
    if (policy == "sol") {
      EXPECT_EQ(cpus, (std::vector<int>{1, 4, 4}));
      EXPECT_NE(r.policy->StatsLine().find("placed_last_cpu=1 placed_sibling=1 placed_elsewhere=2"),
                std::string::npos)
          << r.policy->StatsLine();
    } else {
      EXPECT_EQ(cpus, (std::vector<int>{1, 2, 2})) << "the FIFO's placement changed";
    }
  }
}

// WakeScript that also logs every run: (thread, CPU, when).
class RunLog : public WakeScript {
 public:
  struct Run {
    int thread, cpu;
    uint64_t at;
  };
  std::vector<Run> runs;
  void OnRun(Machine& m, int t) override {
    WakeScript::OnRun(m, t);
    runs.push_back({t, m.thread(t).cpu, m.now()});
  }
  // The first run of `t` at or after `after`.
  Run RunAfter(int t, uint64_t after) const {
    for (const Run& r : runs) {
      if (r.thread == t && r.at >= after) return r;
    }
    return {t, -1, 0};
  }
};

TEST(SimPolicyTest, SearchWaitsForItsLlcThenCrossesWithinItsNode) {
  // 2 nodes x 2 LLCs x 2 cores, no SMT: LLCs {0,1} {2,3} {4,5} {6,7}; the
  // agent has CPU 0, so A's LLC is CPU 1 alone. A runs on CPU 1 and blocks.
  //  - A wakes while a short hog holds CPU 1 (it leaves after ~30 us): search
  //    holds A for its LLC and A runs on CPU 1 again; the centralized FIFO
  //    puts it on CPU 2 at once.
  //  - A wakes while a long hog holds CPU 1: search holds it for kHoldLlc,
  //    then crosses to CPU 2 (its node), not to the other node.
  const Topology topo = *Topology::FromShape(
      {.packages = 2, .cores_per_package = 4, .threads_per_core = 1, .cores_per_llc = 2});
  for (const std::string policy : {"search", "fifo-centralized"}) {
    SCOPED_TRACE(policy);
    RunLog w;
    PolicyRig r = MakeRig(policy, topo, &w);
    r.ks->SetGlobalAgentIdlePoll(10'000);  // it spins, as ghost-sim's and ghost-agent's
    const int a = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 10'000);
    const int short_hog = r.ks->SpawnThread(r.enclave->id(), 0, 1, false, 50'000);
    const int long_hog = r.ks->SpawnThread(r.enclave->id(), 0, 2, false, 50'000'000);
    w.wakes = {{0, a},           {1'980'000, short_hog}, {2'000'000, a},
               {3'000'000, long_hog}, {4'000'000, a},    {5'000'000, a}};
    r.machine->RunUntil(6'000'000);
    EXPECT_EQ(w.RunAfter(a, 0).cpu, 1);
    EXPECT_EQ(w.RunAfter(short_hog, 0).cpu, 1);
    EXPECT_EQ(w.RunAfter(long_hog, 0).cpu, 1);
    const RunLog::Run back = w.RunAfter(a, 2'000'000);
    const RunLog::Run crossed = w.RunAfter(a, 4'000'000);
    if (policy == "search") {
      EXPECT_EQ(back.cpu, 1) << "held for its LLC, A should get CPU 1 back";
      EXPECT_LT(back.at, 2'000'000 + absl::ToInt64Nanoseconds(SearchPolicy::kHoldLlc));
      EXPECT_EQ(crossed.cpu, 2);
      EXPECT_GE(crossed.at, 4'000'000 + absl::ToInt64Nanoseconds(SearchPolicy::kHoldLlc));
      EXPECT_EQ(w.RunAfter(a, 5'000'000).cpu, 2);  // its last CPU now
      const std::string stats = r.policy->StatsLine();
      EXPECT_NE(stats.find("placed_cross_llc=1 placed_cross_node=0"), std::string::npos) << stats;
      EXPECT_EQ(stats.find("placements_held=0"), std::string::npos) << stats;
    } else {
      EXPECT_EQ(back.cpu, 2) << "the FIFO's placement changed";
    }
  }
}

TEST(SimPolicyTest, SearchRunsTheThreadThatRanLeastFirstWeightedByNice) {
  // flat2: one CPU for threads. B has run 5 ms, C 1 ms; both wait behind a
  // hog, B first. Search runs C first; with B's weight 10x C's (a lower
  // nice), B's 5 ms count as 0.5 ms and B goes first. The FIFO: B.
  for (const std::string policy : {"search", "fifo-centralized"}) {
    for (const uint32_t b_weight : {100u, 1000u}) {
      SCOPED_TRACE(policy + " weight " + std::to_string(b_weight));
      RunLog w;
      PolicyRig r = MakeRig(policy, "flat2", &w);
      const int b = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 5'000'000);
      const int c = r.ks->SpawnThread(r.enclave->id(), 0, 1, false, 1'000'000);
      const int hog = r.ks->SpawnThread(r.enclave->id(), 0, 2, false, 20'000'000);
      ASSERT_TRUE(r.ks->SetWeight(r.ks->TidOf(b), b_weight).ok());
      w.wakes = {{0, b}, {5'500'000, c}, {7'000'000, hog}, {8'000'000, b}, {9'000'000, c}};
      r.machine->RunUntil(40'000'000);
      const uint64_t b_at = w.RunAfter(b, 8'000'000).at, c_at = w.RunAfter(c, 9'000'000).at;
      ASSERT_GT(b_at, 0u);
      ASSERT_GT(c_at, 0u);
      const bool c_first = c_at < b_at;
      EXPECT_EQ(c_first, policy == "search" && b_weight == 100u);
    }
  }
  RunLog w;
  PolicyRig r = MakeRig("search", "flat2", &w);
  EXPECT_EQ(r.ks->SetWeight(r.ks->TidOf(r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 1)), 0)
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SimPolicyTest, SearchRunsAThreadThatRanMoreWithinItsWaitBound) {
  // flat2: one CPU for threads, 1 ms slices. A hog has run 10 ms when a
  // stream of new threads starts, each wanting 500 us, one every 400 us (more
  // than the CPU): every newcomer is queued at the runtime floor, ahead of the
  // hog, and the floor moves only when a thread above it is taken, so by
  // runtime alone the hog waited for the whole stream (160 ms here; with a
  // longer fork storm, for the class's watchdog). A thread that has waited
  // kRuntimeMaxWait goes ahead of the order.
  RunLog w;
  PolicyRig r = MakeRig("search", "flat2", &w, absl::Milliseconds(1));
  const int hog = r.ks->SpawnThread(r.enclave->id(), 0, 0, false, 400'000'000);
  w.wakes.push_back({0, hog});
  for (int i = 0; i < 400; ++i) {
    const int t = r.ks->SpawnThread(r.enclave->id(), 0, 1 + i, false, 500'000);
    w.wakes.push_back({10'000'000 + static_cast<uint64_t>(i) * 400'000, t});
  }
  r.machine->RunUntil(170'000'000);
  // Between the hog's starts from 10 ms on (one start ends its first run).
  uint64_t longest_gap = 0, last = 10'000'000;
  for (const RunLog::Run& run : w.runs) {
    if (run.thread != hog || run.at < last) continue;
    longest_gap = std::max(longest_gap, run.at - last);
    last = run.at;
  }
  longest_gap = std::max(longest_gap, 170'000'000 - last);
  const uint64_t bound = absl::ToInt64Nanoseconds(FifoCentralizedScheduler::kRuntimeMaxWait);
  // Plus a slice (it is 1 ms) and the newcomer that has the CPU.
  EXPECT_LE(longest_gap, bound + 2'000'000) << "the hog waited " << longest_gap / 1000 << " us";
  EXPECT_EQ(r.ks->stats().fallback_runs, 0u);
}

TEST(SimPolicyTest, SearchKeepsRequestsInTheirLlcOnRome) {
  // The RPC workload on two nodes of the rome preset (8 CCXs of 4 cores),
  // a run away from a thread's last CPU paying a cache refill: 5 us on
  // another core of its CCX, 50 us on another CCX, 150 us on the other node
  // (docs/POLICIES.md, "Search"). Search moves threads across CCXs a few
  // times less than the centralized FIFO and SOL, and serves requests faster.
  SimOptions o;
  o.machine = "rome";
  o.cpus = "0-15,64-79";
  o.service = "exponential";
  o.service_us = 200;
  o.load = 0.6;
  o.migration_us = "5,50,150";
  o.duration = absl::Milliseconds(200);
  std::map<std::string, SimReport> r;
  for (const std::string policy : {"search", "fifo-centralized", "sol"}) {
    o.policy = policy;
    absl::StatusOr<SimReport> one = RunSimulation(o);
    ASSERT_TRUE(one.ok()) << policy << ": " << one.status();
    r[policy] = *one;
  }
  auto crossed = [](const SimReport& x) { return x.migrations_llc + x.migrations_node; };
  for (const std::string other : {"fifo-centralized", "sol"}) {
    SCOPED_TRACE(other);
    EXPECT_LT(crossed(r["search"]) * 3, crossed(r[other]));
    EXPECT_LT(r["search"].latency.p50_ns, r[other].latency.p50_ns);
    EXPECT_LE(r["search"].latency.p99_ns, r[other].latency.p99_ns);
  }
  EXPECT_EQ(r["search"].fallback_runs, 0u);
}

TEST(SimPolicyTest, SearchRefusesToStartWithoutATopology) {
  Hogs w;
  Machine m(*Topology::Preset("flat2"), 1);
  SimKernelSide ks(m, CostModel::Paper());
  std::unique_ptr<Enclave> e = *Enclave::Create(ks, {.cpus = m.topology().all_cpus()});
  absl::StatusOr<std::unique_ptr<Policy>> p = MakePolicy({.name = "search"}, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("search needs the machine's topology"), std::string::npos)
      << p.status();
  PolicyOptions o{.name = "search"};
  o.topology = std::make_shared<const Topology>(m.topology());
  o.fast_path = PolicyOptions::FastPath::kOn;
  p = MakePolicy(o, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--fast-path=on does not apply"), std::string::npos)
      << p.status();
}

TEST(SimPolicyTest, ShinjukuRefusesBadOptions) {
  Hogs w;
  Machine m(*Topology::Preset("flat2"), 1);
  SimKernelSide ks(m, CostModel::Paper());
  std::unique_ptr<Enclave> e = *Enclave::Create(ks, {.cpus = m.topology().all_cpus()});
  PolicyOptions o{.name = "shinjuku"};
  o.hints = "/no/such/table";
  absl::StatusOr<std::unique_ptr<Policy>> p = MakePolicy(o, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("hint table /no/such/table"), std::string::npos)
      << p.status();
  o.hints.clear();
  o.fast_path = PolicyOptions::FastPath::kOn;  // its rings would break the classes' order
  p = MakePolicy(o, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--fast-path=on does not apply"), std::string::npos)
      << p.status();
  // Sharing and a hint table are Shinjuku's: another policy refuses them.
  PolicyOptions fifo{.name = "fifo-centralized"};
  fifo.batch_below = 2;
  p = MakePolicy(fifo, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--batch-below is --policy=shinjuku's sharing"),
            std::string::npos)
      << p.status();
  PolicyOptions edf{.name = "edf"};
  edf.batch_below = 1;  // sharing is Shinjuku's
  EXPECT_FALSE(MakePolicy(edf, *e).ok());
  edf.batch_below = 0;
  edf.fast_path = PolicyOptions::FastPath::kOn;
  p = MakePolicy(edf, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("edf places every thread by transaction"), std::string::npos)
      << p.status();
  fifo.batch_below = 0;
  fifo.hints = "/no/such/table";
  p = MakePolicy(fifo, *e);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--hints is read by"), std::string::npos) << p.status();
}

TEST(SimPolicyTest, CentralizedSliceCutsTheDispersiveTail) {
  // 0.5 % of requests take 10 ms; without a slice short ones queue behind them.
  // A spinning agent: a sleeping one preempts what runs on its CPU when it
  // wakes, which cuts the tail a little by itself.
  SimOptions o;
  o.load = 0.7;
  o.agent_sleep_us = 0;
  absl::StatusOr<SimReport> plain = RunSimulation(o);
  o.slice_us = 30;
  absl::StatusOr<SimReport> sliced = RunSimulation(o);
  ASSERT_TRUE(plain.ok() && sliced.ok());
  EXPECT_GT(plain->latency.p99_ns, 500'000u);
  EXPECT_LT(sliced->latency.p99_ns, 100'000u);
  // With the fast path (the default) every entry carries the slice (the
  // agent's pushes and the class's wake-up pushes alike): the run ends at it
  // without a transaction. Without it, the preemptions are transactions.
  o.fast_path = "off";
  absl::StatusOr<SimReport> txn = RunSimulation(o);
  ASSERT_TRUE(txn.ok());
  EXPECT_LT(txn->latency.p99_ns, 100'000u);
  EXPECT_GT(txn->txns, 0u);
}

TEST(SimPolicyTest, CpuSharesAddUp) {
  SimOptions o;
  o.machine = "flat8";
  o.workload = "antagonist";
  o.cfs_load = 0.2;
  o.duration = absl::Milliseconds(50);
  o.agent_sleep_us = 0;  // the agent holds its CPU all the time (below)
  absl::StatusOr<SimReport> r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->share_thread + r->share_cfs + r->share_agent + r->share_idle, 1.0, 1e-9);
  EXPECT_GT(r->share_batch, 0.1);  // the antagonists soak up what is left
  EXPECT_LE(r->share_batch, r->share_thread);
  EXPECT_NEAR(r->share_agent, 1.0 / 8, 1e-3);  // the global agent's CPU
}

std::string RunText(const SimOptions& o) {
  absl::StatusOr<SimReport> r = RunSimulation(o);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  return *FormatReport(*r, "json");
}

TEST(SimDeterminismTest, SameSeedSameBytesDifferentSeedDifferent) {
  for (const char* policy : {"fifo-centralized", "fifo-per-cpu", "baseline-fair"}) {
    SimOptions o;
    o.policy = policy;
    o.machine = "flat8";
    o.duration = absl::Milliseconds(30);
    o.cfs_load = 0.1;
    const std::string a = RunText(o);
    const std::string b = RunText(o);
    EXPECT_EQ(a, b) << policy;
    o.seed = 2;
    EXPECT_NE(a, RunText(o)) << policy;
  }
}

TEST(SimDeterminismTest, TraceIsByteIdentical) {
  auto read = [](const std::string& p) {
    FILE* f = fopen(p.c_str(), "r");
    std::string s;
    char buf[4096];
    size_t n;
    while (f != nullptr && (n = fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    if (f != nullptr) fclose(f);
    return s;
  };
  SimOptions o;
  o.machine = "flat4";
  o.duration = absl::Milliseconds(5);
  o.trace = "/tmp/sim_trace_test_a.json";
  RunText(o);
  o.trace = "/tmp/sim_trace_test_b.json";
  RunText(o);
  const std::string a = read("/tmp/sim_trace_test_a.json");
  EXPECT_GT(a.size(), 1000u);
  EXPECT_EQ(a, read("/tmp/sim_trace_test_b.json"));
  EXPECT_EQ(a.substr(0, 16), "{\"displayTimeUni");
  EXPECT_EQ(a.substr(a.size() - 4), "\n]}\n");
  remove("/tmp/sim_trace_test_a.json");
  remove("/tmp/sim_trace_test_b.json");
}

// Erlang C: mean wait in queue of M/M/c with offered load a = lambda/mu.
double ErlangCWaitNs(int c, double rho, double mean_service_ns) {
  const double a = c * rho;
  double term = 1, sum = 0;
  for (int k = 0; k < c; k++) {
    sum += term;
    term *= a / (k + 1);
  }
  const double top = term * c / (c - a);  // a^c/c! * c/(c-a)
  const double pw = top / (sum + top);
  return pw * mean_service_ns / (c - a);
}

void CheckErlang(const std::string& policy, const std::string& machine, double rho,
                 absl::Duration duration) {
  SimOptions o;
  o.policy = policy;
  o.machine = machine;
  o.costs = "zero";
  o.service = "exponential";
  o.service_us = 10;
  o.load = rho;
  o.workers = 200;
  o.duration = duration;
  o.agent_sleep_us = 0;  // c = 4 servers: a sleeping agent's CPU would be a fifth, at times
  absl::StatusOr<SimReport> r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->worker_cpus, 4);
  const double want = ErlangCWaitNs(4, rho, 10'000);
  EXPECT_NEAR(r->wait.mean_ns / want, 1.0, 0.05)
      << policy << " rho=" << rho << " measured " << r->wait.mean_ns << " ns, Erlang C "
      << want << " ns over " << r->wait.count << " requests";
}

TEST(SimErlangCTest, CentralizedFifoMatchesMMcAt50And80Percent) {
  CheckErlang("fifo-centralized", "flat5", 0.5, absl::Seconds(2));
  CheckErlang("fifo-centralized", "flat5", 0.8, absl::Seconds(4));
}

TEST(SimErlangCTest, BaselineFifoMatchesMMc) {
  CheckErlang("baseline-fifo", "flat4", 0.8, absl::Seconds(4));
}

TEST(SimOptionsTest, BadInputIsOneClearError) {
  auto bad = [](auto mutate, const char* needle) {
    SimOptions o;
    mutate(o);
    absl::Status s = ValidateSimOptions(o);
    EXPECT_FALSE(s.ok()) << needle;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
  };
  bad([](SimOptions& o) { o.machine = "vax"; }, "unknown machine 'vax'");
  bad([](SimOptions& o) { o.machine = "flat0"; }, "CPU count");
  bad([](SimOptions& o) { o.workload = "bogus"; }, "unknown workload 'bogus'");
  bad([](SimOptions& o) { o.policy = "lottery"; }, "unknown policy 'lottery'");
  bad([](SimOptions& o) { o.load = -0.5; }, "load");
  bad([](SimOptions& o) { o.load = 1e9; }, "load");
  bad([](SimOptions& o) { o.load = NAN; }, "load");
  bad([](SimOptions& o) { o.duration = absl::ZeroDuration(); }, "duration");
  bad([](SimOptions& o) { o.cpus = "0-40"; }, "--cpus");
  bad([](SimOptions& o) { o.cfs_load = 1.0; }, "CFS load");
  bad([](SimOptions& o) { o.batch_below = 1; }, "--batch-below is --policy=shinjuku's sharing");
  bad([](SimOptions& o) { o.policy = "shinjuku", o.batch_below = -1; }, "not a QoS class");
  bad([](SimOptions& o) { o.worker_qos = 1; }, "--worker-qos makes a hint table");
  bad([](SimOptions& o) { o.policy = "shinjuku", o.worker_qos = -2; }, "not a QoS class");
  bad([](SimOptions& o) { o.policy = "shinjuku", o.worker_qos = 1, o.hints = "/x"; },
      "not with --hints");
  bad([](SimOptions& o) { o.policy = "edf", o.deadline_factor = 10; }, "it needs --worker-qos");
  bad([](SimOptions& o) { o.policy = "edf", o.worker_qos = 1, o.deadline_factor = -1; },
      "--deadline-factor=-1 is out of range");
  EXPECT_TRUE(ValidateSimOptions(SimOptions{}).ok());
}

}  // namespace
}  // namespace sim
}  // namespace ghost
