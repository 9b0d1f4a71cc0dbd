// What the FIFO policies know about one thread, learnt from its messages
// (ghOSt's Task): seqnum, status word, runnable / on-CPU, affinity, and
// where the policy has put it.
#ifndef GHOST_SCX_USERSPACE_POLICIES_FIFO_TASK_H_
#define GHOST_SCX_USERSPACE_POLICIES_FIFO_TASK_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "userspace/cpu_list.h"
#include "userspace/kernel_side.h"
#include "userspace/message.h"
#include "userspace/policy.h"
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "userspace/status_word.h"

namespace ghost {

struct FifoTask {
  Tid tid = GHOST_TID_NONE;
  uint64_t seq = 0;                  // seqnum of the newest message about it
  // Seqnum of its TASK_NEW: a message older than that is about an earlier
  // life (it left the class and came back; seqnums go on across lives).
  uint64_t life_seq = 0;
  uint32_t sw_index = UINT32_MAX;    // TASK_NEW's status word, if seen
  uint32_t pid = 0;                  // TASK_NEW's: the kernel's thread id (0: not seen)
  bool runnable = false;
  int on_cpu = -1;                   // CPU it runs on (a commit of ours started it)
  int inflight_cpu = -1;             // CPU whose transaction targets it
  bool left_while_inflight = false;  // an off-CPU message came while in flight
  // A message asked to queue it while in flight (front or back): if the result
  // says it came and went, it is queued then.
  bool requeue_front = false;
  bool queued = false;               // in a runqueue
  CpuList affinity = CpuList::FirstN(GHOST_MAX_CPUS);  // until AFFINITY_CHANGED
  // CPUs a commit found NOT_ALLOWED since the newest message about it: the
  // kernel side knew better (a migration-disabled thread may run only where
  // it is, a mask change is on its way). Forgotten at the next message, so a
  // passing refusal never hides a CPU for good.
  CpuList refused;
  // Per-CPU FIFO: CPU whose runqueue holds it (-1: waiting to be placed) and
  // the queue its messages go to.
  int owner = -1;
  QueueId queue = GHOST_QUEUE_NONE;
  // Per-CPU FIFO: runnable, and queued on its one CPU by the class itself
  // (its status word said GHOST_SW_CLASS_HELD at the newest message's
  // seqnum): in no runqueue of ours and never committed, until a message
  // about it says otherwise.
  bool class_held = false;
  // Centralized FIFO: we preempted it because its slice ran out.
  bool slice_preempted = false;
  // Not to be committed before this time (0: any time): after a commit found
  // it RUNNING_ELSEWHERE while its status word says it is not on a CPU (the
  // kernel side is moving it), retrying at once would only spin.
  uint64_t not_before_ns = 0;
  // Centralized FIFO's fast path: the thread's entry in a node's ring whose
  // outcome we have not reaped (ring_node -1: none). ring_seq is the seqnum
  // we pushed; ring_left: an off-CPU message came since (so it ran);
  // ring_revoke_lost: a consumer claimed it before our revoke.
  int ring_node = -1;
  uint64_t ring_pos = 0;
  uint64_t ring_seq = 0;
  uint64_t ring_push_ns = 0;  // when it was pushed (the policy's clock)
  bool ring_left = false;
  bool ring_revoke_lost = false;
  int last_cpu = -1;  // where it last ran (node preference)
  // Its class (PolicyOptions::rank; higher runs first) and its order within
  // it (lowest first): its deadline (EDF, Shinjuku) as last read when queued
  // and every millisecond while it waits or runs, or its runtime over its
  // weight when queued (PolicyOptions::least_runtime_first). The runqueue's
  // order; the class is what a slice's end or a waiting thread compares with.
  uint32_t qos = 0;
  uint64_t order_ns = ThreadRank::kNoDeadline;
  // From its messages: CPU time so far and sched_ext weight (100: nice 0).
  uint64_t runtime_ns = 0;
  uint32_t weight = 100;
  uint64_t queued_ns = 0;  // the policy's clock when it last joined the runqueue
  uint64_t woke_ns = 0;  // the policy's clock when it last became runnable (new or woken)
  // Diagnostics: its last transaction's result, and failures since it last
  // committed.
  uint32_t last_result = GHOST_TXN_COMMITTED;
  uint32_t failed_commits = 0;

