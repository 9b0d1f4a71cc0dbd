# vm: --cpus 4 --numa
# The fast path during an affinity-flip and nice-change storm, with the
# consumer's check-to-move window widened (2000 bpf_loop iterations): the
# class is never ejected, every worker completes, every entry ends once.
ghost_fast_path storm 2000
