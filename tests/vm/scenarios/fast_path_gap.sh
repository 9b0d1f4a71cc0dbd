# vm: --cpus 4 --numa
# A producer stalled inside its push (position taken, not published) for 2 s,
# as a preempted or killed agent would be: the class's consumers pass the
# position after GHOST_RING_GAP_NS (1 ms), so the entries behind it keep
# running, and the stalled push reports SKIPPED (tests/vm/bin/ghost_fast_path.cc).
ghost_fast_path gap
