# vm: --cpus 3
# The hand-over (ghost_hand_over): refused for a thread not pinned to the CPU,
# pinned elsewhere, at an old seqnum, unknown, blocked, or a CPU outside the
# enclave, and for too many entries; three threads pinned to the CPU, handed
# in one call, run there in that order as pinned runs.
ghost_hand_over
