// Exhaustive interleavings of the ring protocol (kernel/ghost_ring_ops.h) for
// small rings, up to a bound on preemptions.
//
// Every shared access of the protocol (each load, store, publish and CAS) is a
// scheduling point: the actors (producers, consumers, the agent revoking and
// reaping) are threads that run one at a time, and a controller picks which
// one goes on at each point. The controller explores every schedule with at
// most `max_preemptions` switches away from an actor that could have gone on
// (switches at an actor's end are free), by depth-first search over the
// choices: each run replays a prefix and takes a new choice at its end
// (stateless model checking, as in CHESS). A bug needing few preemptions is
// found deterministically, however rarely two CPUs would meet in that window.
// After every schedule the ring is drained sequentially and the invariant is
// checked: every pushed entry ends exactly once (RAN, STALE or REVOKED, as
// its claimer or the revoke said), no entry is claimed twice, and the reaper
// learns each outcome once, in position order; a push that reported SKIPPED
// (consumers passed its position) was never claimed and its position ends
// ABANDONED.

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace ghost_ring_model {
void Point();
}  // namespace ghost_ring_model

// Before the header: this file's copies of the protocol stop at every access.
#define GHOST_RING_LOAD(p) (::ghost_ring_model::Point(), __atomic_load_n((p), __ATOMIC_SEQ_CST))
#define GHOST_RING_STORE(p, v) \
  (::ghost_ring_model::Point(), __atomic_store_n((p), (v), __ATOMIC_SEQ_CST))
#define GHOST_RING_PUBLISH(p, v) \
  (::ghost_ring_model::Point(), __atomic_store_n((p), (v), __ATOMIC_SEQ_CST))
#define GHOST_RING_CAS(p, old, new) \
  (::ghost_ring_model::Point(), __sync_val_compare_and_swap((p), (old), (new)))
#include "kernel/ghost_ring_ops.h"

namespace ghost_ring_model {
namespace {

// Runs actors one at a time. At each point the running actor itself asks
// `choose` who goes on and, if that is another actor, hands the turn over
// directly (one semaphore each): a schedule that keeps an actor running costs
// no thread switch.
class Scheduler {
 public:
  // Which actor this thread is (-1: not an actor, e.g. the sequential drain).
  static thread_local int self;
  static Scheduler* current;

  // Runs `actors` to their ends; `choose(enabled mask, last actor)` picks the
  // next one at each point.
  void Run(const std::vector<std::function<void()>>& actors,
           const std::function<int(uint32_t, int)>& choose) {
    const int n = static_cast<int>(actors.size());
    choose_ = &choose;
    enabled_ = n >= 32 ? ~0u : (1u << n) - 1;
    turns_.clear();
    for (int i = 0; i < n; ++i) turns_.push_back(std::make_unique<std::binary_semaphore>(0));
    current = this;
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([this, i, &actors] {
        self = i;
        turns_[i]->acquire();
        actors[i]();
        enabled_ &= ~(1u << i);
        if (enabled_ == 0) {
          finished_.release();
        } else {
          turns_[(*choose_)(enabled_, i)]->release();
        }
      });
    }
    turns_[choose(enabled_, -1)]->release();
    finished_.acquire();
    for (auto& t : threads) t.join();
    current = nullptr;
  }

  // From the running actor at a shared access.
  void Yield() {
    const int next = (*choose_)(enabled_, self);
    if (next == self) return;
    turns_[next]->release();
    turns_[self]->acquire();
  }

 private:
  const std::function<int(uint32_t, int)>* choose_ = nullptr;
  uint32_t enabled_ = 0;  // actors not ended; only the running actor touches it
  std::vector<std::unique_ptr<std::binary_semaphore>> turns_;
  std::binary_semaphore finished_{0};
};

thread_local int Scheduler::self = -1;
Scheduler* Scheduler::current = nullptr;

}  // namespace

void Point() {
  if (Scheduler::self >= 0 && Scheduler::current != nullptr) Scheduler::current->Yield();
}

namespace {

// Depth-first search over the choices, with a preemption bound.
class Explorer {
 public:
  explicit Explorer(int max_preemptions) : max_preemptions_(max_preemptions) {}

  // Calls `run(choose)` once per schedule; `run` must run the same actors from
  // the same start each time. Returns the number of schedules, or -1 if the
  // replay diverged (the actors are not deterministic) or `limit` was hit.
  int64_t Explore(const std::function<void(const std::function<int(uint32_t, int)>&)>& run,
                  int64_t limit) {
    steps_.clear();
    int64_t runs = 0;
    for (;;) {
      size_t at = 0;
      bool diverged = false;
      run([&](uint32_t enabled, int last) {
        if (at < steps_.size()) {
          Step& s = steps_[at++];
          if (s.enabled != enabled) diverged = true;
          return s.chosen;
        }
        const int base = steps_.empty() ? 0 : steps_.back().preemptions;
        const int chosen = (last >= 0 && (enabled >> last) & 1) ? last : __builtin_ctz(enabled);
        steps_.push_back({enabled, chosen, 1u << chosen, last, base});
        ++at;
        return chosen;
      });
      if (diverged || ++runs >= limit) return -1;
      if (!Backtrack()) return runs;
    }
  }

