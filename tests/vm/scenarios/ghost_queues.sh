# Queues: ASSOCIATE_QUEUE refused while the old queue holds the thread's
# messages; overflow counted; wake-up configuration wakes a blocked reader.
ghost_queues
