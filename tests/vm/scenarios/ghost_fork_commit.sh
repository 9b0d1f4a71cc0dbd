# vm: --cpus 3
# A thread is found by tid as soon as its TASK_NEW is read: commits and
# ASSOCIATE_QUEUE made at TASK_NEW of fresh forks (threads and processes, kept
# alive until then) never say NOT_FOUND.
ghost_fork_commit
