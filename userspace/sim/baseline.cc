#include "userspace/sim/baseline.h"

#include <algorithm>
#include <queue>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ghost {
namespace sim {

BaselineClass::BaselineClass(Machine& machine, const CpuList& cpus, uint64_t switch_ns)
    : machine_(machine), cpus_(cpus), cpu_vec_(cpus.ToVector()), switch_ns_(switch_ns) {
  machine_.SetClass(this);
}

void BaselineClass::Kick() {
  for (int c : cpu_vec_) {
    if (!HasWaiting()) return;
    if (machine_.IsFree(c)) RunNext(c);
  }
}

namespace {

class FifoBaseline : public BaselineClass {
 public:
  using BaselineClass::BaselineClass;
  void ThreadNew(int t) override {
    if (machine_.thread(t).state == ThreadState::kRunnable) Push(t, false);
  }
  void ThreadRunnable(int t, int waker_cpu) override { Push(t, false); }
  void ThreadStopped(int t, int cpu, StopReason why) override {
    // Displaced by CFS: it keeps its turn (non-preemptive FIFO).
    if (why == StopReason::kPreempted) Push(t, true);
    if (why == StopReason::kYield) Push(t, false);
  }

 private:
  void Push(int t, bool front) {
    if (front) {
      if (head_ > 0) {
        q_[--head_] = t;
      } else {
        q_.insert(q_.begin(), t);
      }
    } else {
      q_.push_back(t);
    }
    Kick();
  }
  bool HasWaiting() const override { return head_ < q_.size(); }
  void RunNext(int cpu) override {
    if (head_ >= q_.size()) return;
    const int t = q_[head_++];
    if (head_ == q_.size()) {
      q_.clear();
      head_ = 0;
    } else if (head_ >= 4096 && head_ * 2 >= q_.size()) {
      q_.erase(q_.begin(), q_.begin() + static_cast<long>(head_));
      head_ = 0;
    }
    machine_.RunThread(cpu, t, 0, switch_ns_);
  }
  std::vector<int> q_;
  size_t head_ = 0;
};

class FairBaseline : public BaselineClass {
 public:
  static constexpr uint64_t kLatencyNs = 6'000'000;
  static constexpr uint64_t kMinGranularityNs = 750'000;
  using BaselineClass::BaselineClass;

  void ThreadNew(int t) override {
    vruntime_.resize(t + 1, min_vruntime_);
    vruntime_[t] = min_vruntime_;
    if (machine_.thread(t).state == ThreadState::kRunnable) Push(t);
  }
  void ThreadRunnable(int t, int waker_cpu) override {
    // Sleepers get at most half a latency of credit (CFS's place_entity).
    vruntime_[t] = std::max(vruntime_[t], min_vruntime_ - std::min(min_vruntime_, kLatencyNs / 2));
    Push(t);
  }
  void ThreadStopped(int t, int cpu, StopReason why) override {
    vruntime_[t] += machine_.now() - started_[cpu];
    running_--;
    if (why == StopReason::kPreempted || why == StopReason::kYield) Push(t);
  }
  void ThreadStarted(int t, int cpu) override {
    if (started_.size() < static_cast<size_t>(machine_.num_cpus())) {
      started_.resize(machine_.num_cpus(), 0);
    }
    started_[cpu] = machine_.now();
    running_++;
  }

 private:
  struct Entry {
    uint64_t vruntime;
    uint64_t seq;
    int t;
    bool operator>(const Entry& o) const {
      return vruntime != o.vruntime ? vruntime > o.vruntime : seq > o.seq;
    }
  };
  void Push(int t) {
    heap_.push({vruntime_[t], seq_++, t});
    Kick();
  }
  bool HasWaiting() const override { return !heap_.empty(); }
  void RunNext(int cpu) override {
    if (heap_.empty()) return;
    const Entry e = heap_.top();
    heap_.pop();
    min_vruntime_ = std::max(min_vruntime_, e.vruntime);
    const uint64_t nr = heap_.size() + running_ + 1;
    const uint64_t per_cpu = std::max<uint64_t>(1, nr / std::max<size_t>(1, cpu_vec_.size()));
    // Alone on its share of CPUs: no slice needed until someone waits.
    const uint64_t slice =
        heap_.empty() ? kLatencyNs : std::max(kMinGranularityNs, kLatencyNs / per_cpu);
    machine_.RunThread(cpu, e.t, slice, switch_ns_);
  }
  std::vector<uint64_t> vruntime_;
  std::vector<uint64_t> started_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  uint64_t min_vruntime_ = 0;
  uint64_t seq_ = 0;
  size_t running_ = 0;
};

}  // namespace

std::vector<std::string> BaselineClass::Names() { return {"baseline-fifo", "baseline-fair"}; }

bool BaselineClass::IsBaseline(const std::string& name) {
  return name == "baseline-fifo" || name == "baseline-fair";
}

absl::StatusOr<std::unique_ptr<BaselineClass>> BaselineClass::Create(const std::string& name,
                                                                     Machine& machine,
                                                                     const CpuList& cpus,
                                                                     uint64_t switch_ns) {
  if (cpus.Empty()) return absl::InvalidArgumentError("baseline needs CPUs");
  if (name == "baseline-fifo") {
    return std::unique_ptr<BaselineClass>(new FifoBaseline(machine, cpus, switch_ns));
  }
  if (name == "baseline-fair") {
    return std::unique_ptr<BaselineClass>(new FairBaseline(machine, cpus, switch_ns));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown baseline '", name, "' (known: ",
                                                 absl::StrJoin(Names(), ", "), ")"));
}

}  // namespace sim
}  // namespace ghost
