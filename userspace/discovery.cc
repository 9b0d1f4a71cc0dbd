#include "userspace/discovery.h"

#include <errno.h>
#include <sched.h>

#include <cstring>

#include "userspace/agent.h"
#include "userspace/message.h"

namespace ghost {

std::vector<DiscoveredThread> DiscoverThreads(const ghost_status_word* words, size_t n,
                                              EnclaveId enclave) {
  std::vector<DiscoveredThread> out;
  for (size_t i = 0; i < n; i++) {
    // Unlocked peek first: most words are free.
    if (!(__atomic_load_n(&words[i].flags, __ATOMIC_RELAXED) & GHOST_SW_INUSE)) continue;
    absl::StatusOr<StatusWordSnapshot> sw = ReadStatusWord(words[i]);
    if (!sw.ok() || !sw->in_use() || sw->dead() || sw->tid == GHOST_TID_NONE) continue;
    if (sw->enclave != enclave) continue;
    out.push_back({.sw_index = static_cast<uint32_t>(i), .word = *sw});
  }
  return out;
}

ghost_msg DiscoveryMessage(const DiscoveredThread& t) {
  ghost_msg m;
  memset(&m, 0, sizeof(m));
  m.type = GHOST_MSG_TASK_NEW;
  m.size = sizeof(ghost_msg);
  m.cpu = t.word.cpu < 0 ? ~0u : static_cast<uint32_t>(t.word.cpu);
  m.tid = t.word.tid;
  m.seqnum = t.word.seqnum;
  m.time_ns = t.word.switch_time_ns;
  m.task_new.pid = t.word.pid;
  m.task_new.sw_index = t.sw_index;
  m.task_new.weight = 100;  // not in the word; PRIORITY_CHANGED corrects it
  m.task_new.runnable = t.word.runnable() ? 1 : 0;
  m.task_new.runtime_ns = t.word.runtime_ns;
  return m;
}

TakeOverResult TakeOverThreads(KernelSide& kernel, Enclave& enclave, Policy& policy,
                               const std::function<void()>& drain_previous) {
  TakeOverResult r;
  Agent* target = policy.agents().empty() ? nullptr : policy.agents()[0];
  for (Agent* a : policy.agents()) {
    if (a->queue() == enclave.default_queue()) target = a;
  }
  if (target == nullptr) return r;
  for (const DiscoveredThread& seen :
       DiscoverThreads(kernel.StatusWords(), GHOST_MAX_THREADS, enclave.id())) {
    absl::Status s = kernel.AssociateQueue(seen.word.tid, enclave.default_queue());
    for (int retry = 0; absl::IsFailedPrecondition(s) && retry < 10; retry++) {
      if (retry == 0) r.retried++;
      if (drain_previous) drain_previous();
      s = kernel.AssociateQueue(seen.word.tid, enclave.default_queue());
    }
    if (absl::IsNotFound(s)) {
      r.gone++;
      continue;
    }
    if (!s.ok()) {
      r.missed++;
      continue;
    }
    // The word again, after the association: what changed before it was lost
    // with the old queue; what changes after it arrives as messages.
    std::vector<DiscoveredThread> now =
        DiscoverThreads(kernel.StatusWords() + seen.sw_index, 1, enclave.id());
    if (now.empty() || now[0].word.tid != seen.word.tid) {
      r.gone++;
      continue;
    }
    now[0].sw_index = seen.sw_index;
    target->scheduler().DispatchMessage(Message(DiscoveryMessage(now[0])));
    r.taken++;
  }
  return r;
}

int ReturnToFairClass(const ghost_status_word* words, EnclaveId enclave) {
  int moved = 0;
  for (int pass = 0; pass < 100; pass++) {
    std::vector<DiscoveredThread> left = DiscoverThreads(words, GHOST_MAX_THREADS, enclave);
    if (left.empty()) break;
    for (const DiscoveredThread& t : left) {
      // Leaving the class ends its status word (DEPARTED) before this returns.
      sched_param p = {.sched_priority = 0};
      if (sched_setscheduler(static_cast<pid_t>(t.word.pid), SCHED_OTHER, &p) == 0) moved++;
    }
  }
  return moved;
}

}  // namespace ghost
