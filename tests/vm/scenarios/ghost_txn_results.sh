# vm: --cpus 3
# Transaction results from the BPF class: stale seqnum, stale barrier, affinity,
# blocked, unknown thread, CPU outside the enclave, bad flags, busy CPU with and
# without PREEMPT, a thread running on another CPU (RUNNING_ELSEWHERE).
ghost_txn_results