  // Diagnostics: the last few things the policy learnt or did about it,
  // oldest first in Describe(), so a watchdog move names its own cause.
  enum class Event : uint8_t { kMessage, kCommit, kResult, kHandOver };
  // In a kMessage entry's `what`: the message said the class holds it.
  static constexpr uint16_t kHeldBit = 0x8000;
  struct Entry {
    Event event = Event::kMessage;
    uint16_t what = 0;  // message type, or transaction result
    int16_t cpu = -1;   // message's CPU, or the transaction's target
    uint64_t seq = 0;   // message seqnum, or the seqnum the commit carried
  };
  static constexpr size_t kHistory = 12;
  std::array<Entry, kHistory> history{};
  uint32_t history_len = 0;
  void Note(Event event, uint32_t what, int cpu, uint64_t seq) {
    history[history_len++ % kHistory] = {.event = event,
                                         .what = static_cast<uint16_t>(what),
                                         .cpu = static_cast<int16_t>(cpu),
                                         .seq = seq};
  }

  // One line for diagnostics: the fields above that decide where it goes.
  std::string Describe() const {
    return absl::StrFormat(
        "tid=%d seq=%u runnable=%d on_cpu=%d inflight_cpu=%d queued=%d owner=%d queue=%d "
        "affinity=%s refused=%s ring_node=%d ring_pos=%u ring_seq=%u last_result=%u "
        "failed_commits=%u class_held=%d pid=%u qos=%u order=%d",
        tid, seq, runnable, on_cpu, inflight_cpu, queued, owner, queue, affinity.ToString(),
        refused.ToString(), ring_node, ring_pos, ring_seq, last_result, failed_commits,
        class_held, pid, qos,
        order_ns == ThreadRank::kNoDeadline ? -1 : static_cast<int64_t>(order_ns)) +
           History();
  }
  // " history: msg 3/41@1 commit 1/41 result 1@1 ...": msg type/seq@cpu
  // ("(held)": class-held), commit cpu/seq, result code@cpu, handed (to the
  // class) cpu/seq.
  std::string History() const {
    std::string out = " history:";
    const uint32_t n = std::min<uint32_t>(history_len, kHistory);
    for (uint32_t i = history_len - n; i < history_len; ++i) {
      const Entry& e = history[i % kHistory];
      switch (e.event) {
        case Event::kMessage:
          absl::StrAppendFormat(&out, " msg %u/%u@%d%s", e.what & ~kHeldBit, e.seq, e.cpu,
                                (e.what & kHeldBit) != 0 ? "(held)" : "");
          break;
        case Event::kHandOver:
          absl::StrAppendFormat(&out, " handed %d/%u", e.cpu, e.seq);
          break;
        case Event::kCommit:
          absl::StrAppendFormat(&out, " commit %d/%u", e.cpu, e.seq);
          break;
        case Event::kResult:
          absl::StrAppendFormat(&out, " result %u@%d", e.what, e.cpu);
          break;
      }
    }
    return out;
  }

