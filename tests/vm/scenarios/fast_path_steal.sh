# vm: --cpus 4 --numa
# Stealing: node 0's ring allows it (GHOST_RING_F_STEAL) and holds every
# worker; node 1's CPUs take entries from it, nothing is lost.
ghost_fast_path steal
