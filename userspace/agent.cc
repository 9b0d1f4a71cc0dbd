#include "userspace/agent.h"

#include <time.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "userspace/message.h"

namespace ghost {
namespace {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Agent threads refresh the enclave's heartbeat this often (the class takes
// an agent as gone after at least 500 ms of silence: enclaves.bpf.h).
constexpr uint64_t kHeartbeatEveryNs = 20'000'000;

}  // namespace

Agent::Agent(KernelSide& kernel, Scheduler& sched, const AgentOptions& opts)
    : kernel_(kernel), sched_(sched), opts_(opts), channel_(kernel, opts.queue) {}

size_t Agent::RunOnce() {
  size_t n = 0;
  if (channel_.valid()) {
    // Barrier before draining: anything produced after this load is unseen,
    // and a commit carrying this barrier must fail as AGENT_STALE.
    barrier_ = channel_.barrier();
    n = channel_.Consume([this](const Message& m) {
      const size_t slot = std::min<size_t>(m.type(), kTypeSlots - 1);
      ++by_type_[slot];
      if (m.class_held()) ++held_by_type_[slot];
      sched_.DispatchMessage(m);
    });
  }
  messages_ += n;
  ++rounds_;
  sched_.Schedule(*this);
  return n;
}

void Agent::Run(const std::atomic<bool>& stop) {
  // An earlier agent killed while it slept may have left its mark.
  if (opts_.global) kernel_.SetAgentAsleep(opts_.cpu, false);
  uint64_t last = MonotonicNs();
  while (!stop.load(std::memory_order_acquire)) {
    yield_requested_ = false;
    const size_t n = RunOnce();
    if (has_posted_.load(std::memory_order_acquire)) RunPosted();
    const uint64_t now = MonotonicNs();
    longest_stall_ns_ = std::max(longest_stall_ns_, now - last);
    if (now - last_heartbeat_ns_ >= kHeartbeatEveryNs && channel_.valid()) {
      kernel_.AgentHeartbeat(opts_.queue);
      last_heartbeat_ns_ = now;
    }
    if (kernel_.TakeYieldRequest(opts_.cpu)) {
      // The kernel side has a thread that can run only here: give it the
      // CPU for the whole moment, whatever messages come meanwhile.
      ++kernel_yields_;
      StepAside(/*on_message=*/false);
    } else if (yield_requested_) {
      ++policy_yields_;
      StepAside(/*on_message=*/true);
    } else if (opts_.global) {
      if (n == 0) {
        const absl::Duration d = IdleSleep();
        if (d > absl::ZeroDuration()) SleepIdle(d);
      }
    } else if (n == 0 && channel_.valid()) {
      // A timeout or an interrupted wait is not an error: just go round.
      ++waits_;
      (void)Wait(sched_.Pending(*this) ? opts_.wait_timeout : opts_.idle_wait_timeout);
    }
    last = MonotonicNs();
  }
}

std::string Agent::MessagesByType() const {
  std::string out;
  for (size_t type = 0; type < kTypeSlots; ++type) {
    if (by_type_[type] == 0) continue;
    absl::StrAppend(&out, out.empty() ? "" : " ", MessageTypeName(static_cast<uint16_t>(type)), "=",
                    by_type_[type]);
    if (held_by_type_[type] != 0) absl::StrAppend(&out, " (held ", held_by_type_[type], ")");
  }
  return out;
}

void Agent::RunBetweenRounds(std::function<void()> fn) {
  {
    absl::MutexLock l(&posted_mu_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_release);
  }
  Wake();
}

void Agent::RunPosted() {
  std::vector<std::function<void()>> run;
  {
    absl::MutexLock l(&posted_mu_);
    run.swap(posted_);
    has_posted_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : run) fn();
}

void Agent::StepAside(bool on_message) {
  if (!on_message || !channel_.valid()) {
    // Only another agent's Wake() ends this early.
    (void)wakeup_.Wait(-1, opts_.yield_for);
    return;
  }
  // A global agent's queue does not wake it (it polls): ask for wake-ups
  // while it sleeps. A message that came before the flag was set is caught
  // by Wait()'s barrier check.
  if (opts_.global) (void)kernel_.ConfigQueueWakeup(opts_.queue, opts_.cpu, true);
  (void)Wait(opts_.yield_for);
  if (opts_.global) (void)kernel_.ConfigQueueWakeup(opts_.queue, opts_.cpu, false);
}

absl::Duration Agent::IdleSleep() {
  if (!opts_.global || opts_.idle_sleep <= absl::ZeroDuration() || !channel_.valid()) {
    return absl::ZeroDuration();
  }
  return std::min(opts_.idle_sleep, sched_.IdleFor(*this));
}

void Agent::SleepIdle(absl::Duration d) {
  ++idle_sleeps_;
  // Asleep first, so that a message produced from here on wakes us (the
  // wake-ups are on) or is caught by Wait()'s barrier check.
  kernel_.SetAgentAsleep(opts_.cpu, true);
  (void)kernel_.ConfigQueueWakeup(opts_.queue, opts_.cpu, true);
  (void)Wait(d);
  (void)kernel_.ConfigQueueWakeup(opts_.queue, opts_.cpu, false);
  kernel_.SetAgentAsleep(opts_.cpu, false);
}

absl::Status Agent::Wait(absl::Duration timeout) {
  const int queue_fd = channel_.valid() ? channel_.fd() : -1;
  if (channel_.valid() && channel_.barrier() != barrier_) return absl::OkStatus();
  // Without a pollable queue only the kernel side can wait for it (the
  // simulator, fakes): wake-ups then come at its timeout.
  if (wakeup_.valid() && (queue_fd >= 0 || !channel_.valid())) {
    return wakeup_.Wait(queue_fd, timeout);
  }
  if (!channel_.valid()) return absl::FailedPreconditionError("agent has no queue");
  return channel_.Wait(timeout);
}

}  // namespace ghost