 private:
  struct Step {
    uint32_t enabled;
    int chosen;
    uint32_t tried;
    int last;         // the actor that ran before this point (-1: none)
    int preemptions;  // up to and including this choice
  };

  bool Backtrack() {
    while (!steps_.empty()) {
      Step& s = steps_.back();
      const int base = steps_.size() > 1 ? steps_[steps_.size() - 2].preemptions : 0;
      for (int c = 0; c < 32; ++c) {
        if (!((s.enabled >> c) & 1) || ((s.tried >> c) & 1)) continue;
        s.tried |= 1u << c;
        const bool preempt = s.last >= 0 && ((s.enabled >> s.last) & 1) && c != s.last;
        if (base + preempt > max_preemptions_) continue;
        s.chosen = c;
        s.preemptions = base + preempt;
        return true;
      }
      steps_.pop_back();
    }
    return false;
  }

  const int max_preemptions_;
  std::vector<Step> steps_;
};

constexpr uint32_t kDrainCpu = 99;

// One schedule's world: the ring and what each actor saw.
struct World {
  std::unique_ptr<ghost_ring> ring = std::make_unique<ghost_ring>();
  std::mutex mu;                      // the records below (written by actors)
  std::map<uint64_t, uint64_t> pushed;  // pos -> tid
  std::map<uint64_t, uint64_t> skipped;  // pos -> tid: pushes consumers passed
  std::vector<int> push_results;
  std::map<uint64_t, std::vector<uint32_t>> claims;  // pos -> claiming CPUs
  std::map<uint64_t, uint32_t> finished;             // pos -> RAN or STALE, by its claimer
  std::map<uint64_t, int> revokes;                   // pos -> last revoke result
  std::vector<ghost_ring_outcome> reaped;

  explicit World(uint32_t size) { ghost_ring_init(ring.get(), size, 0); }

  void Push(uint64_t tid) {
    __u64 pos = ~0ull;
    const int r = ghost_ring_push(ring.get(), tid, tid * 10, 0, 0, &pos);
    std::lock_guard<std::mutex> l(mu);
    push_results.push_back(r);
    if (r == GHOST_RING_PUSH_OK) pushed[pos] = tid;
    if (r == GHOST_RING_PUSH_SKIPPED) skipped[pos] = tid;
  }
  // Claims one entry; the consumer then runs it (RAN) or drops it (STALE).
  // now_ns: the consumer's clock (0: it never passes an unpublished position).
  bool Consume(uint32_t cpu, bool run, uint64_t now_ns = 0) {
    ghost_ring_entry e = {};
    if (ghost_ring_claim(ring.get(), cpu, now_ns, &e) != 1) return false;
    {
      std::lock_guard<std::mutex> l(mu);
      claims[e.pos].push_back(cpu);
    }
    const int r = run ? ghost_ring_complete(ring.get(), e.pos)
                      : ghost_ring_fail(ring.get(), e.pos, GHOST_RING_STALE_SEQNUM);
    std::lock_guard<std::mutex> l(mu);
    if (r == 0) finished[e.pos] = run ? GHOST_RING_RAN : GHOST_RING_STALE;
    return true;
  }
  void Revoke(uint64_t pos) {
    const int r = ghost_ring_revoke(ring.get(), pos);
    std::lock_guard<std::mutex> l(mu);
    revokes[pos] = r;
  }
  void Reap() {
    ghost_ring_outcome o = {};
    if (ghost_ring_reap(ring.get(), &o) == 1) {
      std::lock_guard<std::mutex> l(mu);
      reaped.push_back(o);
    }
  }

