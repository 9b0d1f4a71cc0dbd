#include "userspace/sim/workload.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ghost {
namespace sim {

double ServiceDist::Mean() const {
  if (kind == kDispersive) {
    return (1 - long_fraction) * static_cast<double>(short_ns) +
           long_fraction * static_cast<double>(long_ns);
  }
  return static_cast<double>(mean_ns);
}

uint64_t ServiceDist::Sample(Rng& rng) const {
  switch (kind) {
    case kDispersive:
      return rng.Uniform() < long_fraction ? long_ns : short_ns;
    case kExponential:
      return rng.ExponentialNs(static_cast<double>(mean_ns));
    case kFixed:
      return mean_ns;
  }
  return mean_ns;
}

LatencySummary Summarize(std::vector<uint64_t>& v) {
  LatencySummary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  long double sum = 0;
  for (uint64_t x : v) sum += x;
  s.mean_ns = static_cast<double>(sum / v.size());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.p50_ns = pct(0.5);
  s.p99_ns = pct(0.99);
  s.p999_ns = pct(0.999);
  s.max_ns = v.back();
  return s;
}

namespace {

// RPC requests served by a pool of workers; optionally with batch threads.
class RpcWorkload : public SimWorkload {
 public:
  using SimWorkload::SimWorkload;

  void Start(Machine& m) override {
    for (int i = 0; i < opts_.workers; i++) {
      const int t = spawn_(kWorkerThread, static_cast<uint32_t>(i), false, 0);
      workers_.push_back({t, 0, 0, false});
      idle_.push_back(i);
    }
    for (int i = 0; i < opts_.batch_threads; i++) {
      spawn_(kBatchThread, static_cast<uint32_t>(i), true, opts_.batch_burst_ns);
    }
    mean_gap_ns_ = opts_.arrival_rate > 0 ? 1e9 / opts_.arrival_rate : 0;
    if (mean_gap_ns_ > 0) {
      m.Schedule(m.now() + rng_.ExponentialNs(mean_gap_ns_), Machine::kWorkloadEvent, 0, 0);
    }
    backlog_.reserve(1024);
  }

  void OnEvent(Machine& m, const Event& e) override {
    const Request r{m.now(), opts_.service.Sample(rng_)};
    m.Schedule(m.now() + rng_.ExponentialNs(mean_gap_ns_), Machine::kWorkloadEvent, 0, 0);
    if (idle_head_ < idle_.size()) {
      const int w = idle_[idle_head_++];
      if (idle_head_ == idle_.size()) {
        idle_.clear();
        idle_head_ = 0;
      }
      Assign(m, w, r);
      m.Wake(workers_[w].thread, -1);
    } else {
      backlog_.push_back(r);  // every worker busy: the app's own FIFO
    }
  }

  Next OnBurstEnd(Machine& m, int t) override {
    const SimThread& th = m.thread(t);
    if (th.kind == kBatchThread) {
      m.SetBurst(t, opts_.batch_burst_ns);
      return Next::kYield;
    }
    Worker& w = workers_[th.owner];
    if (w.arrival_ns >= opts_.warmup_ns) {
      latency_.push_back(m.now() - w.arrival_ns);
      completed_++;
      if (opts_.deadline_factor > 0 && m.now() > w.deadline_ns) missed_++;
    }
    if (backlog_head_ < backlog_.size()) {
      const Request r = backlog_[backlog_head_++];
      if (backlog_head_ == backlog_.size()) {
        backlog_.clear();
        backlog_head_ = 0;
      }
      Assign(m, static_cast<int>(th.owner), r);
      OnRun(m, t);  // it is on a CPU already: served from now
      return Next::kContinue;
    }
    idle_.push_back(static_cast<int>(th.owner));
    return Next::kBlock;
  }

  void OnRun(Machine& m, int t) override {
    const SimThread& th = m.thread(t);
    if (th.kind != kWorkerThread) return;
    Worker& w = workers_[th.owner];
    if (!w.started) {
      w.started = true;
      if (w.arrival_ns >= opts_.warmup_ns) wait_.push_back(m.now() - w.arrival_ns);
    }
  }

 private:
  struct Request {
    uint64_t arrival_ns;
    uint64_t service_ns;
  };
  struct Worker {
    int thread;
    uint64_t arrival_ns;
    uint64_t service_ns;
    bool started;
    uint64_t deadline_ns = 0;
  };
  void Assign(Machine& m, int w, const Request& r) {
    workers_[w].arrival_ns = r.arrival_ns;
    workers_[w].service_ns = r.service_ns;
    workers_[w].started = false;
    if (opts_.deadline_factor > 0) {
      workers_[w].deadline_ns =
          r.arrival_ns + static_cast<uint64_t>(opts_.deadline_factor * r.service_ns);
      if (opts_.set_deadline) opts_.set_deadline(workers_[w].thread, workers_[w].deadline_ns);
    }
    m.SetBurst(workers_[w].thread, r.service_ns);
  }

  double mean_gap_ns_ = 0;
  std::vector<Worker> workers_;
  std::vector<int> idle_;  // FIFO of idle workers
  size_t idle_head_ = 0;
  std::vector<Request> backlog_;
  size_t backlog_head_ = 0;
};

// Pairs of threads waking each other: A works, wakes B, sleeps; B likewise.
// Latency: wake-up to first run.
class PingPongWorkload : public SimWorkload {
 public:
  using SimWorkload::SimWorkload;

  void Start(Machine& m) override {
    for (int p = 0; p < opts_.pairs; p++) {
      const int a = spawn_(kPingPongThread, static_cast<uint32_t>(2 * p), true,
                           opts_.pingpong_work_ns);
      const int b = spawn_(kPingPongThread, static_cast<uint32_t>(2 * p + 1), false,
                           opts_.pingpong_work_ns);
      threads_.push_back(a);
      threads_.push_back(b);
    }
  }
  void OnEvent(Machine& m, const Event& e) override {}
  Next OnBurstEnd(Machine& m, int t) override {
    const SimThread& th = m.thread(t);
    const int partner = threads_[th.owner ^ 1];
    m.SetBurst(partner, opts_.pingpong_work_ns);
    m.Wake(partner, th.cpu);
    return Next::kBlock;
  }
  void OnRun(Machine& m, int t) override {
    const SimThread& th = m.thread(t);
    if (th.woken_ns >= opts_.warmup_ns && m.now() >= th.woken_ns) {
      latency_.push_back(m.now() - th.woken_ns);
      wait_.push_back(m.now() - th.woken_ns);
      completed_++;
    }
  }

 private:
  std::vector<int> threads_;
};

}  // namespace

std::vector<std::string> WorkloadNames() { return {"dispersive", "antagonist", "pingpong"}; }

absl::StatusOr<std::unique_ptr<SimWorkload>> SimWorkload::Create(const WorkloadOptions& opts,
                                                                 Spawner spawn, uint64_t seed) {
  if (opts.name == "dispersive" || opts.name == "antagonist") {
    if (opts.workers < 1) return absl::InvalidArgumentError("the RPC load needs workers >= 1");
    return std::unique_ptr<SimWorkload>(new RpcWorkload(opts, std::move(spawn), seed));
  }
  if (opts.name == "pingpong") {
    if (opts.pairs < 1) return absl::InvalidArgumentError("pingpong needs pairs >= 1");
    return std::unique_ptr<SimWorkload>(new PingPongWorkload(opts, std::move(spawn), seed));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown workload '", opts.name, "' (known: ",
                                                 absl::StrJoin(WorkloadNames(), ", "), ")"));
}

}  // namespace sim
}  // namespace ghost
