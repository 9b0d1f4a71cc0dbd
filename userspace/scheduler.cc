#include "userspace/scheduler.h"

namespace ghost {

void Scheduler::DispatchMessage(const Message& m) {
  switch (m.type()) {
    case GHOST_MSG_TASK_NEW: TaskNew(m); return;
    case GHOST_MSG_TASK_WAKEUP: TaskWakeup(m); return;
    case GHOST_MSG_TASK_BLOCKED: TaskBlocked(m); return;
    case GHOST_MSG_TASK_PREEMPT: TaskPreempt(m); return;
    case GHOST_MSG_TASK_YIELD: TaskYield(m); return;
    case GHOST_MSG_TASK_DEAD: TaskDead(m); return;
    case GHOST_MSG_TASK_DEPARTED: TaskDeparted(m); return;
    case GHOST_MSG_TASK_AFFINITY_CHANGED: TaskAffinityChanged(m); return;
    case GHOST_MSG_TASK_PRIORITY_CHANGED: TaskPriorityChanged(m); return;
    case GHOST_MSG_TASK_ON_CPU: TaskOnCpu(m); return;
    case GHOST_MSG_CPU_TICK: CpuTick(m); return;
    case GHOST_MSG_CPU_AVAILABLE: CpuAvailable(m); return;
    case GHOST_MSG_CPU_BUSY: CpuBusy(m); return;
    case GHOST_MSG_CPU_NOT_IDLE: CpuNotIdle(m); return;
    case GHOST_MSG_CPU_TIMER_EXPIRED: CpuTimerExpired(m); return;
    default: unknown_.fetch_add(1, std::memory_order_relaxed); return;
  }
}

}  // namespace ghost
