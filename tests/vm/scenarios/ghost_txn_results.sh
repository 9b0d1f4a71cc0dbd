# Transaction results from the BPF class: stale seqnum, stale barrier, affinity,
# blocked, unknown thread, CPU outside the enclave, bad flags; then a commit.
ghost_txn_results
