// The simulator's clock: a binary min-heap of plain 32-byte events ordered by
// (time, insertion order). Equal-time events run in the order they were
// scheduled, which is what makes runs reproducible. No per-event allocation:
// the vector only grows to the high-water mark.
#ifndef GHOST_SCX_USERSPACE_SIM_EVENT_QUEUE_H_
#define GHOST_SCX_USERSPACE_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <vector>

namespace ghost {
namespace sim {

struct Event {
  uint64_t time;  // ns of simulated time
  uint64_t seq;   // tie-break: insertion order
  uint32_t kind;  // who handles it (see Machine::EventKind)
  uint32_t a;     // kind-specific (a CPU, a thread index, ...)
  uint64_t b;     // kind-specific (a generation number, ...)
};

class EventQueue {
 public:
  void Push(uint64_t time, uint32_t kind, uint32_t a, uint64_t b) {
    heap_.push_back({time, next_seq_++, kind, a, b});
    SiftUp(heap_.size() - 1);
  }
  bool Empty() const { return heap_.empty(); }
  size_t Size() const { return heap_.size(); }
  const Event& Top() const { return heap_.front(); }
  Event Pop() {
    Event top = heap_.front();
    heap_.front() = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) SiftDown(0);
    return top;
  }
  void Reserve(size_t n) { heap_.reserve(n); }

 private:
  static bool Less(const Event& x, const Event& y) {
    return x.time != y.time ? x.time < y.time : x.seq < y.seq;
  }
  void SiftUp(size_t i) {
    Event e = heap_[i];
    while (i > 0) {
      size_t p = (i - 1) / 2;
      if (!Less(e, heap_[p])) break;
      heap_[i] = heap_[p];
      i = p;
    }
    heap_[i] = e;
  }
  void SiftDown(size_t i) {
    const size_t n = heap_.size();
    Event e = heap_[i];
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && Less(heap_[c + 1], heap_[c])) c++;
      if (!Less(heap_[c], e)) break;
      heap_[i] = heap_[c];
      i = c;
    }
    heap_[i] = e;
  }

  std::vector<Event> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace sim
}  // namespace ghost

#endif  // GHOST_SCX_USERSPACE_SIM_EVENT_QUEUE_H_