  // After the actors: run what is left, reap everything, and check. Returns
  // "" or what is wrong.
  std::string DrainAndCheck() {
    while (Consume(kDrainCpu, /*run=*/true)) {
    }
    for (int i = 0; i < 64; ++i) Reap();
    std::vector<std::string> bad;
    // Positions taken: 0..n-1 exactly, each by its own push (pushed or skipped).
    std::map<uint64_t, uint64_t> taken = pushed;
    for (const auto& [pos, tid] : skipped) {
      if (!taken.emplace(pos, tid).second) bad.push_back(absl::StrCat("position ", pos, " twice"));
    }
    uint64_t expect = 0;
    for (const auto& [pos, tid] : taken) {
      if (pos != expect++) bad.push_back(absl::StrCat("pushed positions not 0..n-1 at ", pos));
    }
    if (reaped.size() != taken.size()) {
      bad.push_back(absl::StrCat(pushed.size(), " pushed, ", skipped.size(), " skipped, ",
                                 reaped.size(), " reaped"));
    }
    if (GHOST_RING_LOAD(&ring->tail.skips) != skipped.size()) {
      bad.push_back(absl::StrCat(GHOST_RING_LOAD(&ring->tail.skips), " positions passed, ",
                                 skipped.size(), " pushes told so"));
    }
    for (size_t i = 0; i < reaped.size(); ++i) {
      const ghost_ring_outcome& o = reaped[i];
      if (o.pos != i) bad.push_back(absl::StrCat("reaped out of order: ", o.pos, " as #", i));
      if (skipped.count(o.pos)) {
        if (o.state != GHOST_RING_ABANDONED || claims.count(o.pos)) {
          bad.push_back(absl::StrCat("skipped push at ", o.pos, " ended ", o.state, ", claimed ",
                                     claims.count(o.pos)));
        }
        continue;
      }
      auto p = pushed.find(o.pos);
      if (p == pushed.end() || p->second != o.tid || o.seqnum != o.tid * 10) {
        bad.push_back(absl::StrCat("outcome of ", o.pos, " names tid ", o.tid));
        continue;
      }
      auto c = claims.find(o.pos);
      const size_t nclaims = c == claims.end() ? 0 : c->second.size();
      if (nclaims > 1) bad.push_back(absl::StrCat("position ", o.pos, " claimed ", nclaims, " times"));
      auto rv = revokes.find(o.pos);
      const bool revoke_won = rv != revokes.end() && rv->second == GHOST_RING_REVOKE_WON;
      const bool revoke_lost = rv != revokes.end() && rv->second == GHOST_RING_REVOKE_LOST;
      switch (o.state) {
        case GHOST_RING_REVOKED:
          if (!revoke_won || nclaims != 0) {
            bad.push_back(absl::StrCat("position ", o.pos, " REVOKED, revoke won=", revoke_won,
                                       ", claims ", nclaims));
          }
          break;
        case GHOST_RING_RAN:
        case GHOST_RING_STALE: {
          auto f = finished.find(o.pos);
          if (nclaims != 1 || f == finished.end() || f->second != o.state ||
              o.cpu != c->second[0] || revoke_won) {
            bad.push_back(absl::StrCat("position ", o.pos, " ended ", o.state, " on cpu ", o.cpu,
                                       ": claims ", nclaims, ", revoke won=", revoke_won));
          }
          if (o.state == GHOST_RING_STALE && o.reason != GHOST_RING_STALE_SEQNUM) {
            bad.push_back(absl::StrCat("position ", o.pos, " STALE for reason ", o.reason));
          }
          break;
        }
        default:
          bad.push_back(absl::StrCat("position ", o.pos, " reaped in state ", o.state));
      }
      // A revoke that lost was beaten by a consumer of that entry, not by
      // the drain after every actor ended.
      if (revoke_lost && (nclaims == 0 || c->second[0] == kDrainCpu)) {
        bad.push_back(absl::StrCat("revoke of ", o.pos, " lost, yet no actor claimed it"));
      }
    }
    for (const auto& [pos, cpus] : claims) {
      if (!pushed.count(pos)) bad.push_back(absl::StrCat("claimed position ", pos, " never pushed"));
    }
    return absl::StrJoin(bad, "; ");
  }
};

using ActorsOf = std::function<std::vector<std::function<void()>>(World&)>;

// Explores every schedule of the actors built by `actors` on a ring of `size`
// slots; fails the test at the first schedule that breaks the invariant.
int64_t ExploreAll(uint32_t size, int max_preemptions, const ActorsOf& actors,
                   int64_t limit = 2'000'000,
                   const std::function<void(const World&)>& after = nullptr) {
  Explorer explorer(max_preemptions);
  std::string first_bad;
  int64_t bad_runs = 0;
  const int64_t runs = explorer.Explore(
      [&](const std::function<int(uint32_t, int)>& choose) {
        World w(size);
        Scheduler s;
        s.Run(actors(w), choose);
        std::string bad = w.DrainAndCheck();
        if (!bad.empty() && bad_runs++ == 0) first_bad = bad;
        if (after) after(w);
      },
      limit);
  std::printf("  %lld schedules (ring of %u, up to %d preemptions)\n", static_cast<long long>(runs),
              size, max_preemptions);
  EXPECT_GT(runs, 0) << "the exploration diverged or hit its limit of " << limit << " schedules";
  EXPECT_EQ(bad_runs, 0) << bad_runs << " of " << runs << " schedules broke the invariant; first: "
                         << first_bad;
  return runs;
}

// A producer, two consumers (one runs its entry, one drops it) and the agent
// revoking the first entry, then reaping.
TEST(RingInterleavingTest, ProducerConsumersRevokerReaper) {
  const int64_t runs = ExploreAll(2, 2, [](World& w) {
    return std::vector<std::function<void()>>{
        [&w] {
          w.Push(1);
          w.Push(2);
        },
        [&w] { w.Consume(1, /*run=*/true); },
        [&w] { w.Consume(2, /*run=*/false); },
        [&w] {
          w.Revoke(0);
          w.Reap();
        },
    };
  });
  EXPECT_GT(runs, 1000);
}

// Two producers race for positions while a consumer claims and the agent
// reaps: each push gets its own position, nothing is lost.
TEST(RingInterleavingTest, ProducersRaceForPositions) {
  const int64_t runs = ExploreAll(2, 2, [](World& w) {
    return std::vector<std::function<void()>>{
        [&w] { w.Push(1); },
        [&w] { w.Push(2); },
        [&w] { w.Consume(1, /*run=*/true); },
        [&w] { w.Reap(); },
    };
  });
  EXPECT_GT(runs, 1000);
}

// A 2-slot ring around its end: the third push meets the first entry's slot,
// free only once that entry is reaped; consumers claim across the lap.
TEST(RingInterleavingTest, LapsOfATwoSlotRing) {
  const int64_t runs = ExploreAll(2, 2, [](World& w) {
    return std::vector<std::function<void()>>{
        [&w] {
          w.Push(1);
          w.Push(2);
          w.Push(3);
        },
        [&w] {
          w.Consume(1, true);
          w.Consume(1, true);
        },
        [&w] {
          w.Reap();
          w.Reap();
        },
    };
  });
  EXPECT_GT(runs, 1000);
}

// A producer stalls inside its window while a consumer, whose clock moves
// GHOST_RING_GAP_NS per claim, passes the position; the agent revokes and
// reaps meanwhile. Either the push publishes and its entry ends once, or it
// reports SKIPPED, nobody claims it and its position ends ABANDONED; both
// happen in some schedules, and the entries behind a passed one still end once.
TEST(RingInterleavingTest, ConsumerPassesAStalledProducer) {
  int64_t skipped_runs = 0;
  const int64_t runs = ExploreAll(
      4, 2,
      [](World& w) {
        return std::vector<std::function<void()>>{
            [&w] { w.Push(1); },
            [&w] { w.Push(2); },
            [&w] {
              for (uint64_t k = 1; k <= 3; ++k) w.Consume(1, /*run=*/true, k * GHOST_RING_GAP_NS);
            },
            [&w] {
              w.Revoke(1);
              w.Reap();
            },
        };
      },
      2'000'000, [&](const World& w) { skipped_runs += !w.skipped.empty(); });
  EXPECT_GT(runs, 1000);
  EXPECT_GT(skipped_runs, 0) << "no schedule passed a stalled producer";
  EXPECT_LT(skipped_runs, runs) << "every schedule passed one";
  std::printf("  %lld of them passed a stalled producer\n", static_cast<long long>(skipped_runs));
}

// Two revokes of one entry against two consumers: exactly one side wins.
TEST(RingInterleavingTest, RevokeAgainstTwoConsumers) {
  const int64_t runs = ExploreAll(4, 3, [](World& w) {
    w.Push(1);  // before the actors: no scheduling point is taken here
    return std::vector<std::function<void()>>{
        [&w] { w.Consume(1, true); },
        [&w] { w.Consume(2, false); },
        [&w] {
          w.Revoke(0);
          w.Reap();
        },
    };
  });
  EXPECT_GT(runs, 100);
}

// The explorer itself: two actors of two points each run in three pieces
// (start to point, point to point, point to end): C(6,3) = 20 schedules with
// no bound, and a bound of 0 leaves the 2 that run each actor to its end.
TEST(RingInterleavingTest, ExplorerCountsSchedules) {
  auto two_points = [] {
    Point();
    Point();
  };
  for (const auto& [bound, want] : std::vector<std::pair<int, int64_t>>{{0, 2}, {9, 20}}) {
    Explorer e(bound);
    const int64_t runs = e.Explore(
        [&](const std::function<int(uint32_t, int)>& choose) {
          Scheduler s;
          s.Run({two_points, two_points}, choose);
        },
        1000);
    EXPECT_EQ(runs, want) << "bound " << bound;
  }
}

}  // namespace
}  // namespace ghost_ring_model
