# ghOSt messages from the BPF class, scripted: a worker's life (new while
# blocked, wake, sleep, wake, preempted by a PREEMPT commit, yield, affinity,
# nice, exit) is exactly that sequence with seqnums 1, 2, ...; a thread that
# leaves SCHED_EXT gets TASK_DEPARTED, then nothing, and runs on under CFS.
ghost_messages
