# CPU messages: CPU_TICK when asked for, CPU_TIMER_EXPIRED from an armed timer.
ghost_cpu_msgs
