// ghost_queues: queues of the BPF class.
//  - ASSOCIATE_QUEUE fails while the thread's old queue still holds messages
//    about it, succeeds once drained, and later messages go to the new queue;
//  - a queue destroyed with a thread's messages unread, its slot reused,
//    does not block that thread's next ASSOCIATE_QUEUE; a thread whose queue
//    is destroyed reports to its enclave's default queue;
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
  BecomeAgent(0);
  auto setup = Setup::Create({.cpus = ghost::CpuList({1})});
  if (!setup) return 1;
  auto& ks = *setup->ks;
  const ghost::QueueId q1 = setup->queue;
  auto q2 = ks.CreateQueue({.enclave = setup->enclave, .wake_agent = false});
  auto q3 = ks.CreateQueue({.enclave = setup->enclave, .ring_bytes = 4096, .wake_agent = false});
  if (!q2.ok() || !q3.ok()) {
    std::printf("FAIL: creating queues\n");
    return 1;
  }

  std::atomic<bool> phase2{false};
  std::atomic<int> naps{0};
  SpinningWorker worker;
  worker.Start(CpuSet({1}), [&](SpinningWorker& self) {
    while (!phase2.load()) SleepUs(2000);
    for (int i = 0; i < 150 && !self.quitting(); i++) {
      SleepUs(300);
      naps++;
    }
  });
  if (auto s = worker.Enroll(ks, setup->enclave); !s.ok()) f.Fail(std::string(s.message()));

  // Find the thread through the status words (without reading its queue).
  const ghost_status_word* sw = nullptr;
  WaitUntil(
      [&] {
        for (int i = 0; i < GHOST_MAX_THREADS; i++) {
          const ghost_status_word& w = ks.StatusWords()[i];
          if ((w.flags & GHOST_SW_INUSE) && !(w.flags & GHOST_SW_DEAD) &&
              w.pid == static_cast<uint32_t>(worker.pid())) {
            sw = &w;
          }
        }
        return sw != nullptr;
      },
      absl::Seconds(10), 1000);
  if (sw == nullptr) {
    f.Fail("the worker's status word never appeared");
    phase2 = true;
    return 1;
  }
  const uint64_t tid = sw->tid;
  f.Check(sw->queue == q1, absl::StrFormat("the thread reports to the default queue %u", q1));

  absl::Status s = ks.AssociateQueue(tid, *q2);
  f.Check(absl::IsFailedPrecondition(s),
          absl::StrFormat("ASSOCIATE_QUEUE while queue %u holds its messages is refused: %s", q1,
                          s.ToString()));
  // Nothing places the thread yet, but on a loaded host the class's fallback
  // may run it (fallback.bpf.h), and it sends a message between a drain and
  // the ASSOCIATE (a CI run): drain and retry, as an agent does.
  TestAgent a1(ks, q1, {});
  for (int i = 0; i < 100; i++) {
    a1.Drain();
    s = ks.AssociateQueue(tid, *q2);
    if (!absl::IsFailedPrecondition(s)) break;
  }
  const size_t q1_before = a1.Log().size();
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
  // ASSOCIATE_QUEUE to `q` while the thread keeps producing: drain its old
  // queues and retry on FailedPrecondition, as an agent does.
  auto associate_draining = [&](ghost::QueueId q) {
    absl::Status st;
    for (int i = 0; i < 100; i++) {
      a1.Drain();
      a2.Drain();
      st = ks.AssociateQueue(tid, q);
      if (!absl::IsFailedPrecondition(st)) break;
    }
    return st;
  };
  // The seqnum of the thread's last message its old queues held.
  auto last_seq_read = [&] {
    uint64_t seq = 0;
    for (TestAgent* a : {&a1, &a2}) {
      a->Drain();
      for (const ghost_msg& m : a->MessagesOf(tid)) seq = std::max<uint64_t>(seq, m.seqnum);
    }
    return seq;
  };
  size_t in_q1 = 0, in_q2 = 0;
  WaitUntil(
      [&] {
        place();
        a1.Drain();
        a2.Drain();
        in_q1 = in_q2 = 0;
        const auto log1 = a1.Log();
        for (size_t i = q1_before; i < log1.size(); i++) in_q1 += log1[i].tid == tid;
        for (const ghost_msg& m : a2.Log()) in_q2 += m.tid == tid;
        return in_q2 >= 20;
      },
      absl::Seconds(20), 300);
  f.Check(in_q1 == 0 && in_q2 > 0,
          absl::StrFormat("later messages go to the new queue (%u there, %u in the old)", in_q2,
                          in_q1));

  // A queue destroyed with the thread's messages unread, its slot reused:
  // the ring that held them is gone, so ASSOCIATE_QUEUE must not compare
  // the thread's position in it with the new ring's (the slot's generation).
  // The thread must send nothing between the destroy and the ASSOCIATE: a
  // message then (on a loaded host a kernel thread on CPU 1 lets the class
  // run it, fallback.bpf.h) is unread in the default queue or the new ring,
  // and the refusal is right. Such an attempt proves nothing and is made
  // again; a refusal with the thread's seqnum unchanged fails.
  constexpr int kReuseAttempts = 3;
  bool unread = false, reused = false, undisturbed = false;
  uint64_t unread_msgs = 0, seq_floor = 0;
  ghost::QueueId reused_slot = 0;
  for (int attempt = 0; attempt < kReuseAttempts && !undisturbed; attempt++) {
    auto q4 = ks.CreateQueue({.enclave = setup->enclave, .wake_agent = false});
    const bool moved = q4.ok() && associate_draining(*q4).ok();
    // Messages into q4 that nobody reads, then no more: left unplaced, the
    // thread sends at most one WAKEUP and waits. Counted from the seqnum of
    // its last message read from the old queues (all of them were read, or
    // the ASSOCIATE would have been refused), not from the status word, which
    // is republished a moment after its message and may still show the one
    // before (a CI run read 5 messages in q4 for 6 seqnum steps that way).
    const uint64_t seq_q4 = std::max(last_seq_read(), seq_floor);
    WaitUntil(
        [&] {
          place();
          return sw->seqnum >= seq_q4 + 6;
        },
        absl::Seconds(20), 300);
    WaitUntil(
        [&] {
          const uint32_t fl = __atomic_load_n(&sw->flags, __ATOMIC_ACQUIRE);
          return (fl & GHOST_SW_RUNNABLE) && !(fl & GHOST_SW_ON_CPU);
        },
        absl::Seconds(10), 1000);
    unread_msgs = q4.ok() ? ks.QueueWord(*q4).barrier : 0;
    unread = moved && unread_msgs >= 6;
    reused = false;
    const uint64_t seq_before = __atomic_load_n(&sw->seqnum, __ATOMIC_ACQUIRE);
    absl::StatusOr<ghost::QueueId> q5 = absl::UnknownError("not created");
    if (unread && ks.DestroyQueue(*q4).ok()) {
      q5 = ks.CreateQueue({.enclave = setup->enclave, .wake_agent = false});
      reused = q5.ok() && *q5 == *q4;
      reused_slot = *q4;
    }
    if (!unread || !reused) break;  // the checks below fail
    s = ks.AssociateQueue(tid, *q2);
    undisturbed = s.ok() || __atomic_load_n(&sw->seqnum, __ATOMIC_ACQUIRE) == seq_before;
    if (undisturbed) break;
    std::printf("note: the thread sent a message between the destroy and the ASSOCIATE: "
                "again\n");
    // Read what it sent, wherever it went, and leave the slot.
    TestAgent a5(ks, *q5, {});
    for (int i = 0; i < 100 && !s.ok(); i++) {
      a1.Drain();
      a2.Drain();
      a5.Drain();
      s = ks.AssociateQueue(tid, *q2);
    }
    for (const ghost_msg& m : a5.MessagesOf(tid)) {
      seq_floor = std::max<uint64_t>(seq_floor, m.seqnum);
    }
    (void)ks.DestroyQueue(*q5);
  }
  f.Check(unread && reused,
          absl::StrFormat("the thread's queue %u, holding %u unread messages, was destroyed and "
                          "its slot reused",
                          reused_slot, unread_msgs));
  f.Check(undisturbed, "the reused-slot step had an attempt the thread did not disturb");
  f.Check(s.ok(), absl::StrFormat("ASSOCIATE_QUEUE away from the reused slot succeeds at once "
                                  "(its old ring is gone): %s",
                                  s.ToString()));

  // Its queue destroyed, the thread reports to its enclave's default queue
  // (not nowhere, and never to a queue of another enclave).
  auto q6 = ks.CreateQueue({.enclave = setup->enclave, .wake_agent = false});
  const bool on_q6 = q6.ok() && associate_draining(*q6).ok() && ks.DestroyQueue(*q6).ok();
  a1.Drain();
  const size_t q1_mark = a1.Log().size();
  const uint64_t drops_mark = ks.ClassInfo().msgs_dropped;
  size_t to_default = 0;
  WaitUntil(
      [&] {
        place();
        a1.Drain();
        to_default = 0;
        const auto log1 = a1.Log();
        for (size_t i = q1_mark; i < log1.size(); i++) to_default += log1[i].tid == tid;
        return to_default >= 3;
      },
      absl::Seconds(20), 300);
  f.Check(on_q6 && to_default >= 3 && ks.ClassInfo().msgs_dropped == drops_mark,
          absl::StrFormat("after its queue was destroyed, the thread's messages go to the "
                          "enclave's default queue (%u there, %u dropped)",
                          to_default, ks.ClassInfo().msgs_dropped - drops_mark));

  // Overflow: a 4 KiB queue nobody reads.
  s = associate_draining(*q3);
  f.Check(s.ok(), absl::StrFormat("associate with the small queue: %s", s.ToString()));
  const uint64_t dropped_before = ks.ClassInfo().msgs_dropped;
  // Its seqnum when it switched queues: that of its last message in the
  // queues it had before (q2, and q1 since q6 went).
  const uint64_t seq_before = last_seq_read();
  phase2 = true;
  WaitUntil(
      [&] {
        place();
        return naps.load() >= 150;
      },
      absl::Seconds(60));
  worker.Quit();
  WaitUntil(
      [&] {
        place();
        return worker.done();
      },
      absl::Seconds(30));
  worker.Join();
  // Its last message (DEAD) may have been dropped; its status word says it.
  f.Check(WaitUntil([&] { return (__atomic_load_n(&sw->flags, __ATOMIC_ACQUIRE) &
                                  GHOST_SW_DEAD) != 0; },
                    absl::Seconds(10)),
          "the worker's status word says DEAD");
  const ghost_queue_word& w3 = ks.QueueWord(*q3);
  const uint64_t seq_moved = sw->seqnum - seq_before;
  // The class publishes the word before it produces the message: the last
  // one (DEAD) is counted a moment after the word says DEAD, in the queue
  // word first and in class info just after.
  WaitUntil(
      [&] {
        return w3.barrier + w3.dropped >= seq_moved &&
               ks.ClassInfo().msgs_dropped - dropped_before == w3.dropped;
      },
      absl::Seconds(10));
  f.Check(w3.dropped > 0 && ks.ClassInfo().msgs_dropped - dropped_before == w3.dropped,
          absl::StrFormat("a full queue counts its drops (%u in the queue word, %u in class info)",
                          w3.dropped, ks.ClassInfo().msgs_dropped - dropped_before));
  // ASSOCIATE_QUEUE is exact: nothing of the thread reaches the old queue
  // after it succeeded (the queue handshake, messages.bpf.h).
  uint64_t late_in_old = 0;
  for (TestAgent* a : {&a1, &a2}) {
    a->Drain();
    for (const ghost_msg& m : a->MessagesOf(tid)) late_in_old += m.seqnum > seq_before;
  }
  f.Check(late_in_old == 0,
          absl::StrFormat("no message reached the old queues after the ASSOCIATE (%u did)",
                          late_in_old));
  f.Check(w3.barrier + w3.dropped == seq_moved,
          absl::StrFormat("every message is delivered or counted: %u delivered + %u dropped == "
                          "%u seqnum steps", w3.barrier, w3.dropped, seq_moved));

  // Wake-ups: a blocked reader of a queue that asks for them is woken (by a
  // CPU timer's message: the queue whose wake_cpu is 1 gets CPU 1's messages).
  // The worker is gone: nothing else reports to q3.
  TestAgent a3(ks, *q3, {});
  a3.Drain();
  f.Check(ks.ConfigQueueWakeup(*q3, 1, true).ok(), "CONFIG_QUEUE_WAKEUP (CPU 1, wake the agent)");
  std::atomic<bool> woke{false};
  std::atomic<int64_t> waited_ns{0};
  std::atomic<int> waiter_pid{0};
  std::thread waiter([&] {
    waiter_pid = Gettid();
    int64_t t0 = NowNs();
    woke = ks.WaitQueue(*q3, absl::Seconds(30)).ok();
    waited_ns = NowNs() - t0;
  });
  // The timer is armed once the reader is blocked in WaitQueue.
  WaitUntil([&] { return waiter_pid.load() != 0 && ProcState(waiter_pid) == 'S'; },
            absl::Seconds(10));
  f.Check(ks.ArmCpuTimer(1, absl::Milliseconds(10), 7).ok(), "arm a CPU 1 timer");
  waiter.join();
  f.Check(woke.load() && waited_ns.load() < 15'000'000'000LL,
          absl::StrFormat("a blocked WaitQueue was woken by the message (after %d ms, limit 30 s)",
                          waited_ns.load() / 1000000));
  f.Check(a3.WaitMessage(GHOST_TID_NONE, GHOST_MSG_CPU_TIMER_EXPIRED) >= 0, "the timer's CPU_TIMER_EXPIRED went to the queue that names CPU 1");
  CheckClassAlive(ks, f);
  return f.n == 0 ? 0 : 1;
}
