// ghost_queues: queues of the BPF class.
//  - ASSOCIATE_QUEUE fails while the thread's old queue still holds messages
//    about it, succeeds once drained, and later messages go to the new queue;
//  - a full queue counts what it drops (queue word and class info), and the
//    thread's seqnum still moves (the status word says so);
//  - a queue configured to wake its agent wakes a blocked WaitQueue.
// Needs 2 CPUs: the agent on CPU 0, the enclave is CPU 1.
#include <sched.h>

#include <thread>

#include "tests/vm/test_agent.h"

using namespace ghost_test;

int main() {
  Failures f;
  cpu_set_t cpu0, cpu1;
  CPU_ZERO(&cpu0);
  CPU_SET(0, &cpu0);
  CPU_ZERO(&cpu1);
  CPU_SET(1, &cpu1);
  sched_setaffinity(0, sizeof(cpu0), &cpu0);
  if (!EnterFifo()) std::printf("note: agent not SCHED_FIFO\n");
  auto setup = Setup::Create(ghost::CpuList({1}), /*watchdog_ms=*/4000);
  if (!setup) return 1;
  auto& ks = *setup->ks;
  const ghost::QueueId q1 = setup->queue;
  auto q2 = ks.CreateQueue({.enclave = setup->enclave, .wake_agent = false});
  auto q3 = ks.CreateQueue({.enclave = setup->enclave, .ring_bytes = 4096, .wake_agent = false});
  if (!q2.ok() || !q3.ok()) {
    std::printf("FAIL: creating queues\n");
    return 1;
  }

  std::atomic<bool> go{false}, phase2{false}, quit{false};
  std::atomic<int> wpid{0}, naps{0};
  std::thread worker([&] {
    sched_setaffinity(0, sizeof(cpu1), &cpu1);
    wpid = Gettid();
    while (!go.load()) SleepUs(100);
    EnterSchedExt();
    while (!phase2.load()) SleepUs(2000);
    for (int i = 0; i < 150 && !quit.load(); i++) {
      SleepUs(300);
      naps++;
    }
  });
  while (wpid.load() == 0) SleepUs(100);
  if (auto s = ks.EnrollPid(wpid, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));
  go = true;

  // Find the thread through the status words (without reading its queue).
  const ghost_status_word* sw = nullptr;
  int64_t end = NowNs() + 3'000'000'000LL;
  while (NowNs() < end && sw == nullptr) {
    for (int i = 0; i < GHOST_MAX_THREADS; i++) {
      const ghost_status_word& w = ks.StatusWords()[i];
      if ((w.flags & GHOST_SW_INUSE) && !(w.flags & GHOST_SW_DEAD) &&
          w.pid == static_cast<uint32_t>(wpid.load())) {
        sw = &w;
      }
    }
    SleepUs(1000);
  }
  if (sw == nullptr) {
    f.Fail("the worker's status word never appeared");
    quit = true;
    phase2 = true;
    worker.join();
    return 1;
  }
  const uint64_t tid = sw->tid;
  f.Check(sw->queue == q1, absl::StrFormat("the thread reports to the default queue %u", q1));

  absl::Status s = ks.AssociateQueue(tid, *q2);
  f.Check(absl::IsFailedPrecondition(s),
          absl::StrFormat("ASSOCIATE_QUEUE while queue %u holds its messages is refused: %s", q1,
                          s.ToString()));
  TestAgent a1(ks, q1, {});
  a1.Drain();
  const size_t q1_before = a1.Log().size();
  s = ks.AssociateQueue(tid, *q2);
  f.Check(s.ok(), absl::StrFormat("after draining, ASSOCIATE_QUEUE succeeds: %s", s.ToString()));
  f.Check(absl::IsInvalidArgument(ks.AssociateQueue(tid, 63)),
          "ASSOCIATE_QUEUE to a queue that does not exist is refused");
  f.Check(absl::IsNotFound(ks.AssociateQueue(0x7fffffff, *q2)),
          "ASSOCIATE_QUEUE of an unknown thread is refused");

  // Run it (status-word agent: commit whenever it is runnable and off CPU),
  // so it produces messages; they must arrive in q2 only.
  auto place = [&] {
    uint32_t flags = __atomic_load_n(&sw->flags, __ATOMIC_ACQUIRE);
    if ((flags & GHOST_SW_RUNNABLE) && !(flags & GHOST_SW_ON_CPU)) {
      ghost_txn t = {};
      t.tid = tid;
      t.task_seqnum = __atomic_load_n(&sw->seqnum, __ATOMIC_ACQUIRE);
      t.flags = GHOST_TXN_F_NO_BARRIER;
      if (OpenTxn(ks, 1, t)) {
        (void)ks.Commit(ghost::CpuList({1}));
        WaitTxn(ks, 1, absl::Seconds(1));
      }
    }
  };
  TestAgent a2(ks, *q2, {});
  end = NowNs() + 1'000'000'000LL;
  while (NowNs() < end) {
    place();
    SleepUs(300);
  }
  a1.Drain();
  a2.Drain();
  size_t in_q1 = 0, in_q2 = 0;
  const auto log1 = a1.Log();
  for (size_t i = q1_before; i < log1.size(); i++) in_q1 += log1[i].tid == tid;
  for (const ghost_msg& m : a2.Log()) in_q2 += m.tid == tid;
  f.Check(in_q1 == 0 && in_q2 > 0,
          absl::StrFormat("later messages go to the new queue (%u there, %u in the old)", in_q2,
                          in_q1));

  // Overflow: a 4 KiB queue nobody reads.
  // The thread keeps producing into q2 meanwhile: drain and retry, as an
  // agent does on FailedPrecondition.
  for (int i = 0; i < 100; i++) {
    a2.Drain();
    s = ks.AssociateQueue(tid, *q3);
    if (!absl::IsFailedPrecondition(s)) break;
  }
  f.Check(s.ok(), absl::StrFormat("associate with the small queue: %s", s.ToString()));
  const uint64_t dropped_before = ks.ClassInfo().msgs_dropped;
  const uint64_t seq_before = sw->seqnum;
  phase2 = true;
  end = NowNs() + 20'000'000'000LL;
  while (NowNs() < end && naps.load() < 150) {
    place();
    SleepUs(200);
  }
  quit = true;
  const ghost_queue_word& w3 = ks.QueueWord(*q3);
  const uint64_t seq_moved = sw->seqnum - seq_before;
  f.Check(w3.dropped > 0 && ks.ClassInfo().msgs_dropped - dropped_before == w3.dropped,
          absl::StrFormat("a full queue counts its drops (%u in the queue word, %u in class info)",
                          w3.dropped, ks.ClassInfo().msgs_dropped - dropped_before));
  f.Check(w3.barrier + w3.dropped == seq_moved,
          absl::StrFormat("every message is delivered or counted: %u delivered + %u dropped == "
                          "%u seqnum steps", w3.barrier, w3.dropped, seq_moved));

  for (int i = 0; i < 200 && naps.load() < 150; i++) {
    place();
    SleepUs(1000);
  }
  worker.join();
  // Wake-ups: a blocked reader of a queue that asks for them is woken (by a
  // CPU timer's message: the queue whose wake_cpu is 1 gets CPU 1's messages).
  TestAgent a3(ks, *q3, {});
  SleepUs(50'000);
  a3.Drain();  // the worker is gone: nothing else reports to q3
  f.Check(ks.ConfigQueueWakeup(*q3, 1, true).ok(), "CONFIG_QUEUE_WAKEUP (CPU 1, wake the agent)");
  std::atomic<bool> woke{false};
  std::atomic<int64_t> waited_ns{0};
  std::thread waiter([&] {
    int64_t t0 = NowNs();
    woke = ks.WaitQueue(*q3, absl::Seconds(30)).ok();
    waited_ns = NowNs() - t0;
  });
  SleepUs(100'000);
  f.Check(ks.ArmCpuTimer(1, absl::Milliseconds(10), 7).ok(), "arm a CPU 1 timer");
  waiter.join();
  f.Check(woke.load() && waited_ns.load() < 15'000'000'000LL,
          absl::StrFormat("a blocked WaitQueue was woken by the message (after %d ms, limit 30 s)",
                          waited_ns.load() / 1000000));
  bool timer_msg = false;
  for (int i = 0; i < 100 && !timer_msg; i++) {
    a3.Drain();
    for (const ghost_msg& m : a3.Log()) timer_msg |= m.type == GHOST_MSG_CPU_TIMER_EXPIRED;
    SleepUs(10'000);
  }
  f.Check(timer_msg, "the timer's CPU_TIMER_EXPIRED went to the queue that names CPU 1");
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
