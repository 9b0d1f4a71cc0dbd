// ghost_status_words: the two promises a status word makes, checked against a
// class loaded with widened race windows (race_window_iters: between a status
// word's seqnum and the rest of its fields, and between the word and its
// message), so that a broken order or seqlock shows within seconds.
//  1. Published before its message: when the agent reads message N about a
//     thread, the thread's word already says N or later.
//  2. Its seqlock: every consistent copy a reader gets (ReadStatusWord) is one
//     the class wrote whole: a word at seqnum N says "runnable" exactly when
//     message N left the thread runnable (WAKEUP, PREEMPT, YIELD: yes;
//     BLOCKED: no). A reader sampling the word all the time checks every copy
//     against the message log at the end.
// Needs 3 CPUs: the agent and the sampler on CPU 0, the enclave is 1-2.
#include <atomic>
#include <map>
#include <vector>

#include "tests/vm/test_agent.h"
#include "userspace/message.h"

using namespace ghost_test;

namespace {

// Whether message `type` leaves the thread runnable; -1: says nothing.
int RunnableAfter(uint16_t type) {
  switch (type) {
    case GHOST_MSG_TASK_WAKEUP:
    case GHOST_MSG_TASK_PREEMPT:
    case GHOST_MSG_TASK_YIELD:
      return 1;
    case GHOST_MSG_TASK_BLOCKED:
      return 0;
    default:
      return -1;
  }
}

struct Sample {
  uint64_t seqnum;
  bool runnable;
};

}  // namespace

int main() {
  Failures f;
  if (!HaveCpus(3)) return 1;
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1, 2}), .race_window_iters = 3000});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  TestAgent agent(ks, setup->queue, {1, 2});

  std::atomic<uint64_t> tid{0};
  std::atomic<uint32_t> sw_index{UINT32_MAX};
  int early = 0, checked = 0;
  agent.on_message = [&](const ghost_msg& m) {
    if (m.type == GHOST_MSG_TASK_NEW) {
      tid = m.tid;
      sw_index = m.task_new.sw_index;
    }
    if (m.tid != tid || sw_index >= GHOST_MAX_THREADS || m.type == GHOST_MSG_TASK_DEAD) return;
    auto snap = ghost::ReadStatusWord(ks.StatusWords()[sw_index]);
    if (!snap.ok() || snap->tid != m.tid) return;
    ++checked;
    if (snap->seqnum < m.seqnum && early++ == 0) {
      std::printf("note: message %s seqnum %llu read while the word said %llu\n",
                  ghost::MessageTypeName(m.type), static_cast<unsigned long long>(m.seqnum),
                  static_cast<unsigned long long>(snap->seqnum));
    }
  };

  constexpr int kCycles = 400;
  std::atomic<bool> done{false};
  SpinningWorker w;
  w.Start(CpuSet({1, 2}), [&](SpinningWorker&) {
    for (int i = 0; i < kCycles; i++) {
      SpinCpuNs(100'000);
      SleepUs(200);  // BLOCKED, then WAKEUP
    }
    done = true;
  });
  if (auto s = w.Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));

  // The sampler: consistent copies of the word, as fast as it can read.
  std::atomic<bool> stop{false};
  std::vector<Sample> samples;
  std::thread sampler = StartCfsThread(CpuSet({0}), [&] {
    while (!stop.load()) {
      const uint32_t idx = sw_index.load();
      if (idx < GHOST_MAX_THREADS) {
        auto snap = ghost::ReadStatusWord(ks.StatusWords()[idx]);
        if (snap.ok() && snap->tid == tid && snap->in_use() && !snap->dead()) {
          if (samples.empty() || samples.back().seqnum != snap->seqnum ||
              samples.back().runnable != snap->runnable()) {
            samples.push_back({snap->seqnum, snap->runnable()});
          }
        }
      }
    }
  });
  std::atomic<bool> agent_stop{false};
  std::thread loop([&] { agent.Loop(agent_stop, 300); });
  const bool finished = WaitUntil([&] { return done.load(); }, absl::Seconds(120), 10'000);
  stop = true;
  sampler.join();
  agent_stop = true;
  loop.join();
  f.Check(finished, absl::StrFormat("the worker ran its %d sleep cycles", kCycles));

  f.Check(checked > 2 * kCycles / 2,
          absl::StrFormat("the agent compared %d messages with the word", checked));
  f.Check(early == 0, absl::StrFormat("no message was readable before its status word (%d were)",
                                      early));
  std::map<uint64_t, int> runnable_at;  // seqnum -> what its message says
  for (const ghost_msg& m : agent.MessagesOf(tid)) runnable_at[m.seqnum] = RunnableAfter(m.type);
  int torn = 0, compared = 0;
  for (const Sample& s : samples) {
    auto it = runnable_at.find(s.seqnum);
    if (it == runnable_at.end() || it->second < 0) continue;
    ++compared;
    if (static_cast<int>(s.runnable) != it->second && torn++ == 0) {
      std::printf("note: a copy at seqnum %llu says runnable=%d, its message says %d\n",
                  static_cast<unsigned long long>(s.seqnum), s.runnable, it->second);
    }
  }
  f.Check(compared > 100, absl::StrFormat("the sampler's copies (%d compared of %zu) cover the run",
                                          compared, samples.size()));
  f.Check(torn == 0, absl::StrFormat("every consistent copy was a whole word (%d torn)", torn));
  w.Join();
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
