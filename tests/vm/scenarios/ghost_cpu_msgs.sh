# CPU messages: CPU_TICK and CPU_NOT_IDLE when asked for, CPU_TIMER_EXPIRED from a timer.
ghost_cpu_msgs