  // Waiting for a CPU: runnable and neither running, being committed nor
  // in a ring.
  bool Waiting() const {
    return runnable && on_cpu < 0 && inflight_cpu < 0 && ring_node < 0;
  }
  bool AllowedOn(int cpu) const { return affinity.IsSet(cpu) && !refused.IsSet(cpu); }
  // The CPUs of `among` a commit may try now.
  CpuList Allowed(const CpuList& among) const {
    CpuList out = affinity & among;
    for (int cpu : (out & refused).ToVector()) out.Clear(cpu);
    return out;
  }
  // A commit to `cpu` failed NOT_ALLOWED and no message about the thread was
  // newer: the kernel's constraint differs from the last mask it told us,
  // and no message may follow. `cpu` is refused until the next message,
  // unless that leaves none of `usable`: then nothing is refused and the
  // thread is tried again from `retry_at_ns` (a stress-ng affinity thread
  // allowed one CPU, refused there once, waited 5 s for the class's
  // watchdog). Returns whether `cpu` was refused.
  bool RefuseAfterNotAllowed(int cpu, const CpuList& usable, uint64_t retry_at_ns) {
    refused.Set(cpu);
    if (!Allowed(usable).Empty()) return true;
    refused = CpuList();
    not_before_ns = retry_at_ns;
    return false;
  }
};

// Back-off after RUNNING_ELSEWHERE for a thread that is not on a CPU.
inline constexpr uint64_t kElsewhereBackoffNs = 100'000;
// Back-off after NOT_ALLOWED on the last CPU a thread may use as we know it.
inline constexpr uint64_t kNotAllowedBackoffNs = 1'000'000;

// True when the kernel side says `cpu`, which the agent believes a higher
// class holds, is free again (KernelSide::CpuBusy): its CPU_AVAILABLE is on
// its way, or was lost with an overflowing queue, and then nothing else would
// ever clear the agent's flag and no thread would be placed there again.
inline bool CpuFreeAgain(const KernelSide& kernel, int cpu) {
  const std::optional<bool> busy = kernel.CpuBusy(cpu);
  return busy.has_value() && !*busy;
}

// `t`'s status word, if it is readable and still `t`'s.
inline std::optional<StatusWordSnapshot> OwnStatusWord(const KernelSide& kernel,
                                                       const FifoTask& t) {
  if (t.sw_index >= GHOST_MAX_THREADS) return std::nullopt;
  absl::StatusOr<StatusWordSnapshot> sw = ReadStatusWord(kernel.StatusWords()[t.sw_index]);
  if (!sw.ok() || sw->tid != t.tid) return std::nullopt;
  return *sw;
}

// The CPU `t`'s status word says it runs on, or -1 (not on a CPU, or the word
// is unreadable or no longer `t`'s). `*since_ns`: when it got there.
inline int StatusWordCpu(const KernelSide& kernel, const FifoTask& t,
                         uint64_t* since_ns = nullptr) {
  const std::optional<StatusWordSnapshot> sw = OwnStatusWord(kernel, t);
  if (!sw.has_value() || !sw->on_cpu()) return -1;
  if (since_ns != nullptr) *since_ns = sw->switch_time_ns;
  return sw->cpu;
}

// The same, but only from the word at exactly `seqnum` (-1 if it has moved
// on: newer messages will tell).
inline int StatusWordCpuAt(const KernelSide& kernel, const FifoTask& t, uint64_t seqnum) {
  const std::optional<StatusWordSnapshot> sw = OwnStatusWord(kernel, t);
  if (!sw.has_value() || sw->seqnum != seqnum || !sw->on_cpu()) return -1;
  return static_cast<int>(sw->cpu);
}

// Tasks by tid. References stay valid until Erase (unordered_map nodes).
class FifoTaskTable {
 public:
  // Finds or creates the task a task message is about, and records the
  // message's seqnum and TASK_NEW's payload. A thread first seen through a
  // message other than TASK_NEW (an agent that started late) is created too.
  // `*created` tells whether the table did not know the thread.
  FifoTask& Update(const Message& m, bool* created = nullptr) {
    auto [it, inserted] = tasks_.try_emplace(m.tid());
    FifoTask& t = it->second;
    if (inserted) t.tid = m.tid();
    if (created != nullptr) *created = inserted;
    t.seq = std::max(t.seq, m.seqnum());
    t.refused = CpuList();
    t.Note(FifoTask::Event::kMessage, m.type() | (m.class_held() ? FifoTask::kHeldBit : 0),
           static_cast<int>(m.cpu()), m.seqnum());
    const ghost_msg& raw = m.raw();
    switch (m.type()) {
      case GHOST_MSG_TASK_NEW:
        t.life_seq = m.seqnum();
        t.sw_index = raw.task_new.sw_index;
        t.pid = raw.task_new.pid;
        t.runnable = raw.task_new.runnable != 0;
        t.runtime_ns = raw.task_new.runtime_ns;
        t.weight = raw.task_new.weight;
        // A new life: what held for the earlier one (its mask) does not.
        t.affinity = CpuList::FirstN(GHOST_MAX_CPUS);
        break;
      case GHOST_MSG_TASK_AFFINITY_CHANGED:
        t.affinity = CpuList::FromMask(raw.affinity.cpus);
        break;
      case GHOST_MSG_TASK_PRIORITY_CHANGED:
        t.weight = raw.priority.weight;
        break;
      case GHOST_MSG_TASK_BLOCKED:
      case GHOST_MSG_TASK_PREEMPT:
      case GHOST_MSG_TASK_YIELD:
        t.runtime_ns = std::max<uint64_t>(t.runtime_ns, raw.off_cpu.runtime_ns);
        break;
      default:
        break;
    }
    return t;
  }
  // A DEAD/DEPARTED older than what we know of the thread ends an earlier life
  // of it: it left the class and came back (a newer TASK_NEW, read first from
  // another queue). Seqnums go on across lives, so the older message is told
  // apart; forgetting the thread on it would leave the new life unplaced.
  bool EndsAnEarlierLife(const Message& m) const {
    const FifoTask* t = Find(m.tid());
    return t != nullptr && m.seqnum() < t->seq;
  }
  // Any other message of an earlier life read after the new life's TASK_NEW
  // (the earlier life's queue is read by another agent): it says nothing
  // about the thread now. A BLOCKED of it would make the new life wait for
  // a WAKEUP that never comes.
  bool FromEarlierLife(const Message& m) const {
    const FifoTask* t = Find(m.tid());
    return t != nullptr && m.type() != GHOST_MSG_TASK_NEW && m.seqnum() < t->life_seq;
  }
  FifoTask* Find(Tid tid) {
    auto it = tasks_.find(tid);
    return it == tasks_.end() ? nullptr : &it->second;
  }
  const FifoTask* Find(Tid tid) const {
    auto it = tasks_.find(tid);
    return it == tasks_.end() ? nullptr : &it->second;
  }
  // Forgets the thread (its DEAD or DEPARTED was read). What the table knew
  // then (its history included) is kept for the most recent kForgottenKept
  // threads: a report about the thread read later (a watchdog move the agent
  // learns of after the thread died) still shows what the policy saw.
  void Erase(Tid tid) {
    auto it = tasks_.find(tid);
    if (it == tasks_.end()) return;
    if (forgotten_order_.size() >= kForgottenKept) {
      forgotten_.erase(forgotten_order_.front());
      forgotten_order_.pop_front();
    }
    if (forgotten_.insert_or_assign(tid, it->second).second) forgotten_order_.push_back(tid);
    tasks_.erase(it);
  }
  size_t size() const { return tasks_.size(); }
  // For a tid the table does not hold: why, in a few words.
  std::string WhyUnknown(Tid tid) const {
    auto it = forgotten_.find(tid);
    if (it == forgotten_.end()) return "unknown to the policy (no message about it read)";
    return "unknown to the policy (forgotten at its DEAD/DEPARTED; then: " +
           it->second.Describe() + ")";
  }

