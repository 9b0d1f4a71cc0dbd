#include "userspace/scheduler.h"

#include <vector>

#include "gtest/gtest.h"

namespace ghost {
namespace {

// Records which callback saw which message type.
class Recorder : public Scheduler {
 public:
  std::vector<std::pair<std::string, uint16_t>> calls;
  void TaskNew(const Message& m) override { Rec("TaskNew", m); }
  void TaskWakeup(const Message& m) override { Rec("TaskWakeup", m); }
  void TaskBlocked(const Message& m) override { Rec("TaskBlocked", m); }
  void TaskPreempt(const Message& m) override { Rec("TaskPreempt", m); }
  void TaskYield(const Message& m) override { Rec("TaskYield", m); }
  void TaskDead(const Message& m) override { Rec("TaskDead", m); }
  void TaskDeparted(const Message& m) override { Rec("TaskDeparted", m); }
  void TaskAffinityChanged(const Message& m) override { Rec("TaskAffinityChanged", m); }
  void TaskPriorityChanged(const Message& m) override { Rec("TaskPriorityChanged", m); }
  void TaskOnCpu(const Message& m) override { Rec("TaskOnCpu", m); }
  void CpuTick(const Message& m) override { Rec("CpuTick", m); }
  void CpuAvailable(const Message& m) override { Rec("CpuAvailable", m); }
  void CpuBusy(const Message& m) override { Rec("CpuBusy", m); }
  void CpuNotIdle(const Message& m) override { Rec("CpuNotIdle", m); }
  void CpuTimerExpired(const Message& m) override { Rec("CpuTimerExpired", m); }
  void Schedule(Agent&) override {}

 private:
  void Rec(const char* name, const Message& m) { calls.emplace_back(name, m.type()); }
};

Message Msg(uint16_t type) {
  ghost_msg raw = {};
  raw.type = type;
  raw.size = sizeof(raw);
  return Message(raw);
}

TEST(SchedulerTest, RoutesEachTypeToItsCallback) {
  const std::vector<std::pair<uint16_t, std::string>> want = {
      {GHOST_MSG_TASK_NEW, "TaskNew"},
      {GHOST_MSG_TASK_WAKEUP, "TaskWakeup"},
      {GHOST_MSG_TASK_BLOCKED, "TaskBlocked"},
      {GHOST_MSG_TASK_PREEMPT, "TaskPreempt"},
      {GHOST_MSG_TASK_YIELD, "TaskYield"},
      {GHOST_MSG_TASK_DEAD, "TaskDead"},
      {GHOST_MSG_TASK_DEPARTED, "TaskDeparted"},
      {GHOST_MSG_TASK_AFFINITY_CHANGED, "TaskAffinityChanged"},
      {GHOST_MSG_TASK_PRIORITY_CHANGED, "TaskPriorityChanged"},
      {GHOST_MSG_TASK_ON_CPU, "TaskOnCpu"},
      {GHOST_MSG_CPU_TICK, "CpuTick"},
      {GHOST_MSG_CPU_AVAILABLE, "CpuAvailable"},
      {GHOST_MSG_CPU_BUSY, "CpuBusy"},
      {GHOST_MSG_CPU_NOT_IDLE, "CpuNotIdle"},
      {GHOST_MSG_CPU_TIMER_EXPIRED, "CpuTimerExpired"},
  };
  Recorder r;
  for (const auto& [type, name] : want) {
    r.calls.clear();
    r.DispatchMessage(Msg(type));
    ASSERT_EQ(r.calls.size(), 1u) << name;
    EXPECT_EQ(r.calls[0].first, name);
    EXPECT_EQ(r.calls[0].second, type);
  }
  EXPECT_EQ(r.unknown_messages(), 0u);
}

TEST(SchedulerTest, CountsUnknownTypes) {
  Recorder r;
  for (uint16_t type : {0, 11, 63, 69, 300}) r.DispatchMessage(Msg(type));
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.unknown_messages(), 5u);
}

// A scheduler that overrides nothing ignores every known message.
TEST(SchedulerTest, DefaultCallbacksIgnore) {
  struct Quiet : Scheduler {
    void Schedule(Agent&) override {}
  } q;
  for (uint16_t t = GHOST_MSG_TASK_NEW; t <= GHOST_MSG_TASK_LAST; ++t) {
    q.DispatchMessage(Msg(t));
  }
  EXPECT_EQ(q.unknown_messages(), 0u);
}

}  // namespace
}  // namespace ghost
