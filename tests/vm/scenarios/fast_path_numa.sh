# vm: --cpus 4 --numa
# The fast path's consumers in a 2-node guest: a driver pushes workers into
# their node's ring (half of them pinned to the node), with decoys: entries
# with an old seqnum and entries of pinned workers in the other node's ring.
# Workers complete, ran only on their node's CPUs, decoys never ran, every
# entry ends exactly once (tests/vm/bin/ghost_fast_path.cc).
ghost_fast_path placement