  // What a policy knows about `tid` once a transaction on it has ended.
  struct Settled {
    FifoTask* task = nullptr;  // nullptr: forgotten meanwhile
    bool newer = false;        // messages came after the commit was judged
    bool left = false;         // it left the CPU while the commit was in flight,
                               // or the commit was made in an earlier life
  };
  // Clears the task's in-flight state. `judged_seq` is the seqnum the commit
  // carried: messages about it that came after it beat what the commit saw.
  // `result` and `cpu` go into the thread's history.
  Settled SettleInflight(Tid tid, uint64_t judged_seq, uint32_t result, int cpu) {
    Settled s;
    s.task = Find(tid);
    if (s.task == nullptr) return s;
    s.task->Note(FifoTask::Event::kResult, result, cpu, judged_seq);
    s.newer = s.task->seq != judged_seq;
    // A commit made in an earlier life says nothing about this one: if it ran
    // the thread, that life left the CPU (its DEPARTED, read late, is ignored).
    s.left = s.task->left_while_inflight || judged_seq < s.task->life_seq;
    s.task->inflight_cpu = -1;
    s.task->left_while_inflight = false;
    return s;
  }

 private:
  static constexpr size_t kForgottenKept = 4096;
  std::unordered_map<Tid, FifoTask> tasks_;
  std::unordered_map<Tid, FifoTask> forgotten_;  // as it was when forgotten
  std::deque<Tid> forgotten_order_;              // oldest first
};

// Pinned threads' hand-over, as both FIFOs make it: offers `batch` (threads
// that wait for `cpu` alone, oldest first) to the class (KernelSide::HandOver)
// and returns those it took, marked class-held (their messages say so until
// one without the flag). A refused one stays the caller's, committed as
// before. `*supported` turns false for good when the kernel side has no
// hand-over (the simulator). Counts into `*handed` and `*refused`.
inline std::vector<FifoTask*> HandOverToClass(KernelSide& kernel, FifoTaskTable& tasks, int cpu,
                                              absl::Span<KernelSide::HandOverEntry> batch,
                                              bool* supported, uint64_t* handed,
                                              uint64_t* refused) {
  std::vector<FifoTask*> taken;
  if (batch.empty()) return taken;
  const absl::Status s = kernel.HandOver(cpu, batch);
  if (absl::IsUnimplemented(s)) *supported = false;
  if (!s.ok()) return taken;
  for (const KernelSide::HandOverEntry& e : batch) {
    FifoTask* t = tasks.Find(e.tid);
    if (t == nullptr) continue;
    if (e.result != GHOST_TXN_COMMITTED) {
      ++*refused;  // old state (a newer message is on its way), or moving
      continue;
    }
    ++*handed;
    t->class_held = true;
    t->Note(FifoTask::Event::kHandOver, 0, cpu, e.seqnum);
    taken.push_back(t);
  }
  return taken;
}

// Waiting threads in order: by QoS class, highest first, then by order
// (a deadline or a weighted runtime), lowest first (FifoTask::qos and
// order_ns as they were when queued), and first come first served among
// equals; a task is in at most one. With one class and no order (the FIFOs)
// it is a plain FIFO.
class FifoRunqueue {
 public:
  // Behind every thread of its class with the same or a lower order (and
  // every aged one, PushAged).
  void PushBack(FifoTask& t) {
    if (t.queued) return;
    // ranks_ is sorted: aged ones first, then class down, then order up.
    auto pos = std::partition_point(ranks_.begin(), ranks_.end(), [&](const Rank& r) {
      return r.aged || r.qos > t.qos || (r.qos == t.qos && r.order_ns <= t.order_ns);
    });
    Insert(pos - ranks_.begin(), t);
  }
  // Ahead of every thread not pushed so, behind those that were: one that
  // has waited too long for its order (FifoCentralizedScheduler::
  // AgeRuntimeOrder), first aged first served.
  void PushAged(FifoTask& t) {
    if (t.queued) return;
    auto pos = std::partition_point(ranks_.begin(), ranks_.end(),
                                    [](const Rank& r) { return r.aged; });
    Insert(pos - ranks_.begin(), t, /*aged=*/true);
  }
  // Ahead of every thread of its class with the same or a higher order (it
  // keeps its turn), behind the aged ones.
  void PushFront(FifoTask& t) {
    if (t.queued) return;
    auto pos = std::partition_point(ranks_.begin(), ranks_.end(), [&](const Rank& r) {
      return r.aged || r.qos > t.qos || (r.qos == t.qos && r.order_ns < t.order_ns);
    });
    Insert(pos - ranks_.begin(), t);
  }
  void Remove(FifoTask& t) {
    if (!t.queued) return;
    RemoveTid(t.tid);
    t.queued = false;
  }
  // Removes a tid whose task is gone.
  void RemoveTid(Tid tid) {
    auto it = std::find(q_.begin(), q_.end(), tid);
    if (it == q_.end()) return;
    ranks_.erase(ranks_.begin() + (it - q_.begin()));
    q_.erase(it);
  }
  bool Empty() const { return q_.empty(); }
  size_t Size() const { return q_.size(); }
  const std::deque<Tid>& tids() const { return q_; }
  // The class of the thread at the head (0 when empty).
  uint32_t HeadQos() const { return ranks_.empty() ? 0 : ranks_.front().qos; }
  // Whether the thread at `i` (of tids()) went in by PushAged.
  bool Aged(size_t i) const { return i < ranks_.size() && ranks_[i].aged; }

 private:
  void Insert(ptrdiff_t at, FifoTask& t, bool aged = false) {
    q_.insert(q_.begin() + at, t.tid);
    ranks_.insert(ranks_.begin() + at, Rank{.qos = t.qos, .order_ns = t.order_ns, .aged = aged});
    t.queued = true;
  }
  struct Rank {
    uint32_t qos = 0;
    uint64_t order_ns = 0;
    bool aged = false;
  };
  std::deque<Tid> q_;
  std::deque<Rank> ranks_;  // q_[i]'s when queued
};

}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_POLICIES_FIFO_TASK_H_
